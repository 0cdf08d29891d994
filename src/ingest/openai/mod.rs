//! `openai`: one OpenAI-style response per line (the seed's format).
//!
//! A line is a `chat.completion` or `text_completion` object (OpenAI, vLLM, Ollama's `/v1`
//! layer, or any compatible server), or the error body such a server returned instead:
//! `{"error": {...}}` (OpenAI, vLLM >= 0.10.1, Ollama `/v1`), vLLM's flat
//! `{"object": "error", ...}`, FastAPI's `{"detail": ...}`, or `{"error": "text"}`.
//!
//! * Success: the line has a `choices` array and no error, and its first choice's
//!   `finish_reason` is not `abort` or `error` (those are failed with kind `aborted`).
//! * Failure kind: `http_status` (with `http_status` set) when the error carries an integer
//!   `code` that is an HTTP status (vLLM does), or for `detail` bodies (FastAPI answers those
//!   with a 4xx); otherwise `stream_error` (an error body whose status the file does not
//!   tell, e.g. OpenAI's string codes, Ollama's null code, a mid-stream error event).
//! * Tokens come from `usage`; a `null` or absent `usage` leaves them unknown.
//!   `completion_tokens` missing but `total_tokens` and `prompt_tokens` present: the
//!   difference. vLLM's optional per-request `metrics.time_to_first_token_ms` becomes
//!   `ttft_ms`.

use serde::Deserialize;

use crate::ingest::detect::describe_json;
use crate::ingest::lenient::{ApiError, Num, Text, Uint};
mod skim;

use crate::ingest::Outcome;
use crate::ingest::line::{is_failed_finish, json_reason};
use crate::schema::{ErrorKind, RequestRecord};

/// The fields of a response (or error) line benchkeep reads; everything else is skipped.
///
/// The same struct reads a batch line's `response` (`status_code`, `body`), since very old
/// `vllm run-batch` wrote the chat.completion itself there.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Response<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub object: Text<'a>,
    #[serde(borrow)]
    pub choices: Choices<'a>,
    pub usage: Option<Usage>,
    /// Boxed (like `detail`): rare, and a smaller struct is cheaper to move per line.
    pub error: Option<Box<ApiError>>,
    /// vLLM's flat error (`{"object": "error", "message": ...}`).
    #[serde(borrow)]
    pub message: Text<'a>,
    #[serde(rename = "type", borrow)]
    pub kind: Text<'a>,
    pub code: Uint,
    pub detail: Option<Box<ApiError>>,
    pub metrics: Option<ServeMetrics>,
    /// Batch `response` wrapper: the HTTP status.
    pub status_code: Uint,
    /// Batch `response` wrapper: the response body.
    #[serde(borrow)]
    pub body: Option<Box<Response<'a>>>,
}

/// `usage` of a response.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Usage {
    pub prompt_tokens: Uint,
    pub completion_tokens: Uint,
    pub total_tokens: Uint,
}

/// vLLM's opt-in per-request metrics (`--enable-per-request-metrics`), in milliseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServeMetrics {
    pub time_to_first_token_ms: Num,
}

/// `choices`: whether it is an array, how long, and the first choice's finish reason
/// (message text is skipped, never built).
#[derive(Debug, Default)]
pub(crate) struct Choices<'a> {
    pub array: bool,
    pub len: usize,
    pub finish_reason: Text<'a>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    finish_reason: Text<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices<'de>, A::Error> {
                let mut c = Choices {
                    array: true,
                    ..Default::default()
                };
                if let Some(first) = seq.next_element::<Choice<'de>>()? {
                    c.len = 1;
                    c.finish_reason = first.finish_reason;
                    while seq.next_element::<IgnoredAny>()?.is_some() {
                        c.len += 1;
                    }
                }
                Ok(c)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Choices<'de>, E> {
                Ok(Choices::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choices<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Choices::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl Response<'_> {
    /// The error this body reports, if it is an error body (nested, flat or `detail`).
    pub fn api_error(&self) -> Option<(ApiError, ErrorKind)> {
        if let Some(e) = self.error.as_deref().filter(|e| e.present) {
            let kind = match e.http_status() {
                Some(_) => ErrorKind::HttpStatus,
                None => ErrorKind::StreamError,
            };
            return Some((e.clone(), kind));
        }
        let flat = self.message.0.is_some()
            && (self.code.0.is_some() || self.kind.0.is_some())
            && !self.choices.array;
        if self.object.as_str() == Some("error") || flat {
            let e = ApiError {
                present: true,
                message: self.message.to_owned_string(),
                kind: self.kind.to_owned_string(),
                code_num: self.code.0,
                code_str: None,
            };
            let kind = match e.http_status() {
                Some(_) => ErrorKind::HttpStatus,
                None => ErrorKind::StreamError,
            };
            return Some((e, kind));
        }
        if let Some(d) = self.detail.as_deref().filter(|d| d.present)
            && !self.choices.array
        {
            return Some((d.clone(), ErrorKind::HttpStatus));
        }
        None
    }

    /// Turn a parsed response into a record; `None` when it is neither a response with
    /// `choices` nor an error body.
    pub fn into_record(self, seq: u64) -> Option<RequestRecord> {
        if let Some((e, kind)) = self.api_error() {
            let mut r = RequestRecord::failed(seq, kind, e.describe());
            r.http_status = e.http_status();
            r.id = self.id.to_owned_string();
            return Some(r);
        }
        if !self.choices.array {
            return None;
        }
        let (prompt, completion) = match &self.usage {
            Some(u) => {
                let completion = u
                    .completion_tokens
                    .0
                    .or_else(|| u.total_tokens.0?.checked_sub(u.prompt_tokens.0?));
                (u.prompt_tokens.0, completion)
            }
            None => (None, None),
        };
        let finish = self.choices.finish_reason.as_str();
        let mut r = RequestRecord {
            seq,
            id: self.id.to_owned_string(),
            ok: true,
            prompt_tokens: prompt,
            completion_tokens: completion,
            finish_reason: finish.map(str::to_owned),
            ttft_ms: self
                .metrics
                .as_ref()
                .and_then(|m| m.time_to_first_token_ms.0)
                .filter(|v| *v >= 0.0),
            ..Default::default()
        };
        if is_failed_finish(finish) {
            r.ok = false;
            r.error_kind = Some(ErrorKind::Aborted);
            r.error = Some(format!(
                "finish_reason {:?}: the server ended the request",
                finish.unwrap_or_default()
            ));
        }
        Some(r)
    }
}

