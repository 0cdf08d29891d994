//! Format detection: which reader a file needs, from its first records.
//!
//! Lines are read from the start of the file, one at a time (at most the first MiB of each
//! is looked at), until one is decisive. Only top-level keys are inspected, and values are
//! skipped without being built, so a huge first line costs no memory. The rules, first
//! match wins:
//!
//! | format | a line is decisive when it has |
//! |---|---|
//! | `benchkeep` | a numeric `seq` and a boolean `ok` |
//! | `openai-batch` | `custom_id`, or an object/null `response` together with an `error` key |
//! | `openai` | `object` `chat.completion` / `text_completion`, or a `choices` array |
//! | `ollama` | a boolean `done`, `done_reason`, `eval_count`, `prompt_eval_count`, or `created_at` with `message` / a string `response` |
//! | `vllm-offline` | `outputs`, `request_id`, `prompt_token_ids` / `token_ids` arrays, or `text` with `finish_reason` / `num_output_tokens` |
//!
//! Lines that are only an error are not decisive: they are remembered, and if nothing
//! better shows up, an error object (`{"error": {...}}`, `{"object": "error"}`,
//! `{"detail": ...}`) means `openai` and an error string (`{"error": "..."}`) means
//! `ollama`. Unparseable lines are passed over. At most [`MAX_LINES`] non-blank lines or
//! [`MAX_BYTES`] are read.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::error::Error;
use crate::ingest::Format;
use crate::ingest::line::{is_blank, strip_bom};

/// Non-blank lines looked at, at most.
pub(crate) const MAX_LINES: u64 = 1000;
/// Bytes read, at most.
pub(crate) const MAX_BYTES: u64 = 64 << 20;
/// Bytes of one line looked at.
const LINE_PREFIX: usize = 1 << 20;

/// What a value looked like.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Null,
    Bool(bool),
    Number,
    Str(String),
    Array,
    Object,
    /// The line was cut (by the prefix limit) inside this value.
    Unknown,
}

/// Top-level keys that decide the format.
const KEYS: &[&str] = &[
    "seq",
    "ok",
    "custom_id",
    "response",
    "error",
    "object",
    "choices",
    "done",
    "done_reason",
    "eval_count",
    "prompt_eval_count",
    "created_at",
    "message",
    "outputs",
    "request_id",
    "prompt_token_ids",
    "token_ids",
    "text",
    "finish_reason",
    "num_output_tokens",
    "detail",
];

#[derive(Debug, Default)]
struct Probe {
    fields: Vec<(&'static str, Shape)>,
}

impl Probe {
    fn get(&self, key: &str) -> Option<&Shape> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, s)| s)
    }

    fn present(&self, key: &str) -> bool {
        self.get(key).is_some_and(|s| *s != Shape::Null)
    }

    fn is(&self, key: &str, want: &[Shape]) -> bool {
        self.get(key).is_some_and(|s| want.contains(s))
    }

    fn str_is(&self, key: &str, values: &[&str]) -> bool {
        matches!(self.get(key), Some(Shape::Str(s)) if values.contains(&s.as_str()))
    }
}

enum Verdict {
    Decisive(Format),
    /// An error line: a hint, used when nothing decisive follows.
    Hint(Format),
    Unknown,
}

fn classify(p: &Probe) -> Verdict {
    use Shape::*;
    let array = [Array, Unknown];
    if p.is("seq", &[Number]) && matches!(p.get("ok"), Some(Bool(_))) {
        return Verdict::Decisive(Format::Benchkeep);
    }
    if p.present("custom_id")
        || (p.is("response", &[Object, Null, Unknown]) && p.get("error").is_some())
    {
        return Verdict::Decisive(Format::OpenAiBatch);
    }
    if p.str_is("object", &["chat.completion.chunk"]) {
        return Verdict::Unknown;
    }
    if p.str_is("object", &["chat.completion", "text_completion"]) || p.is("choices", &array) {
        return Verdict::Decisive(Format::OpenAi);
    }
    if matches!(p.get("done"), Some(Bool(_)))
        || p.present("done_reason")
        || p.present("eval_count")
        || p.present("prompt_eval_count")
        || (p.present("created_at")
            && (p.present("message") || matches!(p.get("response"), Some(Str(_)))))
    {
        return Verdict::Decisive(Format::Ollama);
    }
    if p.is("outputs", &[Array, Object, Unknown])
        || p.present("request_id")
        || p.is("prompt_token_ids", &array)
        || p.is("token_ids", &array)
        || (p.present("text") && (p.present("finish_reason") || p.present("num_output_tokens")))
    {
        return Verdict::Decisive(Format::VllmOffline);
    }
    if p.str_is("object", &["error"]) || p.is("error", &[Object, Unknown]) || p.present("detail") {
        return Verdict::Hint(Format::OpenAi);
    }
    if matches!(p.get("error"), Some(Str(_))) {
        return Verdict::Hint(Format::Ollama);
    }
    Verdict::Unknown
}

