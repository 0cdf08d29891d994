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

use super::apierror;
use super::response::{Acc, Flow, Text, preview};
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
