//! `openai-batch`: OpenAI Batch output lines, as `vllm run-batch` writes them.
//!
//! A line is `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`
//! (FORMATS.md §2.2, §2.3, §10). Rules:
//!
//! * Success only when `response.status_code` is 200, `error` is null, and the body is a
//!   successful response (a `choices` array; `finish_reason` not `abort`/`error`).
//!   Very old vLLM wrote the chat.completion itself as `response` (no `status_code`,
//!   no `body`): that counts as status 200.
//! * `error` may be vLLM's whole error object (`{"error": {...}}` or the old flat one) or a
//!   plain string; its message is kept. The kind is `http_status` when `status_code` (or the
//!   error's integer `code`) is a non-200 HTTP status, `other` when there is no response at
//!   all (OpenAI's "failed without a response", e.g. `batch_expired`), else `stream_error`.
//! * `id` is `custom_id` (what joins outputs to inputs), else the line's `id`;
//!   `http_status` is `status_code`. Tokens come from the body's `usage`.
//! * Batch output has no per-request timing (only `created`, in seconds), so a batch file
//!   never gives latencies; `analyze` needs `--total-time`.

use serde::Deserialize;

use crate::ingest::Outcome;
use crate::ingest::detect::describe_json;
use crate::ingest::lenient::{ApiError, Text};
use crate::ingest::line::json_reason;
use crate::ingest::openai::Response;
use crate::schema::{ErrorKind, RequestRecord};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BatchLine<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    custom_id: Text<'a>,
    #[serde(borrow)]
    response: Option<Response<'a>>,
    error: ApiError,
}

/// Parse one non-blank line of an `openai-batch` file.
pub(crate) fn parse_line(seq: u64, text: &str) -> Outcome {
    let line = match serde_json::from_str::<BatchLine>(text) {
        Ok(l) => l,
        Err(e) => return Outcome::Unparseable(json_reason(&e, "openai-batch")),
    };
    if line.custom_id.0.is_none() && line.response.is_none() && !line.error.present {
        return Outcome::Unparseable(format!(
            "not a batch output line (no `custom_id`, `response` or `error`): {}",
            describe_json(text)
        ));
    }
    let id = line
        .custom_id
        .to_owned_string()
        .or_else(|| line.id.to_owned_string());
    let mut record = to_record(seq, line);
    record.id = id;
    Outcome::Record(record)
}

fn to_record(seq: u64, line: BatchLine<'_>) -> RequestRecord {
    let status = line
        .response
        .as_ref()
        .and_then(|r| r.status_code.0)
        .and_then(|c| u16::try_from(c).ok());
    if line.error.present {
        let e = line.error;
        let http = status.filter(|s| *s != 200).or(e.http_status());
        let kind = if http.is_some() {
            ErrorKind::HttpStatus
        } else if line.response.is_none() {
            ErrorKind::Other
        } else {
            ErrorKind::StreamError
        };
        let mut r = RequestRecord::failed(seq, kind, e.describe());
        r.http_status = http.or(status);
        return r;
    }
    let Some(response) = line.response else {
        return RequestRecord::failed(seq, ErrorKind::Other, "no response and no error");
    };
    let body = if response.body.is_some() {
        response.body.map(|b| *b)
    } else if response.status_code.0.is_none() && response.choices.array {
        // Very old vLLM: `response` is the chat.completion itself.
        Some(response)
    } else {
        None
    };
    if let Some(s) = status.filter(|s| *s != 200) {
        let detail = body
            .as_ref()
            .and_then(|b| b.api_error())
            .map(|(e, _)| format!(": {}", e.describe()))
            .unwrap_or_default();
        let mut r = RequestRecord::failed(seq, ErrorKind::HttpStatus, format!("HTTP {s}{detail}"));
        r.http_status = Some(s);
        return r;
    }
    let mut r = match body.and_then(|b| b.into_record(seq)) {
        Some(r) => r,
        None => RequestRecord::failed(
            seq,
            ErrorKind::Other,
            "status 200 but the response has no body with `choices`",
        ),
    };
    r.http_status = r.http_status.or(status);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> RequestRecord {
        match parse_line(3, line) {
            Outcome::Record(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn vllm_success_line() {
        let r = record(
            r#"{"id":"vllm-942f","custom_id":"request-0","response":{"status_code":200,"request_id":"vllm-batch-a8fb","body":{"id":"chatcmpl-1","object":"chat.completion","created":1795846128,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"72206"},"logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":23,"total_tokens":28,"completion_tokens":5}}},"error":null}"#,
        );
        assert!(r.ok);
        assert_eq!(r.id.as_deref(), Some("request-0"));
        assert_eq!(r.http_status, Some(200));
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(23), Some(5)));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn per_line_errors() {
        let r = record(
            r#"{"id":"vllm-1","custom_id":"request-1","response":{"status_code":400,"request_id":"vllm-batch-2","body":null},"error":{"error":{"message":"max_tokens=5000 cannot be greater than max_model_len=1024.","type":"BadRequestError","param":"max_tokens","code":400}}}"#,
        );
        assert_eq!(
            (r.ok, r.error_kind, r.http_status),
            (false, Some(ErrorKind::HttpStatus), Some(400))
        );
        assert!(r.error.unwrap().contains("max_model_len=1024"));
        let r = record(
            r#"{"id":"vllm-5f","custom_id":"req-0003","response":{"status_code":400,"request_id":"vllm-batch-0f","body":null},"error":"URL /v1/completions is not a supported endpoint."}"#,
        );
        assert_eq!(
            (r.error_kind, r.http_status),
            (Some(ErrorKind::HttpStatus), Some(400))
        );
        let r = record(
            r#"{"id":"batch_req_1","custom_id":"a","response":null,"error":{"code":"batch_expired","message":"expired"}}"#,
        );
        assert_eq!(
            (r.error_kind, r.http_status),
            (Some(ErrorKind::Other), None)
        );
        let r = record(
            r#"{"custom_id":"b","response":{"status_code":500,"body":{"error":{"message":"boom","type":"InternalServerError","code":500}}},"error":null}"#,
        );
        assert_eq!(
            (r.error_kind, r.http_status),
            (Some(ErrorKind::HttpStatus), Some(500))
        );
        assert_eq!(
            r.error.as_deref(),
            Some("HTTP 500: InternalServerError: boom [500]")
        );
    }

    #[test]
    fn very_old_response_without_wrapper() {
        let r = record(
            r#"{"id":"cmpl-1","custom_id":"x","response":{"id":"chatcmpl-1","object":"chat.completion","choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}},"error":null}"#,
        );
        assert!(r.ok);
        assert_eq!(r.completion_tokens, Some(2));
        assert_eq!(r.id.as_deref(), Some("x"));
    }

    #[test]
    fn status_200_without_body_fails() {
        let r =
            record(r#"{"custom_id":"x","response":{"status_code":200,"body":null},"error":null}"#);
        assert_eq!(r.error_kind, Some(ErrorKind::Other));
    }
}
