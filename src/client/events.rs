//! From network reads to events: NDJSON lines (Ollama) or SSE event data (OpenAI).
//!
//! The usual SSE event, one `data: {...}` line and an empty line in the same read, is
//! handed out in place, without copying; anything else (comments, multi-line data, `\r\n`,
//! an event cut by a read boundary) goes through the general [`SseAssembler`]. A property
//! test checks that both give the same events for any text split at any points.

use bytes::Bytes;

use super::lines::LineSplitter;
use super::response::Flow;
use super::sse::{self, SseAssembler};

/// Turns a response body into events, one read at a time.
#[derive(Debug)]
pub struct EventReader {
    ndjson: bool,
    cap: usize,
    lines: LineSplitter,
    sse: SseAssembler,
}

impl EventReader {
    /// A reader of NDJSON lines (`ndjson`) or SSE events, refusing lines and events longer
    /// than `cap` bytes.
    pub fn new(ndjson: bool, cap: usize) -> Self {
        EventReader {
            ndjson,
            cap,
            lines: LineSplitter::new(cap),
            sse: SseAssembler::new(cap),
        }
    }

    /// Feed one read; `on` gets every complete event and may stop the reading. `Err` is a
    /// line or event over the cap.
    pub fn feed(
        &mut self,
        chunk: Bytes,
        mut on: impl FnMut(&[u8]) -> Flow,
    ) -> Result<Flow, String> {
        self.lines.feed(chunk);
        loop {
            let (flow, skip_blank) = match self.lines.next_line() {
                Ok(Some(line)) if self.ndjson => (on(line.bytes), false),
                Ok(Some(line)) => {
                    let direct = if line.blank_follows && self.sse.is_idle() {
                        sse::data_value(line.bytes, self.cap)
                    } else {
                        None
                    };
                    match direct {
                        Some(data) => (on(data), true),
                        None => match self.sse.line(line.bytes) {
                            Ok(Some(data)) => (on(data), false),
                            Ok(None) => (Flow::Continue, false),
                            Err(e) => return Err(e.to_string()),
                        },
                    }
                }
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => return Err(e.to_string()),
            };
            if skip_blank {
                self.lines.skip_blank();
            }
            if flow == Flow::Done {
                return Ok(Flow::Done);
            }
        }
    }

    /// The body ended: a last line without its terminator, and an SSE event without its
    /// blank line, are still handed to `on` (the caller decides whether the stream was
    /// complete).
    pub fn finish(&mut self, mut on: impl FnMut(&[u8]) -> Flow) -> Result<Flow, String> {
        if let Some(rest) = self.lines.finish() {
            if rest.len() > self.cap {
                return Err(super::lines::LineTooLong { cap: self.cap }.to_string());
            }
            let flow = if self.ndjson {
                on(&rest)
            } else {
                match self.sse.line(&rest) {
                    Ok(Some(data)) => on(data),
                    Ok(None) => Flow::Continue,
                    Err(e) => return Err(e.to_string()),
                }
            };
            if flow == Flow::Done {
                return Ok(flow);
            }
        }
        if !self.ndjson
            && let Some(data) = self.sse.finish()
        {
            return Ok(on(data));
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(text: &[u8], cuts: &[usize], ndjson: bool) -> Vec<Vec<u8>> {
        let mut r = EventReader::new(ndjson, 1 << 16);
        let mut out = Vec::new();
        let mut last = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(text.len())).collect();
        points.sort();
        points.push(text.len());
        for p in points {
            let piece = Bytes::copy_from_slice(&text[last..p]);
            last = p;
            r.feed(piece, |d| {
                out.push(d.to_vec());
                Flow::Continue
            })
            .unwrap();
        }
        r.finish(|d| {
            out.push(d.to_vec());
            Flow::Continue
        })
        .unwrap();
        out
    }

    /// The reference: the general line splitter and assembler, no fast path.
    fn reference(text: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = LineSplitter::new(1 << 16);
        let mut sse = SseAssembler::new(1 << 16);
        let mut out = Vec::new();
        lines.feed(Bytes::copy_from_slice(text));
        while let Some(l) = lines.next_line().unwrap() {
            if let Some(d) = sse.line(l.bytes).unwrap() {
                out.push(d.to_vec());
            }
        }
        if let Some(rest) = lines.finish()
            && let Some(d) = sse.line(&rest).unwrap()
        {
            out.push(d.to_vec());
        }
        if let Some(d) = sse.finish() {
            out.push(d.to_vec());
        }
        out
    }

    #[test]
    fn vllm_stream() {
        let text = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        let want: Vec<Vec<u8>> = vec![
            b"{\"a\":1}".to_vec(),
            b"{\"b\":2}".to_vec(),
            b"[DONE]".to_vec(),
        ];
        assert_eq!(read_all(text, &[], false), want);
        assert_eq!(read_all(text, &[7, 15, 16, 17], false), want);
        assert_eq!(read_all(b"{\"x\":1}\n{\"y\":2}", &[3], true).len(), 2);
    }

    fn document() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            4 => "[a-z{}\":]{0,6}".prop_map(|v| format!("data: {v}")),
            1 => "[a-z]{0,4}".prop_map(|v| format!("data:{v}")),
            1 => Just("data".to_string()),
            1 => Just(": ping".to_string()),
            1 => Just("event: x".to_string()),
            3 => Just(String::new()),
        ];
        (
            proptest::collection::vec(line, 0..12),
            prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            any::<bool>(),
        )
            .prop_map(|(lines, eol, bom)| {
                let mut s = if bom {
                    "\u{feff}".to_string()
                } else {
                    String::new()
                };
                for l in lines {
                    s.push_str(&l);
                    s.push_str(eol);
                }
                s.into_bytes()
            })
    }

    proptest! {
        /// In-place dispatch gives exactly the events of the general path, for any text
        /// and any split into reads.
        #[test]
        fn fast_path_matches_the_general_path(
            text in document(),
            cuts in proptest::collection::vec(0usize..120, 0..6),
        ) {
            prop_assert_eq!(read_all(&text, &cuts, false), reference(&text));
        }
    }
}
