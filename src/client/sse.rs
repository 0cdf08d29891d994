//! Server-Sent Events assembly (FORMATS.md §8.1 steps 3-5) on top of [`super::lines`].
//!
//! Lines go in; the data of each dispatched event comes out. `data:` lines of one event are
//! joined with `\n`, comments (`: ping`) and `event:`/`id:`/`retry:` fields are skipped, and
//! an event larger than the cap is an error (RELIABILITY P8).

/// An event grew past the cap before its blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge {
    pub cap: usize,
}

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an event of the stream exceeded {} bytes", self.cap)
    }
}

/// Collects `data:` lines until a blank line dispatches them.
#[derive(Debug)]
pub struct SseAssembler {
    data: Vec<u8>,
    has_data: bool,
    /// The last call returned the buffer: clear it before the next line.
    dispatched: bool,
    cap: usize,
}

impl SseAssembler {
    pub fn new(cap: usize) -> Self {
        SseAssembler {
            data: Vec::new(),
            has_data: false,
            dispatched: false,
            cap,
        }
    }

    /// No event is being collected (a `data:` line followed by a blank line can be
    /// dispatched directly: see [`data_value`]).
    pub fn is_idle(&self) -> bool {
        !self.has_data || self.dispatched
    }

    /// Feed one line (without terminator). Returns the event's data when this line is the
    /// blank line that dispatches a non-empty event.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<&[u8]>, EventTooLarge> {
        if self.dispatched {
            self.data.clear();
            self.has_data = false;
            self.dispatched = false;
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = split_field(line);
        if field == b"data" {
            if self.data.len() + value.len() + 1 > self.cap {
                self.data.clear();
                self.has_data = false;
                return Err(EventTooLarge { cap: self.cap });
            }
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
        Ok(None)
    }

    /// At the end of the stream: the data of an event that never got its blank line.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.dispatched {
            self.data.clear();
            self.has_data = false;
            self.dispatched = false;
        }
        self.dispatch()
    }

    fn dispatch(&mut self) -> Option<&[u8]> {
        if !self.has_data {
            return None;
        }
        self.dispatched = true;
        self.data.pop(); // the single trailing '\n'
        Some(&self.data)
    }
}

/// Split a line at its first `:` into field and value (one leading space dropped).
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(i) => {
            let v = &line[i + 1..];
            (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &b""[..]),
    }
}

/// The value of a `data:` line within the cap: with an idle assembler and a blank line
/// right after it, this is the whole event, exactly what [`SseAssembler`] would dispatch.
pub fn data_value(line: &[u8], cap: usize) -> Option<&[u8]> {
    let (field, value) = split_field(line);
    (field == b"data" && value.len() < cap).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> Vec<String> {
        let mut a = SseAssembler::new(1 << 16);
        let mut out = Vec::new();
        for l in lines {
            if let Some(d) = a.line(l.as_bytes()).unwrap() {
                out.push(String::from_utf8(d.to_vec()).unwrap());
            }
        }
        if let Some(d) = a.finish() {
            out.push(format!("unterminated:{}", String::from_utf8_lossy(d)));
        }
        out
    }

    #[test]
    fn spec_rules() {
        assert_eq!(
            events(&["data: {\"a\":1}", "", "data: [DONE]", ""]),
            vec!["{\"a\":1}", "[DONE]"]
        );
        // comments, other fields, no space after the colon, multi-line data
        assert_eq!(
            events(&[": ping", "event: x", "id: 3", "data:a", "data: b", "", ""]),
            vec!["a\nb"]
        );
        // a field without a colon has an empty value; "data" alone adds an empty line
        assert_eq!(events(&["data", "data", ""]), vec!["\n"]);
        assert_eq!(events(&["data: tail"]), vec!["unterminated:tail"]);
    }

    #[test]
    fn cap() {
        let mut a = SseAssembler::new(8);
        assert!(a.line(b"data: 1234").unwrap().is_none());
        assert_eq!(a.line(b"data: 5678"), Err(EventTooLarge { cap: 8 }));
        assert_eq!(data_value(b"data: x", 8), Some(&b"x"[..]));
        assert_eq!(data_value(b"event: x", 8), None);
        assert_eq!(data_value(b"data: 12345678", 8), None);
    }
}
