//! OpenAI Chat Completions and legacy Completions responses (FORMATS.md §1, §10), streamed
//! (SSE events) or whole.
//!
//! Each event is deserialized into small borrowed structs that read only what a benchmark
//! needs: whether the chunk carries content (text, reasoning or a tool call), the finish
//! reason, `usage`, and a top-level `error` (a failure even inside an HTTP 200 stream).

use std::time::Instant;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::response::{Acc, Flow, Text, preview};
use super::{apierror, scan};
use crate::schema::ErrorKind;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Choices<'a>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    /// Old vLLM's flat error object (`{"object": "error", "message": ...}`).
    #[serde(default, borrow)]
    object: Text<'a>,
    #[serde(default, borrow)]
    message: Text<'a>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Text<'a>,
    #[serde(default, borrow)]
    reasoning: Text<'a>,
    #[serde(default, borrow)]
    reasoning_content: Text<'a>,
    #[serde(default, borrow)]
    tool_calls: Text<'a>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    message: Option<Delta<'a>>,
    #[serde(default, borrow)]
    text: Text<'a>,
    #[serde(default, borrow)]
    finish_reason: Text<'a>,
}

/// The choices of one chunk, folded while they are read (no vector per chunk).
#[derive(Default)]
struct Choices<'a> {
    present: bool,
    text: Option<Text<'a>>,
    extra_text: String,
    finish: Option<Text<'a>>,
}

