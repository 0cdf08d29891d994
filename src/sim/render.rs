//! Wire formats: the bytes each imitated server sends. Streamed chunks are built from
//! pre-rendered templates with the token spliced in (no per-chunk serialization); whole
//! responses and error bodies are built once per request (`whole.rs`).
//!
//! Shapes follow the recorded real servers (tests/fixtures/transcripts): vLLM 0.32 (a
//! role-only first chunk, `finish_reason` on the last content chunk, a `choices: []` usage
//! chunk, `data: [DONE]`), Ollama 0.24's `/v1` layer (the role on every delta, a finish
//! chunk with an empty content, `system_fingerprint: "fp_ollama"`), and Ollama's NDJSON.

use bytes::BytesMut;

use super::engine::Timings;
use super::request::Finish;
use super::rng::TextGen;
use super::whole::ollama_final;
pub(crate) use super::whole::{full, ollama_load};

/// The six response formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    VllmChat,
    VllmCompletion,
    CompatChat,
    CompatCompletion,
    OllamaChat,
    OllamaGenerate,
}

impl Wire {
    pub(crate) fn is_ndjson(self) -> bool {
        matches!(self, Wire::OllamaChat | Wire::OllamaGenerate)
    }

    pub(crate) fn shape(self) -> Shape {
        match self {
            Wire::VllmChat | Wire::VllmCompletion => Shape::Vllm,
            Wire::CompatChat | Wire::CompatCompletion => Shape::Compat,
            Wire::OllamaChat | Wire::OllamaGenerate => Shape::Native,
        }
    }

    /// The `Content-Type` the imitated server sends (Ollama's Go handlers: Gin's JSON
    /// has a charset, its `/v1` layer's does not, nor does its event stream).
    pub(crate) fn content_type(self, stream: bool) -> &'static str {
        match (self.shape(), stream) {
            (Shape::Vllm, true) => "text/event-stream; charset=utf-8",
            (Shape::Compat, true) => "text/event-stream",
            (Shape::Native, true) => "application/x-ndjson",
            (Shape::Native, false) => NATIVE_JSON,
            (_, false) => "application/json",
        }
    }
}

/// Ollama's native JSON content type (Gin's `c.JSON`).
pub(crate) const NATIVE_JSON: &str = "application/json; charset=utf-8";

impl Shape {
    /// The content type of an error body with `status`. Ollama's `/v1` layer answers a
    /// request it could not decode through Gin (with a charset), others without.
    pub(crate) fn error_content_type(self, status: u16) -> &'static str {
        match self {
            Shape::Native => NATIVE_JSON,
            Shape::Compat if status == 400 => NATIVE_JSON,
            _ => "application/json",
        }
    }
}

/// Error body shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `{"error":{"message","type":"BadRequestError","param","code":400}}`
    Vllm,
    /// Ollama `/v1`: `{"error":{"message","type":"invalid_request_error","param":null,"code":null}}`
    Compat,
    /// Ollama `/api`: `{"error":"..."}`
    Native,
}

/// An error body in `shape` (keys in the servers' order).
pub(crate) fn error_body(shape: Shape, status: u16, message: &str, param: Option<&str>) -> String {
    let message = js(message);
    match shape {
        Shape::Vllm => {
            let ty = match status {
                // FastAPI's request validation (pydantic) errors.
                400 if param.is_some_and(|p| p.starts_with("body.")) => "Bad Request",
                400 => "BadRequestError",
                404 => "NotFoundError",
                405 => "MethodNotAllowedError",
                408 => "RequestTimeoutError",
                413 => "RequestEntityTooLargeError",
                422 => "UnprocessableEntityError",
                501 => "NotImplementedError",
                503 => "ServiceUnavailableError",
                _ => "InternalServerError",
            };
            let param = param.map_or_else(|| "null".to_string(), js);
            format!(
                r#"{{"error":{{"message":{message},"type":"{ty}","param":{param},"code":{status}}}}}"#
            )
        }
        Shape::Compat => {
            let ty = match status {
                400 => "invalid_request_error",
                404 => "not_found_error",
                _ => "api_error",
            };
            // A body Ollama's `/v1` middleware encodes ends in a newline; a request Gin
            // could not decode (400) is answered by Gin, without one.
            let nl = if status == 400 { "" } else { "\n" };
            format!(
                r#"{{"error":{{"message":{message},"type":"{ty}","param":null,"code":null}}}}{nl}"#
            )
        }
        Shape::Native => format!(r#"{{"error":{message}}}"#),
    }
}

/// Message of the injected mid-stream failure (vLLM's engine-death wording).
pub(crate) const ENGINE_DEAD: &str = "EngineCore encountered an issue. See stack trace (above) \
                                      for the root cause. (benchkeep simulator: injected fault)";

/// Everything a response needs to know about its request.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub wire: Wire,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish: Finish,
    pub fingerprint: String,
    /// Ollama profile: report a warm `load_duration` (the scheduler's 1-3 ms) carved
    /// out of the prompt evaluation, as the real server has one in every answer.
    pub warm_load: bool,
    /// Ollama profile, chat: merge some tokens into one chunk (see [`Stream::token`]).
    pub merge_chat: bool,
}

