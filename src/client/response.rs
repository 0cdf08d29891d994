//! What one response taught us, collected as its bytes arrive: content times, token counts,
//! finish reason, server timings, and the first failure. Shared by the OpenAI and Ollama
//! parsers, so both measure the same way (DESIGN.md "Metric definitions").

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, Visitor};

use crate::schema::{ErrorKind, ItlOverflow, MAX_ITL_GAPS, ServerTimings};

/// Whether the parser wants more of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The response is complete (final chunk, `[DONE]`, error event, unusable data).
    Done,
}

/// The facts gathered from one response.
#[derive(Debug, Default)]
pub struct Acc {
    /// Arrival of the first chunk with content.
    pub first: Option<Instant>,
    /// Arrival of the latest chunk with content.
    pub last: Option<Instant>,
    /// Gaps between successive content chunks, ms (microsecond precision).
    pub itl_ms: Vec<f64>,
    /// Gaps beyond [`MAX_ITL_GAPS`], summarized (RELIABILITY P8).
    pub itl_overflow: Option<ItlOverflow>,
    /// Chunks that carried content.
    pub chunks: u64,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub finish_reason: Option<String>,
    pub server: ServerTimings,
    /// Response text, when it is being saved.
    pub text: Option<String>,
    text_cap: usize,
    /// The response ended the way its protocol says a complete one ends.
    pub done: bool,
    /// The first failure seen.
    pub failure: Option<(ErrorKind, String)>,
    /// The fast chunk scanner's memory of this stream.
    pub memo: super::scan::Memo,
}

impl Acc {
    /// A fresh accumulator; `save_text` keeps up to that many bytes of response text.
    pub fn new(save_text: Option<usize>) -> Self {
        Acc {
            text: save_text.map(|_| String::new()),
            text_cap: save_text.unwrap_or(0),
            ..Default::default()
        }
    }

    /// A chunk with content arrived at `at`.
    #[inline]
    pub fn content(&mut self, at: Instant, text: &str) {
        match self.last {
            Some(last) => self.gap(ms(at.saturating_duration_since(last))),
            None => self.first = Some(at),
        }
        self.last = Some(at);
        self.chunks += 1;
        self.append_text(text);
    }

    /// Keep a gap, or past the cap, count it in the overflow summary.
    #[inline]
    fn gap(&mut self, g: f64) {
        if self.itl_ms.len() < MAX_ITL_GAPS {
            self.itl_ms.push(g);
            return;
        }
        let o = self.itl_overflow.get_or_insert_with(ItlOverflow::default);
        o.gaps += 1;
        o.sum_ms = ((o.sum_ms + g) * 1000.0).round() / 1000.0;
        o.max_ms = o.max_ms.max(g);
    }

    /// Add text without a timing (a non-streamed body).
    pub fn append_text(&mut self, text: &str) {
        if let Some(t) = &mut self.text {
            let room = self.text_cap.saturating_sub(t.len());
            if text.len() <= room {
                t.push_str(text);
            } else {
                let mut end = room;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                t.push_str(&text[..end]);
            }
        }
    }

    /// Record a failure (the first one wins).
    pub fn fail(&mut self, kind: ErrorKind, message: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some((kind, message.into()));
        }
    }
}

/// A duration in milliseconds, rounded to the microsecond.
#[inline]
pub fn ms(d: std::time::Duration) -> f64 {
    let micros = d.as_secs() * 1_000_000 + (d.subsec_nanos() as u64 + 500) / 1000;
    micros as f64 / 1000.0
}

/// The start of a payload for an error message (lossy UTF-8, capped).
pub fn preview(data: &[u8]) -> String {
    let cut = &data[..data.len().min(80)];
    let s = String::from_utf8_lossy(cut);
    if data.len() > 80 {
        format!("{s:?}...")
    } else {
        format!("{s:?}")
    }
}

/// A JSON string that is borrowed from the input when it has no escapes; `null` and
/// absent read as empty; any other value (an array of content parts) reads as `Other`.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Text<'a> {
    #[default]
    Empty,
    Str(Cow<'a, str>),
    Other,
}

impl Text<'_> {
    /// Whether it carries something (a non-empty string or a non-string value).
    pub fn is_present(&self) -> bool {
        match self {
            Text::Empty => false,
            Text::Str(s) => !s.is_empty(),
            Text::Other => true,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Text::Str(s) => s,
            _ => "",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text::Empty)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Text::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Text::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut n = 0;
                while a.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(if n > 0 { Text::Other } else { Text::Empty })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn text_borrows_and_tolerates() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(default, borrow)]
            a: Text<'a>,
        }
        let t: T = serde_json::from_str(r#"{"a":"hi"}"#).unwrap();
        assert!(matches!(t.a, Text::Str(Cow::Borrowed("hi"))));
        let t: T = serde_json::from_str(r#"{"a":"h\"i"}"#).unwrap();
        assert_eq!(t.a.as_str(), "h\"i");
        let t: T = serde_json::from_str(r#"{"a":null}"#).unwrap();
        assert!(!t.a.is_present());
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert!(!t.a.is_present());
        let t: T = serde_json::from_str(r#"{"a":[{"type":"text"}]}"#).unwrap();
        assert!(t.a.is_present());
        let t: T = serde_json::from_str(r#"{"a":[]}"#).unwrap();
        assert!(!t.a.is_present());
    }

    #[test]
    fn content_timing_and_text_cap() {
        let mut acc = Acc::new(Some(4));
        let t0 = Instant::now();
        acc.content(t0, "ab");
        acc.content(t0 + Duration::from_micros(1500), "cdé");
        assert_eq!(acc.first, Some(t0));
        assert_eq!(acc.itl_ms, vec![1.5]);
        assert_eq!(acc.chunks, 2);
        assert_eq!(acc.text.as_deref(), Some("abcd"));
        let mut many = Acc::new(None);
        for i in 0..MAX_ITL_GAPS + 11 {
            many.content(t0 + Duration::from_millis(i as u64), "");
        }
        assert_eq!(many.itl_ms.len(), MAX_ITL_GAPS);
        let o = many.itl_overflow.unwrap();
        assert_eq!((o.gaps, o.sum_ms, o.max_ms), (10, 10.0, 1.0));
        assert_eq!(many.chunks, MAX_ITL_GAPS as u64 + 11);
        acc.fail(ErrorKind::CutShort, "a");
        acc.fail(ErrorKind::Timeout, "b");
        assert_eq!(acc.failure.unwrap().0, ErrorKind::CutShort);
    }
}