/// Parse one non-blank line of an `openai` file.
pub(crate) fn parse_line(seq: u64, text: &str) -> Outcome {
    let parsed = match skim::response(text) {
        Some(r) => Ok(r),
        None => serde_json::from_str::<Response>(text),
    };
    match parsed {
        Ok(resp) => {
            let chunk = resp.object.as_str() == Some("chat.completion.chunk");
            match resp.into_record(seq) {
                Some(r) => Outcome::Record(r),
                None if chunk => Outcome::Unparseable(
                    "a streaming chunk (chat.completion.chunk), not a whole response; save the complete responses (or benchkeep run's raw records)".into(),
                ),
                None => Outcome::Unparseable(format!(
                    "not an openai response (no `choices` and no `error`): {}",
                    describe_json(text)
                )),
            }
        }
        Err(e) => Outcome::Unparseable(json_reason(&e, "openai")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> RequestRecord {
        match parse_line(7, line) {
            Outcome::Record(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn chat_completion_with_vllm_extras() {
        let r = record(
            r#"{"id":"chatcmpl-5b0f","object":"chat.completion","created":1767225600,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","refusal":null,"reasoning":null},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":21,"total_tokens":29,"completion_tokens":8,"prompt_tokens_details":null},"system_fingerprint":null,"prompt_logprobs":null,"kv_transfer_params":null}"#,
        );
        assert!(r.ok);
        assert_eq!(r.seq, 7);
        assert_eq!(r.id.as_deref(), Some("chatcmpl-5b0f"));
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(21), Some(8)));
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn completion_tokens_from_total() {
        let r =
            record(r#"{"choices":[{"text":"x"}],"usage":{"prompt_tokens":6,"total_tokens":11}}"#);
        assert_eq!(r.completion_tokens, Some(5));
    }

    #[test]
    fn abort_is_a_failure() {
        let r = record(
            r#"{"object":"chat.completion","choices":[{"finish_reason":"abort"}],"usage":null}"#,
        );
        assert!(!r.ok);
        assert_eq!(r.error_kind, Some(ErrorKind::Aborted));
        assert_eq!(r.prompt_tokens, None);
    }

    #[test]
    fn error_shapes() {
        let r = record(
            r#"{"error": {"message": "too long", "type": "BadRequestError", "param": null, "code": 400}}"#,
        );
        assert_eq!(
            (r.ok, r.error_kind, r.http_status),
            (false, Some(ErrorKind::HttpStatus), Some(400))
        );
        assert_eq!(r.error.as_deref(), Some("BadRequestError: too long [400]"));
        let r = record(
            r#"{"object": "error", "message": "old vllm", "type": "BadRequestError", "param": null, "code": 400}"#,
        );
        assert_eq!(
            (r.error_kind, r.http_status),
            (Some(ErrorKind::HttpStatus), Some(400))
        );
        let r = record(
            r#"{"error": {"message": "nope", "type": "invalid_request_error", "param": null, "code": null}}"#,
        );
        assert_eq!(
            (r.error_kind, r.http_status),
            (Some(ErrorKind::StreamError), None)
        );
        let r = record(
            r#"{"detail": [{"loc": ["body"], "msg": "field required", "type": "missing"}]}"#,
        );
        assert_eq!(r.error_kind, Some(ErrorKind::HttpStatus));
        assert_eq!(r.error.as_deref(), Some("missing: field required"));
        let r = record(r#"{"error": "model not found"}"#);
        assert_eq!(r.error.as_deref(), Some("model not found"));
    }

    #[test]
    fn not_a_response() {
        match parse_line(1, r#"{"foo": 1}"#) {
            Outcome::Unparseable(m) => assert!(m.contains("\"foo\""), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse_line(1, r#"{"id": "x", "choices": [{"#) {
            Outcome::Unparseable(m) => assert!(m.starts_with("truncated JSON"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
