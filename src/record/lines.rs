//! What happens to each line the wrapped command prints: split into lines (progress bars
//! that redraw with `\r` keep only their last state in the log), secrets cut, model-load
//! line detected, last lines kept for the failure report.

use std::borrow::Cow;
use std::collections::VecDeque;

use memchr::memmem;
use regex::bytes::Regex;

use crate::redact::REDACTED;

/// Longest line kept in the log; the rest of a longer line is counted, not kept (P8).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Lines kept for `command.log_tail`.
pub const TAIL_LINES: usize = 40;
/// Longest line kept in `command.log_tail`, in characters.
pub const TAIL_LINE_CHARS: usize = 400;

/// vLLM's "engine ready" lines (FORMATS.md §10): the model-load time ends at the first one.
pub const DEFAULT_READY_PATTERN: &str =
    r"(?i)init engine \(profile, create kv cache, warmup model\) took|Application startup complete";
/// Weight-loading lines, used only when no engine-ready line appears (older vLLM).
pub const DEFAULT_WEIGHTS_PATTERN: &str = r"(?i)Loading weights took|Model loading took";

/// Splits a byte stream into lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    cut: usize,
    cr_pending: bool,
}

/// A piece of output: a complete line (`\n`-terminated, or the end of the stream), or a
/// segment a `\r` told the terminal to overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    Line,
    Overwritten,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed a chunk; `f` gets each finished piece (`\r\n` counts as one line end).
    pub fn feed(&mut self, mut chunk: &[u8], f: &mut impl FnMut(&[u8], Piece)) {
        while !chunk.is_empty() {
            if self.cr_pending {
                self.cr_pending = false;
                if chunk[0] == b'\n' {
                    self.emit(Piece::Line, f);
                    chunk = &chunk[1..];
                    continue;
                }
                self.emit(Piece::Overwritten, f);
            }
            match memchr::memchr2(b'\n', b'\r', chunk) {
                Some(i) => {
                    self.push(&chunk[..i]);
                    if chunk[i] == b'\n' {
                        self.emit(Piece::Line, f);
                    } else {
                        self.cr_pending = true;
                    }
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.push(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// The stream ended: the last unterminated line, if any.
    pub fn finish(&mut self, f: &mut impl FnMut(&[u8], Piece)) {
        self.cr_pending = false;
        if !self.buf.is_empty() || self.cut > 0 {
            self.emit(Piece::Line, f);
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
        let take = room.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..take]);
        self.cut += bytes.len() - take;
    }

    fn emit(&mut self, piece: Piece, f: &mut impl FnMut(&[u8], Piece)) {
        if self.cut > 0 {
            let note = format!(
                " [benchkeep: {} more bytes of this line not kept]",
                self.cut
            );
            self.buf.extend_from_slice(note.as_bytes());
        }
        f(&self.buf, piece);
        self.buf.clear();
        self.cut = 0;
    }
}

/// Replaces secret values in text with `***`: the known values (from the command line and
/// the environment), any `user:pass@` or secret query value (`?api_key=`) in a URL, and
/// secrets found by their form or shape ([`crate::redact::in_text`]).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
            .collect();
        // Longest first, so a secret that contains another is cut whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn apply<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(line);
        for s in &self.secrets {
            if memmem::find(&out, s).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut rest: &[u8] = &out;
            while let Some(i) = memmem::find(rest, s) {
                replaced.extend_from_slice(&rest[..i]);
                replaced.extend_from_slice(REDACTED.as_bytes());
                rest = &rest[i + s.len()..];
            }
            replaced.extend_from_slice(rest);
            out = Cow::Owned(replaced);
        }
        if memmem::find(&out, b"://").is_some()
            && let Ok(text) = std::str::from_utf8(&out)
        {
            let cut = crate::redact::url_in_text(text);
            if cut != text {
                out = Cow::Owned(cut.into_bytes());
            }
        }
        if let Some(cut) = crate::redact::in_text(&out) {
            out = Cow::Owned(cut);
        }
        out
    }

    pub fn apply_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.apply(text.as_bytes())).into_owned()
    }
}

/// Where the model-load time came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadHit {
    /// Seconds from the command's start to the line.
    pub seconds: f64,
    /// The line (secrets already cut), shortened.
    pub line: String,
}

/// Finds the line that ends model loading.
#[derive(Debug, Clone)]
pub struct LoadDetector {
    custom: Option<Regex>,
    ready: Regex,
    weights: Regex,
    hit_ready: Option<LoadHit>,
    hit_weights: Option<LoadHit>,
}