/// Fills a [`Probe`] as it parses, so a line cut by the prefix limit still tells its keys.
struct ProbeSeed<'p>(&'p mut Probe);

impl<'de> DeserializeSeed<'de> for ProbeSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProbeSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match KEYS.iter().find(|k| **k == key) {
                Some(k) if self.0.get(k).is_none() => {
                    self.0.fields.push((k, Shape::Unknown));
                    let shape = map.next_value::<Shape>()?;
                    if let Some(last) = self.0.fields.last_mut() {
                        last.1 = shape;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> de::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shape, E> {
                Ok(Shape::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Number)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Number)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Number)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
                Ok(Shape::Str(short(v, 64)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Array)
            }
        }
        d.deserialize_any(V)
    }
}

/// Read one line into `buf`, keeping at most `cap` bytes of it and never reading more than
/// `budget` bytes. Returns the bytes consumed (0 at end of file) and whether it was cut.
fn read_line_prefix(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
    budget: u64,
) -> io::Result<(u64, bool)> {
    let (mut total, mut cut) = (0u64, false);
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() || total >= budget {
            return Ok((total, cut || total >= budget));
        }
        let (len, found) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        let take = len.min(cap.saturating_sub(buf.len()));
        cut |= take < len;
        buf.extend_from_slice(&avail[..take]);
        let used = if found { len + 1 } else { len };
        r.consume(used);
        total += used as u64;
        if found {
            return Ok((total, cut));
        }
    }
}

/// The format of `file` (opened at `path`), or an input error naming what was found.
pub(crate) fn detect(path: &Path, file: File) -> anyhow::Result<Format> {
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let (mut line_no, mut nonblank, mut read) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let mut hint: Option<Format> = None;
    let mut first_seen: Option<String> = None;
    let read_err = |e: io::Error| Error::input(path, format!("could not be read: {e}"));
    while nonblank < MAX_LINES && read < MAX_BYTES {
        buf.clear();
        let (used, cut) = read_line_prefix(&mut reader, &mut buf, LINE_PREFIX, MAX_BYTES - read)
            .map_err(read_err)?;
        if used == 0 {
            break;
        }
        read += used;
        line_no += 1;
        let bytes = if line_no == 1 {
            strip_bom(&buf)
        } else {
            &buf[..]
        };
        if is_blank(bytes) {
            continue;
        }
        nonblank += 1;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) if cut && e.error_len().is_none() => {
                std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(_) => {
                first_seen.get_or_insert_with(|| format!("line {line_no} is not valid UTF-8"));
                continue;
            }
        };
        let mut probe = Probe::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = ProbeSeed(&mut probe)
            .deserialize(&mut de)
            .and_then(|()| de.end());
        match parsed {
            Ok(()) => {}
            Err(e) if cut && e.is_eof() => {}
            Err(_) => {
                first_seen.get_or_insert_with(|| {
                    let what = if cut {
                        format!("not JSON (starts with {:?})", short(text, 40))
                    } else {
                        describe_json(text)
                    };
                    format!("line {line_no} is {what}")
                });
                continue;
            }
        }
        match classify(&probe) {
            Verdict::Decisive(f) => return Ok(f),
            Verdict::Hint(f) => {
                hint.get_or_insert(f);
            }
            Verdict::Unknown => {
                first_seen.get_or_insert_with(|| {
                    let mut what = describe_json(text);
                    if probe.str_is("object", &["chat.completion.chunk"]) {
                        what.push_str(" (a streaming chunk: save whole responses instead)");
                    }
                    format!("line {line_no} is {what}")
                });
            }
        }
    }
    if let Some(f) = hint {
        return Ok(f);
    }
    if nonblank == 0 {
        return Err(crate::ingest::empty_error(path).into());
    }
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    Err(Error::input(
        path,
        format!(
            "is in no format benchkeep reads: {}. benchkeep reads JSON Lines of OpenAI responses (openai), \
             vllm run-batch / OpenAI Batch output (openai-batch), Ollama /api/chat or /api/generate \
             responses (ollama), vLLM RequestOutput dumps (vllm-offline) and its own raw records \
             (benchkeep); if the file is one of these, force it with --format ({})",
            first_seen.unwrap_or_else(|| "nothing decisive in its first lines".into()),
            names.join(", ")
        ),
    )
    .into())
}

