//! Server-Sent Events assembly (FORMATS.md §8.1 steps 3-5) on top of [`super::lines`].
//!
//! Lines go in; the data of each dispatched event comes out. `data:` lines of one event are
//! joined with `\n`, comments (`: ping`) and `event:`/`id:`/`retry:` fields are skipped, and
//! an event larger than the cap is an error (RELIABILITY P8).

use bytes::Bytes;

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

/// Collects `data:` lines until a blank line dispatches them. The usual one-line event is
/// kept as a zero-copy slice of its line; only multi-line events are copied.
#[derive(Debug)]
pub struct SseAssembler {
    /// The value of the event's only `data:` line so far.
    single: Bytes,
    /// The joined values once a second `data:` line arrives.
    data: Vec<u8>,
    multi: bool,
    has_data: bool,
    /// The last call returned the buffer: clear it before the next line.
    dispatched: bool,
    cap: usize,
}

impl SseAssembler {
    pub fn new(cap: usize) -> Self {
        SseAssembler {
            single: Bytes::new(),
            data: Vec::new(),
            multi: false,
            has_data: false,
            dispatched: false,
            cap,
        }
    }

    /// Feed one line (without terminator). Returns the event's data when this line is the
    /// blank line that dispatches a non-empty event.
    pub fn line(&mut self, line: &Bytes) -> Result<Option<&[u8]>, EventTooLarge> {
        if self.dispatched {
            self.reset();
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let start = if line.get(i + 1) == Some(&b' ') {
                    i + 2
                } else {
                    i + 1
                };
                (&line[..i], line.slice(start..))
            }
            None => (&line[..], Bytes::new()),
        };
        if field == b"data" {
            if !self.has_data {
                if value.len() > self.cap {
                    return Err(EventTooLarge { cap: self.cap });
                }
                self.single = value;
                self.has_data = true;
                return Ok(None);
            }
            if !self.multi {
                self.data.clear();
                self.data.extend_from_slice(&self.single);
                self.multi = true;
            }
            if self.data.len() + value.len() + 1 > self.cap {
                self.reset();
                return Err(EventTooLarge { cap: self.cap });
            }
            self.data.push(b'\n');
            self.data.extend_from_slice(&value);
        }
        Ok(None)
    }

    fn reset(&mut self) {
        self.single = Bytes::new();
        self.data.clear();
        self.multi = false;
        self.has_data = false;
        self.dispatched = false;
    }

    /// At the end of the stream: the data of an event that never got its blank line.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.dispatched {
            self.reset();
        }
        self.dispatch()
    }

    fn dispatch(&mut self) -> Option<&[u8]> {
        if !self.has_data {
            return None;
        }
        self.dispatched = true;
        Some(if self.multi { &self.data } else { &self.single })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> Vec<String> {
        let mut a = SseAssembler::new(1 << 16);
        let mut out = Vec::new();
        for l in lines {
            if let Some(d) = a.line(&Bytes::copy_from_slice(l.as_bytes())).unwrap() {
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
        assert!(
            a.line(&Bytes::from_static(b"data: 1234"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            a.line(&Bytes::from_static(b"data: 5678")),
            Err(EventTooLarge { cap: 8 })
        );
    }
}