impl LoadDetector {
    /// With `custom` (`--load-pattern`), its first match; else vLLM's first engine-ready
    /// line, or failing that its first weight-loading line.
    pub fn new(custom: Option<Regex>) -> Self {
        LoadDetector {
            custom,
            ready: Regex::new(DEFAULT_READY_PATTERN).expect("valid built-in pattern"),
            weights: Regex::new(DEFAULT_WEIGHTS_PATTERN).expect("valid built-in pattern"),
            hit_ready: None,
            hit_weights: None,
        }
    }

    pub fn check(&mut self, t_s: f64, line: &[u8]) {
        if self.hit_ready.is_some() {
            return;
        }
        let hit = || LoadHit {
            seconds: crate::metrics::round(t_s, 3),
            line: shorten(&String::from_utf8_lossy(line), TAIL_LINE_CHARS),
        };
        match &self.custom {
            Some(re) => {
                if re.is_match(line) {
                    self.hit_ready = Some(hit());
                }
            }
            None => {
                if self.ready.is_match(line) {
                    self.hit_ready = Some(hit());
                } else if self.hit_weights.is_none() && self.weights.is_match(line) {
                    self.hit_weights = Some(hit());
                }
            }
        }
    }

    pub fn result(&self) -> Option<LoadHit> {
        self.hit_ready.clone().or_else(|| self.hit_weights.clone())
    }
}

/// The last lines of the log.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    pub fn push(&mut self, line: &[u8]) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines
            .push_back(shorten(&String::from_utf8_lossy(line), TAIL_LINE_CHARS));
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// At most `max` characters, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.trim_end();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(String, Piece)> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        let mut f = |l: &[u8], p: Piece| out.push((String::from_utf8_lossy(l).into_owned(), p));
        for c in chunks {
            s.feed(c, &mut f);
        }
        s.finish(&mut f);
        out
    }

    #[test]
    fn lines_crlf_and_progress_bars() {
        use Piece::*;
        assert_eq!(
            split(&[b"a\nb", b"c\r", b"\nd\r10%\r", b"100%\nlast"]),
            vec![
                ("a".into(), Line),
                ("bc".into(), Line),
                ("d".into(), Overwritten),
                ("10%".into(), Overwritten),
                ("100%".into(), Line),
                ("last".into(), Line),
            ]
        );
        assert!(split(&[b""]).is_empty());
        assert_eq!(split(&[b"\n"]), vec![("".into(), Line)]);
    }

    #[test]
    fn long_lines_are_capped() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let out = split(&[&long, b"\nok\n"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].0.len() < MAX_LINE_BYTES + 100);
        assert!(
            out[0]
                .0
                .ends_with("[benchkeep: 10 more bytes of this line not kept]")
        );
        assert_eq!(out[1].0, "ok");
    }

    #[test]
    fn redactor() {
        let r = Redactor::new(vec!["sk-CANARY".to_string(), "CANARY".to_string()]);
        assert_eq!(
            r.apply_str("key sk-CANARY and CANARY, CANARY"),
            "key *** and ***, ***"
        );
        assert!(matches!(r.apply(b"clean"), Cow::Borrowed(_)));
        assert!(matches!(r.apply(b"see http://h:8/v1"), Cow::Borrowed(_)));
        assert_eq!(
            Redactor::default().apply_str("GET http://u:p4ss@h:8/v1?token=t0k&n=1 200"),
            "GET http://***@h:8/v1?token=***&n=1 200"
        );
        assert_eq!(Redactor::default().apply_str("x"), "x");
    }

    #[test]
    fn load_detection_prefers_engine_ready() {
        let mut d = LoadDetector::new(None);
        d.check(1.0, b"INFO Loading weights took 4.12 seconds");
        d.check(2.0, b"INFO Model loading took 7.45 GiB and 5.31 seconds");
        assert_eq!(d.result().unwrap().seconds, 1.0);
        d.check(
            9.5,
            b"(EngineCore pid=1) INFO 11-28 06:19:42 [core.py:402] init engine (profile, create kv cache, warmup model) took 14.02 s",
        );
        d.check(12.0, b"INFO:     Application startup complete.");
        let hit = d.result().unwrap();
        assert_eq!(hit.seconds, 9.5);
        assert!(hit.line.contains("init engine"));

        let mut custom = LoadDetector::new(Some(Regex::new("ready!").unwrap()));
        custom.check(
            1.0,
            b"init engine (profile, create kv cache, warmup model) took 1 s",
        );
        assert_eq!(custom.result(), None);
        custom.check(3.0, b"model ready!");
        custom.check(4.0, b"model ready!");
        assert_eq!(custom.result().unwrap().seconds, 3.0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::default();
        for i in 0..100 {
            t.push(format!("line {i}").as_bytes());
        }
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "line 99");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("ab", 3), "ab");
    }
}
