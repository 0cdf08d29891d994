//! Incremental line splitting over network reads (FORMATS.md §8.1 steps 1-2).
//!
//! Bytes arrive in arbitrary pieces: a line, a UTF-8 character or a `\r\n` pair may be cut
//! anywhere. [`LineSplitter`] buffers what it must and hands out complete lines without
//! their terminator. Lines end at `\n`, `\r\n` or a lone `\r`; a UTF-8 BOM at the very start
//! is dropped. A line longer than the cap is an error, so a hostile server that never sends
//! a newline cannot make the client grow without bound (RELIABILITY P8).

use bytes::Bytes;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line grew past the cap without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    pub cap: usize,
}

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a line of the response exceeded {} bytes", self.cap)
    }
}

/// One line, borrowed from the splitter until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// An empty line (`\n`) follows at once in the bytes already read; take it with
    /// [`LineSplitter::skip_blank`]. Lets SSE dispatch a one-line event without copying.
    pub blank_follows: bool,
}

/// Splits a byte stream into lines. Lines that lie within one read are handed out as
/// borrowed slices of it; only a line cut by a read boundary is copied.
#[derive(Debug)]
pub struct LineSplitter {
    /// The latest read, and how much of it is used.
    cur: Bytes,
    pos: usize,
    /// The start of a line begun in earlier reads (or the last line returned from it).
    carry: Vec<u8>,
    /// `carry` holds a line already returned: clear it on the next call.
    carry_out: bool,
    /// The previous line ended in `\r`: a `\n` right after it belongs to that terminator.
    skip_lf: bool,
    at_start: bool,
    cap: usize,
}

impl LineSplitter {
    /// A splitter that rejects lines longer than `cap` bytes.
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            cur: Bytes::new(),
            pos: 0,
            carry: Vec::new(),
            carry_out: false,
            skip_lf: false,
            at_start: true,
            cap,
        }
    }

    /// Add the bytes of one network read (after [`next_line`](Self::next_line) returned
    /// `Ok(None)`: the previous read is used up).
    pub fn feed(&mut self, chunk: Bytes) {
        debug_assert!(self.pos >= self.cur.len());
        self.pos = 0;
        if !self.at_start {
            self.cur = chunk;
            return;
        }
        // The BOM may itself be split across reads: wait until it is decided.
        let head = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(&chunk);
            Bytes::from(std::mem::take(&mut self.carry))
        };
        if head.len() < BOM.len() && BOM.starts_with(&head) {
            self.carry = head.to_vec();
            self.cur = Bytes::new();
            return;
        }
        self.at_start = false;
        self.cur = if head.starts_with(BOM) {
            head.slice(BOM.len()..)
        } else {
            head
        };
    }

    /// The next complete line, without its terminator; `Ok(None)` when more bytes are needed.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, LineTooLong> {
        if self.carry_out {
            self.carry.clear();
            self.carry_out = false;
        }
        if self.skip_lf && self.pos < self.cur.len() {
            if self.cur[self.pos] == b'\n' {
                self.pos += 1;
            }
            self.skip_lf = false;
        }
        let rest = &self.cur[self.pos..];
        match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let start = self.pos;
                let end = start + i;
                self.pos = end + 1;
                if self.cur[end] == b'\r' {
                    if self.cur.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    } else if self.pos == self.cur.len() {
                        self.skip_lf = true;
                    }
                }
                let blank_follows = !self.skip_lf && self.cur.get(self.pos) == Some(&b'\n');
                if self.carry.is_empty() {
                    // A line within one read is capped too (a read may be large).
                    if end - start > self.cap {
                        return Err(LineTooLong { cap: self.cap });
                    }
                    Ok(Some(Line {
                        bytes: &self.cur[start..end],
                        blank_follows,
                    }))
                } else {
                    self.carry.extend_from_slice(&self.cur[start..end]);
                    self.carry_out = true;
                    if self.carry.len() > self.cap {
                        return Err(LineTooLong { cap: self.cap });
                    }
                    Ok(Some(Line {
                        bytes: &self.carry,
                        blank_follows,
                    }))
                }
            }
            None => {
                self.carry.extend_from_slice(rest);
                self.pos = self.cur.len();
                if self.carry.len() > self.cap {
                    self.carry = Vec::new();
                    Err(LineTooLong { cap: self.cap })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Consume the empty line announced by [`Line::blank_follows`].
    pub fn skip_blank(&mut self) {
        if self.cur.get(self.pos) == Some(&b'\n') {
            self.pos += 1;
        }
    }

    /// What is left after the stream ended: a last line without a terminator, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.carry_out {
            self.carry.clear();
            self.carry_out = false;
        }
        self.carry
            .extend_from_slice(&self.cur[self.pos.min(self.cur.len())..]);
        self.pos = self.cur.len();
        (!self.carry.is_empty()).then(|| std::mem::take(&mut self.carry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(1 << 20);
        let mut out = Vec::new();
        for p in pieces {
            s.feed(Bytes::copy_from_slice(p));
            while let Some(l) = s.next_line().unwrap() {
                out.push(l.bytes.to_vec());
            }
        }
        if let Some(rest) = s.finish() {
            out.push(rest.to_vec());
        }
        out
    }

    #[test]
    fn terminators_and_bom() {
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec(), b"c".to_vec()];
        assert_eq!(split_all(&[b"a\n\nb\r\nc"]), want);
        assert_eq!(split_all(&[b"\xEF\xBB\xBFa\r", b"\n", b"\rb\nc"]), want);
        assert_eq!(split_all(&[b"\xEF", b"\xBB", b"\xBFa\n\nb\rc"]), want);
        // a lone CR at the end of a read followed by a non-LF byte
        assert_eq!(
            split_all(&[b"a\r", b"x\n"]),
            vec![b"a".to_vec(), b"x".to_vec()]
        );
    }

    #[test]
    fn blank_line_hint() {
        let mut s = LineSplitter::new(1 << 10);
        s.feed(Bytes::from_static(b"data: a\n\ndata: b\n"));
        let l = s.next_line().unwrap().unwrap();
        assert_eq!((l.bytes, l.blank_follows), (&b"data: a"[..], true));
        s.skip_blank();
        let l = s.next_line().unwrap().unwrap();
        assert_eq!((l.bytes, l.blank_follows), (&b"data: b"[..], false));
        assert_eq!(s.next_line().unwrap(), None);
        s.feed(Bytes::from_static(b"\n"));
        assert_eq!(s.next_line().unwrap().unwrap().bytes, b"");
    }

    #[test]
    fn cap_is_enforced() {
        let mut s = LineSplitter::new(8);
        s.feed(Bytes::from_static(b"0123456789"));
        assert_eq!(s.next_line(), Err(LineTooLong { cap: 8 }));
        let mut s = LineSplitter::new(8);
        s.feed(Bytes::from_static(b"0123\n456789ab\n"));
        let l = s.next_line().unwrap().unwrap();
        assert_eq!(l.bytes, b"0123");
        assert!(!l.blank_follows);
        // a complete long line is still returned; only an unterminated one is refused
        assert!(s.next_line().unwrap().is_some());
    }

    proptest! {
        /// Any split of the input gives the same lines as reading it whole.
        #[test]
        fn split_points_do_not_matter(text in "[a-c\r\n]{0,40}", cuts in proptest::collection::vec(0usize..40, 0..6)) {
            let bytes = text.as_bytes();
            let whole = split_all(&[bytes]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            points.sort();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                pieces.push(&bytes[last..p]);
                last = p;
            }
            pieces.push(&bytes[last..]);
            prop_assert_eq!(split_all(&pieces), whole);
        }
    }
}