/// Pre-rendered chunk templates of one streamed response.
#[derive(Debug)]
pub(crate) struct Stream {
    ctx: Ctx,
    /// Sent once, right before the first token (vLLM's role-only chunk).
    head: Vec<u8>,
    /// Prefix of the first token's chunk.
    first_pre: Vec<u8>,
    /// Prefix of every other token's chunk.
    pre: Vec<u8>,
    /// NDJSON: text between the `created_at` timestamp and the token.
    ts_mid: Option<Vec<u8>>,
    /// Suffix of a token's chunk.
    post: Vec<u8>,
    /// Suffix of the last token's chunk (vLLM puts `finish_reason` there).
    last_post: Vec<u8>,
}

pub(crate) fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

impl Stream {
    pub(crate) fn new(ctx: Ctx) -> Self {
        let (id, model) = (js(&ctx.id), js(&ctx.model));
        let created = ctx.created;
        let finish = ctx.finish.as_str();
        let b = |s: String| s.into_bytes();
        let none = Vec::new;
        let (head, first_pre, pre, ts_mid, post, last_post) = match ctx.wire {
            Wire::VllmChat => {
                let common = format!(
                    r#"data: {{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"choices":[{{"index":0,"delta":"#
                );
                let pre = format!(r#"{common}{{"content":""#);
                (
                    b(format!(
                        r#"{common}{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}],"prompt_token_ids":null,"prompt_text":null}}"#
                    ) + "\n\n"),
                    b(pre.clone()),
                    b(pre),
                    None,
                    b(
                        r#""},"logprobs":null,"finish_reason":null,"token_ids":null}]}"#
                            .to_string()
                            + "\n\n",
                    ),
                    b(format!(
                        r#""}},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null}}]{}}}"#,
                        // The fingerprint goes on the usage chunk when there is one.
                        if ctx.include_usage {
                            String::new()
                        } else {
                            format!(r#","system_fingerprint":{}"#, js(&ctx.fingerprint))
                        }
                    ) + "\n\n"),
                )
            }
            Wire::VllmCompletion => {
                let pre = format!(
                    r#"data: {{"id":{id},"object":"text_completion","created":{created},"model":{model},"choices":[{{"index":0,"text":""#
                );
                (
                    none(),
                    b(pre.clone()),
                    b(pre),
                    None,
                    b(
                        r#"","logprobs":null,"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,"token_ids":null}]}"#
                            .to_string()
                            + "\n\n",
                    ),
                    b(format!(
                        r#"","logprobs":null,"finish_reason":"{finish}","stop_reason":null,"prompt_token_ids":null,"token_ids":null}}]}}"#
                    ) + "\n\n"),
                )
            }
            Wire::CompatChat => {
                let common = format!(
                    r#"data: {{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"index":0,"delta":"#
                );
                // Ollama: no role-only chunk; every delta repeats the role.
                let pre = format!(r#"{common}{{"role":"assistant","content":""#);
                let post = r#""},"finish_reason":null}]}"#.to_string() + "\n\n";
                (
                    none(),
                    b(pre.clone()),
                    b(pre),
                    None,
                    b(post.clone()),
                    b(post),
                )
            }
            Wire::CompatCompletion => {
                // Ollama's completion chunk: `choices` before `model`.
                let pre = format!(
                    r#"data: {{"id":{id},"object":"text_completion","created":{created},"choices":[{{"text":""#
                );
                let zero = if ctx.include_usage {
                    r#","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
                } else {
                    ""
                };
                let post = format!(
                    r#"","index":0,"finish_reason":null}}],"model":{model},"system_fingerprint":"fp_ollama"{zero}}}"#
                ) + "\n\n";
                (
                    none(),
                    b(pre.clone()),
                    b(pre),
                    None,
                    b(post.clone()),
                    b(post),
                )
            }
            Wire::OllamaChat | Wire::OllamaGenerate => {
                let pre = format!(r#"{{"model":{model},"created_at":""#);
                let mid = if ctx.wire == Wire::OllamaChat {
                    r#"","message":{"role":"assistant","content":""#
                } else {
                    r#"","response":""#
                };
                let post = if ctx.wire == Wire::OllamaChat {
                    "\"},\"done\":false}\n"
                } else {
                    "\",\"done\":false}\n"
                };
                (
                    none(),
                    b(pre.clone()),
                    b(pre),
                    Some(b(mid.to_string())),
                    b(post.to_string()),
                    b(post.to_string()),
                )
            }
        };
        Stream {
            ctx,
            head,
            first_pre,
            pre,
            ts_mid,
            post,
            last_post,
        }
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// True when chunks carry a `created_at` timestamp (NDJSON).
    pub(crate) fn needs_ts(&self) -> bool {
        self.ts_mid.is_some()
    }

    /// Ollama's chat sends fewer chunks than tokens (11 for 16): every third token is
    /// held back and goes out with the next one.
    fn holds(&self, index: u32) -> bool {
        self.ctx.merge_chat && index % 3 == 2 && index + 1 < self.ctx.completion_tokens
    }

    /// Append the chunk of token `index` (0-based), with the text of held-back tokens
    /// (`carry`) before its own; a held-back token only adds its text to `carry`.
    #[inline]
    pub(crate) fn token(
        &self,
        out: &mut BytesMut,
        index: u32,
        text: &mut TextGen,
        ts: &str,
        carry: &mut Vec<u8>,
    ) {
        if self.holds(index) {
            let (space, word) = text.next_word();
            if space {
                carry.push(b' ');
            }
            carry.extend_from_slice(word.as_bytes());
            return;
        }
        if index == 0 {
            out.extend_from_slice(&self.head);
            out.extend_from_slice(&self.first_pre);
        } else {
            out.extend_from_slice(&self.pre);
        }
        if let Some(mid) = &self.ts_mid {
            out.extend_from_slice(ts.as_bytes());
            out.extend_from_slice(mid);
        }
        out.extend_from_slice(carry);
        carry.clear();
        let (space, word) = text.next_word();
        if space {
            out.extend_from_slice(b" ");
        }
        out.extend_from_slice(word.as_bytes());
        if index + 1 == self.ctx.completion_tokens {
            out.extend_from_slice(&self.last_post);
        } else {
            out.extend_from_slice(&self.post);
        }
    }

    /// Append an extra content chunk (not counted as a token) carrying `text` as is,
    /// e.g. invalid UTF-8.
    pub(crate) fn raw_chunk(&self, out: &mut BytesMut, text: &[u8], ts: &str) {
        out.extend_from_slice(&self.pre);
        if let Some(mid) = &self.ts_mid {
            out.extend_from_slice(ts.as_bytes());
            out.extend_from_slice(mid);
        }
        out.extend_from_slice(text);
        out.extend_from_slice(&self.post);
    }

    /// Append what follows the last token: finish chunk, usage chunk and `[DONE]`, or
    /// Ollama's `done: true` object.
    pub(crate) fn trailer(&self, out: &mut BytesMut, t: &Timings, ts: &str) {
        let c = &self.ctx;
        let (id, model) = (js(&c.id), js(&c.model));
        let created = c.created;
        let finish = c.finish.as_str();
        let usage = format!(
            r#"{{"prompt_tokens":{},"total_tokens":{},"completion_tokens":{}}}"#,
            c.prompt_tokens,
            u64::from(c.prompt_tokens) + u64::from(c.completion_tokens),
            c.completion_tokens
        );
        let mut events: Vec<String> = Vec::new();
        match c.wire {
            Wire::OllamaChat | Wire::OllamaGenerate => {
                out.extend_from_slice(ollama_final(c, "", t, ts).as_bytes());
                out.extend_from_slice(b"\n");
                return;
            }
            Wire::VllmChat => {
                if c.include_usage {
                    events.push(format!(
                        r#"{{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"choices":[],"usage":{usage},"system_fingerprint":{}}}"#,
                        js(&c.fingerprint)
                    ));
                }
            }
            Wire::VllmCompletion => {
                if c.include_usage {
                    events.push(format!(
                        r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"choices":[],"usage":{usage},"system_fingerprint":{}}}"#,
                        js(&c.fingerprint)
                    ));
                }
            }
            Wire::CompatChat => {
                let head = format!(
                    r#"{{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":"#
                );
                events.push(format!(
                    r#"{head}[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":"{finish}"}}]}}"#
                ));
                if c.include_usage {
                    events.push(format!(r#"{head}[],"usage":{}}}"#, compat_usage(c)));
                }
            }
            Wire::CompatCompletion => {
                let head = format!(
                    r#"{{"id":{id},"object":"text_completion","created":{created},"choices":"#
                );
                let tail = format!(r#""model":{model},"system_fingerprint":"fp_ollama""#);
                let zero = if c.include_usage {
                    r#","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
                } else {
                    ""
                };
                events.push(format!(
                    r#"{head}[{{"text":"","index":0,"finish_reason":"{finish}"}}],{tail}{zero}}}"#
                ));
                if c.include_usage {
                    events.push(format!(r#"{head}[],{tail},"usage":{}}}"#, compat_usage(c)));
                }
            }
        }
        for e in events {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(e.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    /// Append a mid-stream error (vLLM: error event then `[DONE]`; NDJSON: error line).
    pub(crate) fn error_event(&self, out: &mut BytesMut) {
        let body = error_body(self.ctx.wire.shape(), 500, ENGINE_DEAD, None);
        if self.ctx.wire.is_ndjson() {
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(b"\n");
        } else {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
        }
    }

    /// Append one event (or line) that is not JSON.
    pub(crate) fn garbage(&self, out: &mut BytesMut) {
        if self.ctx.wire.is_ndjson() {
            out.extend_from_slice(GARBAGE_LINE.as_bytes());
        } else {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(GARBAGE_LINE.as_bytes());
            out.extend_from_slice(b"\n");
        }
    }

    /// The start of a line that will never end.
    pub(crate) fn endless_start(&self) -> &'static [u8] {
        if self.ctx.wire.is_ndjson() {
            b"{\"model\":\""
        } else {
            b"data: {\"id\":\""
        }
    }
}

/// Ollama's usage object (`prompt, completion, total`; vLLM puts `total` second).
fn compat_usage(c: &Ctx) -> String {
    let (p, n) = (c.prompt_tokens, c.completion_tokens);
    format!(
        r#"{{"prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{}}}"#,
        u64::from(p) + u64::from(n)
    )
}

/// The non-JSON line the garbage fault sends.
pub(crate) const GARBAGE_LINE: &str = "{\"id\": <html>502 Bad Gateway</html> not json\n";

/// RFC 3339 UTC timestamp with nanoseconds, as Ollama's `created_at`.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn ctx(wire: Wire, include_usage: bool) -> Ctx {
        Ctx {
            wire,
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m\"x".into(),
            include_usage,
            prompt_tokens: 4,
            completion_tokens: 3,
            finish: Finish::Length,
            fingerprint: "vllm-test".into(),
            warm_load: false,
            merge_chat: false,
        }
    }

    fn t() -> Timings {
        let ms = Duration::from_millis;
        Timings {
            load: ms(0),
            queue: ms(1),
            prefill: ms(2),
            decode: ms(3),
            total: ms(6),
        }
    }

    fn render(wire: Wire, usage: bool) -> String {
        let s = Stream::new(ctx(wire, usage));
        let mut out = BytesMut::new();
        let mut g = TextGen::new(1);
        for i in 0..3 {
            s.token(
                &mut out,
                i,
                &mut g,
                "2026-01-01T00:00:00.000000001Z",
                &mut Vec::new(),
            );
        }
        s.trailer(&mut out, &t(), "2026-01-01T00:00:00.000000002Z");
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn every_event_is_json_and_shapes_match() {
        for wire in [
            Wire::VllmChat,
            Wire::VllmCompletion,
            Wire::CompatChat,
            Wire::CompatCompletion,
        ] {
            let text = render(wire, true);
            assert!(text.ends_with("data: [DONE]\n\n"));
            let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
            for e in &events[..events.len() - 1] {
                let v: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(v["model"], "m\"x");
            }
            let usage: Value =
                serde_json::from_str(events[events.len() - 2].strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(usage["choices"], json!([]));
            assert_eq!(usage["usage"]["completion_tokens"], 3);
        }
        let vllm = render(Wire::VllmChat, false);
        let first: Value = serde_json::from_str(&vllm[6..vllm.find("\n\n").unwrap()]).unwrap();
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role":"assistant","content":""})
        );
        assert!(!vllm.contains("\"choices\":[]"));
        let compat = render(Wire::CompatChat, false);
        assert!(
            compat
                .contains(r#""delta":{"role":"assistant","content":""},"finish_reason":"length""#)
        );
        for wire in [Wire::OllamaChat, Wire::OllamaGenerate] {
            let text = render(wire, false);
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 4);
            let last = &lines[3];
            assert_eq!(last["done"], true);
            assert_eq!(last["eval_count"], 3);
            assert_eq!(last["total_duration"], 6_000_000);
            assert!(last["load_duration"].as_u64().unwrap() > 0);
        }
    }
}