impl<'a> Choices<'a> {
    fn add(&mut self, c: Choice<'a>) {
        if c.finish_reason.is_present() {
            self.finish = Some(c.finish_reason);
        }
        let parts = c.delta.or(c.message);
        let mut any = c.text.is_present();
        let mut text = c.text;
        if let Some(d) = parts {
            any |= d.content.is_present()
                || d.reasoning.is_present()
                || d.reasoning_content.is_present()
                || d.tool_calls.is_present();
            if d.content.is_present() {
                text = d.content;
            }
        }
        if !any {
            return;
        }
        self.present = true;
        match &self.text {
            None => self.text = Some(text),
            Some(_) => self.extra_text.push_str(text.as_str()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Choices::default();
                while let Some(c) = seq.next_element::<Choice<'de>>()? {
                    out.add(c);
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Choices::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// The error carried by a parsed chunk or body, if any.
fn chunk_error(c: &Chunk) -> Option<String> {
    if let Some(e) = &c.error {
        let wrapped = serde_json::json!({ "error": e });
        return Some(apierror::message_of(&wrapped).unwrap_or_else(|| e.to_string()));
    }
    if c.object.as_str() == "error" {
        return Some(c.message.as_str().to_string());
    }
    None
}

fn apply(c: Chunk, at: Option<Instant>, acc: &mut Acc) {
    let choices = c.choices;
    if choices.present {
        let text = choices.text.as_ref().map(Text::as_str).unwrap_or("");
        match at {
            Some(at) => acc.content(at, text),
            None => acc.append_text(text),
        }
        if !choices.extra_text.is_empty() {
            acc.append_text(&choices.extra_text);
        }
    }
    if let Some(f) = choices.finish {
        acc.finish_reason = Some(f.as_str().to_string());
    }
    if let Some(u) = c.usage {
        if u.prompt_tokens.is_some() {
            acc.prompt_tokens = u.prompt_tokens;
        }
        if u.completion_tokens.is_some() {
            acc.completion_tokens = u.completion_tokens;
        }
    }
}

/// One SSE event's data, received at `at`.
pub fn on_event(data: &[u8], at: Instant, acc: &mut Acc) -> Flow {
    if data.trim_ascii() == b"[DONE]" {
        acc.done = true;
        return Flow::Done;
    }
    if std::str::from_utf8(data).is_err() {
        acc.fail(
            ErrorKind::InvalidJson,
            format!("stream event is not valid UTF-8: {}", preview(data)),
        );
        return Flow::Done;
    }
    if let Some(facts) = scan::openai_chunk(data, &mut acc.memo) {
        apply_facts(facts, at, acc);
        return Flow::Continue;
    }
    on_event_full(data, at, acc)
}

fn apply_facts(f: scan::ChunkFacts, at: Instant, acc: &mut Acc) {
    if f.content {
        if acc.text.is_some() {
            let text = f.text.map(|t| t.decode()).unwrap_or_default();
            acc.content(at, &text);
        } else {
            acc.content(at, "");
        }
    }
    if let Some(r) = f.finish_reason {
        acc.finish_reason = Some(r.decode().into_owned());
    }
    if f.prompt_tokens.is_some() {
        acc.prompt_tokens = f.prompt_tokens;
    }
    if f.completion_tokens.is_some() {
        acc.completion_tokens = f.completion_tokens;
    }
}

/// The reference path: one event through serde (errors, unusual shapes, malformed data).
fn on_event_full(data: &[u8], at: Instant, acc: &mut Acc) -> Flow {
    match serde_json::from_slice::<Chunk>(data) {
        Ok(c) => {
            if let Some(msg) = chunk_error(&c) {
                acc.fail(
                    ErrorKind::StreamError,
                    format!(
                        "error event in the stream: {}",
                        apierror::truncate(&msg, apierror::MAX_MESSAGE)
                    ),
                );
                return Flow::Done;
            }
            apply(c, Some(at), acc);
            Flow::Continue
        }
        Err(e) => {
            acc.fail(
                ErrorKind::InvalidJson,
                format!("stream event is not valid JSON ({e}): {}", preview(data)),
            );
            Flow::Done
        }
    }
}

/// A whole (non-streamed) response body with HTTP status 2xx.
pub fn on_body(body: &[u8], acc: &mut Acc) {
    match serde_json::from_slice::<Chunk>(body) {
        Ok(c) => {
            if let Some(msg) = chunk_error(&c) {
                acc.fail(
                    ErrorKind::StreamError,
                    format!(
                        "HTTP 200 with an error body: {}",
                        apierror::truncate(&msg, apierror::MAX_MESSAGE)
                    ),
                );
                return;
            }
            apply(c, None, acc);
            acc.done = true;
        }
        Err(e) => acc.fail(
            ErrorKind::InvalidJson,
            format!("response body is not valid JSON ({e}): {}", preview(body)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// FORMATS.md §10: the real vLLM 0.32 capture.
    const VLLM: &[&str] = &[
        r#"{"id":"chatcmpl-b161fc84aeb460a9","object":"chat.completion.chunk","created":1795846128,"model":"tiny","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#,
        r#"{"id":"chatcmpl-b161fc84aeb460a9","object":"chat.completion.chunk","created":1795846128,"model":"tiny","choices":[{"index":0,"delta":{"content":"72"},"logprobs":null,"finish_reason":null,"token_ids":null}]}"#,
        r#"{"id":"chatcmpl-b161fc84aeb460a9","object":"chat.completion.chunk","created":1795846128,"model":"tiny","choices":[{"index":0,"delta":{"content":"206"},"logprobs":null,"finish_reason":"length","stop_reason":null,"token_ids":null}]}"#,
        r#"{"id":"chatcmpl-b161fc84aeb460a9","object":"chat.completion.chunk","created":1795846128,"model":"tiny","choices":[],"usage":{"prompt_tokens":23,"total_tokens":28,"completion_tokens":5},"system_fingerprint":"vllm-0.32.0-54c53a64"}"#,
        "[DONE]",
    ];

    fn feed(events: &[&str]) -> Acc {
        let mut acc = Acc::new(Some(1000));
        let t0 = Instant::now();
        for (i, e) in events.iter().enumerate() {
            if on_event(e.as_bytes(), t0 + Duration::from_millis(i as u64), &mut acc) == Flow::Done
            {
                break;
            }
        }
        acc
    }

    #[test]
    fn vllm_capture() {
        let acc = feed(VLLM);
        assert!(acc.done && acc.failure.is_none());
        assert_eq!(acc.chunks, 2, "the role-only first chunk is not a token");
        assert_eq!(acc.itl_ms, vec![1.0]);
        assert_eq!(acc.prompt_tokens, Some(23));
        assert_eq!(acc.completion_tokens, Some(5));
        assert_eq!(acc.finish_reason.as_deref(), Some("length"));
        assert_eq!(acc.text.as_deref(), Some("72206"));
    }

    #[test]
    fn openai_and_ollama_compat_shapes() {
        let acc = feed(&[
            r#"{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"a","choices":[{"index":0,"delta":{"content":"Paris."},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"id":"a","choices":[],"usage":{"prompt_tokens":21,"completion_tokens":3,"total_tokens":24,"prompt_tokens_details":{"cached_tokens":0}}}"#,
            "[DONE]",
        ]);
        assert!(acc.done);
        assert_eq!(acc.chunks, 1);
        assert_eq!(acc.completion_tokens, Some(3));
        assert_eq!(acc.finish_reason.as_deref(), Some("stop"));
        // legacy completions with zero usage on every chunk; reasoning counts as content
        let acc = feed(&[
            r#"{"object":"text_completion","choices":[{"text":" Paris","index":0}],"usage":{"prompt_tokens":0,"completion_tokens":0}}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":6,"completion_tokens":5}}"#,
            "[DONE]",
        ]);
        assert_eq!(acc.chunks, 2);
        assert_eq!(acc.completion_tokens, Some(5));
    }

    #[test]
    fn error_event_inside_200() {
        let acc = feed(&[
            VLLM[1],
            r#"{"error": {"message": "engine dead", "type": "InternalServerError", "param": null, "code": 500}}"#,
            "[DONE]",
        ]);
        let (kind, msg) = acc.failure.unwrap();
        assert_eq!(kind, ErrorKind::StreamError);
        assert!(msg.contains("InternalServerError: engine dead"), "{msg}");
        assert!(!acc.done);
        let acc = feed(&[r#"{"error": {"object":"error","message":"old","code":500}}"#]);
        assert!(acc.failure.unwrap().1.contains("old"));
        let acc = feed(&[r#"{"object":"error","message":"flat","code":500}"#]);
        assert!(acc.failure.unwrap().1.contains("flat"));
    }

    #[test]
    fn garbage_is_invalid_json() {
        let acc = feed(&[VLLM[1], "this is not json {"]);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::InvalidJson);
        let acc = feed(&["123"]);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::InvalidJson);
    }

    mod fast_path {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::{Value, json};

        fn text() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(json!("")),
                "[a-z\\u{e9}\"\\\\ \\n]{0,6}".prop_map(Value::from),
            ]
        }

        fn choice() -> impl Strategy<Value = Value> {
            (
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                any::<bool>(),
                prop_oneof![
                    Just(json!(null)),
                    Just(json!("stop")),
                    Just(json!("length"))
                ],
                any::<bool>(),
            )
                .prop_map(|(content, reasoning, txt, tools, finish, delta_null)| {
                    let mut delta = serde_json::Map::new();
                    delta.insert("role".into(), json!("assistant"));
                    if let Some(c) = content {
                        delta.insert("content".into(), c);
                    }
                    if let Some(r) = reasoning {
                        delta.insert("reasoning".into(), r);
                    }
                    if tools {
                        delta.insert("tool_calls".into(), json!([{"id": "t"}]));
                    }
                    let mut c = serde_json::Map::new();
                    c.insert("index".into(), json!(0));
                    c.insert(
                        "delta".into(),
                        if delta_null {
                            Value::Null
                        } else {
                            Value::Object(delta)
                        },
                    );
                    if let Some(t) = txt {
                        c.insert("text".into(), t);
                    }
                    c.insert("finish_reason".into(), finish);
                    c.insert("logprobs".into(), Value::Null);
                    Value::Object(c)
                })
        }

        fn chunk() -> impl Strategy<Value = Value> {
            (
                prop_oneof![
                    Just(Value::Null),
                    proptest::collection::vec(choice(), 0..3).prop_map(Value::from)
                ],
                prop_oneof![
                    Just(Value::Null),
                    (0u32..1000, proptest::option::of(0u32..1000)).prop_map(|(p, c)| {
                        json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": 1})
                    })
                ],
                "[a-z0-9-]{0,8}",
            )
                .prop_map(|(choices, usage, id)| {
                    json!({"id": id, "object": "chat.completion.chunk", "created": 1.5e9,
                           "model": "m", "choices": choices, "usage": usage})
                })
        }

        fn facts(acc: &Acc) -> impl PartialEq + std::fmt::Debug {
            (
                acc.chunks,
                acc.text.clone(),
                acc.finish_reason.clone(),
                acc.prompt_tokens,
                acc.completion_tokens,
                acc.failure.clone(),
            )
        }

        proptest! {
            /// The fast scanner and serde agree on every chunk shape, also for a stream of
            /// chunks that share their start (the memo path).
            #[test]
            fn fast_and_full_agree(cs in proptest::collection::vec(chunk(), 1..4), pretty in any::<bool>(), same_id in any::<bool>()) {
                let t = Instant::now();
                let mut fast = Acc::new(Some(1000));
                let mut full = Acc::new(Some(1000));
                for mut c in cs {
                    if same_id {
                        c["id"] = serde_json::json!("same");
                    }
                    let data = if pretty {
                        serde_json::to_vec_pretty(&c).unwrap()
                    } else {
                        serde_json::to_vec(&c).unwrap()
                    };
                    prop_assert_eq!(on_event(&data, t, &mut fast), on_event_full(&data, t, &mut full));
                    prop_assert_eq!(facts(&fast), facts(&full));
                }
            }

            /// Cut or damaged events never panic and never pass as a clean chunk silently
            /// differently from serde.
            #[test]
            fn damaged_events(c in chunk(), cut in 0usize..400, flip in 0usize..400) {
                let mut data = serde_json::to_vec(&c).unwrap();
                data.truncate(cut.min(data.len()));
                if !data.is_empty() {
                    let i = flip % data.len();
                    data[i] ^= 0x20;
                }
                let t = Instant::now();
                let mut fast = Acc::new(Some(1000));
                let mut full = Acc::new(Some(1000));
                let _ = on_event(&data, t, &mut fast);
                let _ = on_event_full(&data, t, &mut full);
                prop_assert_eq!(fast.failure.is_some(), full.failure.is_some() || std::str::from_utf8(&data).is_err());
            }
        }
    }

    #[test]
    fn whole_bodies() {
        let mut acc = Acc::new(Some(100));
        on_body(
            br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"The capital is Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"total_tokens":29,"completion_tokens":8}}"#,
            &mut acc,
        );
        assert!(acc.done);
        assert_eq!(acc.chunks, 0);
        assert_eq!(acc.completion_tokens, Some(8));
        assert_eq!(acc.text.as_deref(), Some("The capital is Paris."));
        let mut acc = Acc::new(None);
        on_body(br#"{"error":{"message":"x","type":"t"}}"#, &mut acc);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::StreamError);
        let mut acc = Acc::new(None);
        on_body(b"<html>", &mut acc);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::InvalidJson);
    }
}
