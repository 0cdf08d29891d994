//! Wire formats: the bytes each imitated server sends. Streamed chunks are built from
//! pre-rendered templates with the token spliced in (no per-chunk serialization); whole
//! responses and error bodies are built with serde_json once per request.
//!
//! Shapes follow FORMATS.md: vLLM 0.32 (§10: role-only first chunk, `finish_reason` on
//! the last content chunk, `choices: []` usage chunk, `data: [DONE]`), Ollama's `/v1`
//! layer ≥ 0.32.6 (§1.3/§5.8: role with the first text, a `delta: {}` finish chunk,
//! `system_fingerprint: "fp_ollama"`), and Ollama's NDJSON (§5).

use std::time::Duration;

use bytes::BytesMut;

use super::engine::Timings;
use super::request::Finish;
use super::rng::TextGen;

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

    pub(crate) fn content_type(self, stream: bool) -> &'static str {
        match (stream, self.is_ndjson()) {
            (false, _) => "application/json",
            (true, true) => "application/x-ndjson",
            (true, false) => "text/event-stream; charset=utf-8",
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
            format!(r#"{{"error":{{"message":{message},"type":"{ty}","param":null,"code":null}}}}"#)
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

fn js(s: &str) -> String {
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
                        r#""}},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null}}]}}"#
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
                        r#"","logprobs":null,"finish_reason":null,"stop_reason":null}]}"#
                            .to_string()
                            + "\n\n",
                    ),
                    b(format!(
                        r#"","logprobs":null,"finish_reason":"{finish}","stop_reason":null}}]}}"#
                    ) + "\n\n"),
                )
            }
            Wire::CompatChat => {
                let common = format!(
                    r#"data: {{"id":{id},"object":"chat.completion.chunk","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"index":0,"delta":"#
                );
                let post = r#""},"finish_reason":null}]}"#.to_string() + "\n\n";
                (
                    none(),
                    b(format!(r#"{common}{{"role":"assistant","content":""#)),
                    b(format!(r#"{common}{{"content":""#)),
                    None,
                    b(post.clone()),
                    b(post),
                )
            }
            Wire::CompatCompletion => {
                let pre = format!(
                    r#"data: {{"id":{id},"object":"text_completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"text":""#
                );
                let zero = if ctx.include_usage {
                    r#","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
                } else {
                    ""
                };
                let post = format!(r#"","index":0,"finish_reason":null}}]{zero}}}"#) + "\n\n";
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

    /// Append the chunk of token `index` (0-based).
    #[inline]
    pub(crate) fn token(&self, out: &mut BytesMut, index: u32, text: &mut TextGen, ts: &str) {
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
                    r#"{head}[{{"index":0,"delta":{{}},"finish_reason":"{finish}"}}]}}"#
                ));
                if c.include_usage {
                    events.push(format!(r#"{head}[],"usage":{usage}}}"#));
                }
            }
            Wire::CompatCompletion => {
                let head = format!(
                    r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":"#
                );
                let zero = if c.include_usage {
                    r#","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}"#
                } else {
                    ""
                };
                events.push(format!(
                    r#"{head}[{{"text":"","index":0,"finish_reason":"{finish}"}}]{zero}}}"#
                ));
                if c.include_usage {
                    events.push(format!(r#"{head}[],"usage":{usage}}}"#));
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

/// The non-JSON line the garbage fault sends.
pub(crate) const GARBAGE_LINE: &str = "{\"id\": <html>502 Bad Gateway</html> not json\n";

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Ollama's final object (`done: true`) with its durations; zero values are omitted
/// like Go's `omitempty`.
fn ollama_final(c: &Ctx, text: &str, t: &Timings, ts: &str) -> String {
    let mut v = ollama_head(c.wire, &c.model, text, ts);
    v.push_str(r#","done":true,"done_reason":""#);
    v.push_str(c.finish.as_str());
    v.push('"');
    for (k, n) in [
        ("total_duration", ns(t.total)),
        ("load_duration", ns(t.load)),
        ("prompt_eval_count", u64::from(c.prompt_tokens)),
        ("prompt_eval_duration", ns(t.prefill)),
        ("eval_count", u64::from(c.completion_tokens)),
        ("eval_duration", ns(t.decode)),
    ] {
        if n > 0 {
            v.push_str(&format!(r#","{k}":{n}"#));
        }
    }
    v.push('}');
    v
}

/// `{"model":..,"created_at":..,"message":{..}` (chat) or `..,"response":..` (generate),
/// without the closing brace.
fn ollama_head(wire: Wire, model: &str, text: &str, ts: &str) -> String {
    let (model, text, ts) = (js(model), js(text), js(ts));
    if wire == Wire::OllamaChat {
        format!(
            r#"{{"model":{model},"created_at":{ts},"message":{{"role":"assistant","content":{text}}}"#
        )
    } else {
        format!(r#"{{"model":{model},"created_at":{ts},"response":{text}"#)
    }
}

/// Ollama's answer to a request that only loads the model (`done_reason: "load"`).
pub(crate) fn ollama_load(wire: Wire, model: &str, ts: &str) -> String {
    ollama_head(wire, model, "", ts) + r#","done":true,"done_reason":"load"}"#
}

/// A whole (non-streamed) response.
pub(crate) fn full(c: &Ctx, text: &str, t: &Timings, ts: &str) -> String {
    let (id, model, created) = (js(&c.id), js(&c.model), c.created);
    let (p, n) = (c.prompt_tokens, c.completion_tokens);
    let total = u64::from(p) + u64::from(n);
    let finish = c.finish.as_str();
    let content = js(text);
    match c.wire {
        Wire::VllmChat => format!(
            r#"{{"id":{id},"object":"chat.completion","created":{created},"model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"reasoning":null}},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null}}],"service_tier":null,"system_fingerprint":null,"usage":{{"prompt_tokens":{p},"total_tokens":{total},"completion_tokens":{n},"prompt_tokens_details":null}},"prompt_logprobs":null,"prompt_token_ids":null,"kv_transfer_params":null}}"#
        ),
        Wire::VllmCompletion => format!(
            r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"choices":[{{"index":0,"text":{content},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null,"prompt_logprobs":null,"prompt_token_ids":null}}],"service_tier":null,"system_fingerprint":null,"usage":{{"prompt_tokens":{p},"total_tokens":{total},"completion_tokens":{n},"prompt_tokens_details":null}},"kv_transfer_params":null}}"#
        ),
        Wire::CompatChat => format!(
            r#"{{"id":{id},"object":"chat.completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{total}}}}}"#
        ),
        Wire::CompatCompletion => format!(
            r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"text":{content},"index":0,"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{total}}}}}"#
        ),
        Wire::OllamaChat | Wire::OllamaGenerate => ollama_final(c, text, t, ts),
    }
}

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
        }
    }

    fn t() -> Timings {
        let ms = Duration::from_millis;
        Timings {
            load: ms(0),
            queue: ms(1),
            prefill: ms(2),
            decode: ms(3),
            ttft: ms(3),
            total: ms(6),
        }
    }

    fn render(wire: Wire, usage: bool) -> String {
        let s = Stream::new(ctx(wire, usage));
        let mut out = BytesMut::new();
        let mut g = TextGen::new(1);
        for i in 0..3 {
            s.token(&mut out, i, &mut g, "2026-01-01T00:00:00.000000001Z");
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
        assert!(compat.contains(r#""delta":{},"finish_reason":"length""#));
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
            assert!(last.get("load_duration").is_none());
        }
    }
}