/// What a JSON line looks like, for messages: `an object with keys "a", "b"`, `an array`.
pub(crate) fn describe_json(text: &str) -> String {
    struct Keys(Vec<String>, usize);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Keys(Vec::new(), 0);
                    while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                        map.next_value::<IgnoredAny>()?;
                        keys.1 += 1;
                        if keys.0.len() < 12 {
                            keys.0.push(short(&k, 40));
                        }
                    }
                    Ok(keys)
                }
            }
            d.deserialize_map(V)
        }
    }
    match serde_json::from_str::<Keys>(text) {
        Ok(Keys(keys, 0)) if keys.is_empty() => "an empty object {}".to_string(),
        Ok(Keys(keys, total)) => {
            let list: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
            let more = total - keys.len();
            let tail = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            format!("an object with keys {}{tail}", list.join(", "))
        }
        Err(_) => match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => match text.trim_start().as_bytes().first() {
                Some(b'[') => "a JSON array, not an object".to_string(),
                Some(b'"') => "a JSON string, not an object".to_string(),
                _ => "a JSON scalar, not an object".to_string(),
            },
            Err(_) => format!("not JSON (starts with {:?})", short(text, 40)),
        },
    }
}

/// The first `max` characters of `s`, with `...` when cut.
pub(crate) fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str) -> Option<Format> {
        let mut p = Probe::default();
        let mut de = serde_json::Deserializer::from_str(line);
        let _ = ProbeSeed(&mut p).deserialize(&mut de);
        match classify(&p) {
            Verdict::Decisive(f) => Some(f),
            _ => None,
        }
    }

    #[test]
    fn classifies_each_format() {
        assert_eq!(verdict(r#"{"seq":1,"ok":true}"#), Some(Format::Benchkeep));
        assert_eq!(
            verdict(r#"{"id":"x","custom_id":"a","response":null,"error":"e"}"#),
            Some(Format::OpenAiBatch)
        );
        assert_eq!(
            verdict(
                r#"{"id":"c","object":"chat.completion","choices":[],"prompt_token_ids":null}"#
            ),
            Some(Format::OpenAi)
        );
        assert_eq!(
            verdict(r#"{"model":"m","created_at":"t","response":"hi","done":true}"#),
            Some(Format::Ollama)
        );
        assert_eq!(
            verdict(r#"{"request_id":"0","outputs":[]}"#),
            Some(Format::VllmOffline)
        );
        assert_eq!(
            verdict(r#"{"object":"chat.completion.chunk","choices":[]}"#),
            None
        );
        assert_eq!(verdict(r#"{"error":{"message":"x"}}"#), None);
    }

    #[test]
    fn a_cut_prefix_still_shows_its_keys() {
        // Cut inside the token id array: the key is known, its value is not finished.
        assert_eq!(
            verdict(r#"{"prompt":"p","prompt_token_ids":[1,2,3"#),
            Some(Format::VllmOffline)
        );
    }

    #[test]
    fn line_prefix_respects_cap_and_budget() {
        let data = b"abcdef\nxy";
        let mut r = io::BufReader::with_capacity(2, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_prefix(&mut r, &mut buf, 3, 100).unwrap(),
            (7, true)
        );
        assert_eq!(buf, b"abc");
        buf.clear();
        assert_eq!(
            read_line_prefix(&mut r, &mut buf, 3, 100).unwrap(),
            (2, false)
        );
        buf.clear();
        assert_eq!(
            read_line_prefix(&mut r, &mut buf, 3, 100).unwrap(),
            (0, false)
        );
        let mut r = io::BufReader::with_capacity(2, &data[..]);
        assert_eq!(read_line_prefix(&mut r, &mut buf, 3, 4).unwrap(), (4, true));
    }

    #[test]
    fn describe_json_names_keys() {
        assert_eq!(
            describe_json(r#"{"a":1,"b":[2]}"#),
            r#"an object with keys "a", "b""#
        );
        assert_eq!(describe_json("[1]"), "a JSON array, not an object");
        assert!(describe_json("hello").starts_with("not JSON"));
        assert_eq!(describe_json("{}"), "an empty object {}");
    }
}
