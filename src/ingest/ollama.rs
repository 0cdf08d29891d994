//! `ollama`: Ollama `/api/chat` and `/api/generate` responses, one per line.
//!
//! Lines are what the server sends or what the `ollama` Python client's `model_dump()`
//! writes (every field present, `null` where unset; FORMATS.md §5, §6): text in
//! `message.content` or `response`, `done`, `done_reason`, `prompt_eval_count`,
//! `eval_count`, and durations in nanoseconds.
//!
//! Counting rules:
//!
//! * A line with `done: true` (or without a `done` value at all) is one request, a success:
//!   `prompt_tokens` = `prompt_eval_count`, `completion_tokens` = `eval_count` (unknown when
//!   missing: old servers dropped `prompt_eval_count` on a prompt-cache hit),
//!   `finish_reason` = `done_reason`, and `total_duration`, `load_duration`,
//!   `prompt_eval_duration`, `eval_duration` go to `server` timings. Client-side latencies
//!   (ttft, e2e) are not in these files and stay unknown.
//! * `{"error": "..."}` is one failed request (kind `stream_error`), message kept.
//! * A streamed dump's intermediate chunks (`done: false`) belong to the request that the
//!   next `done: true` (or error) line ends: they are not requests, and are counted in
//!   `Scan::skipped`. Chunks left at the end of the file with no final line are one request
//!   that was cut short (kind `cut_short`), counted on the last chunk's line.
//! * `done_reason` `load` / `unload` (an empty request that only loaded or unloaded the
//!   model) is not a benchmark request: skipped too.

use serde::Deserialize;

use crate::ingest::Outcome;
use crate::ingest::detect::describe_json;
use crate::ingest::lenient::{ApiError, Flag, Present, Text, Uint};
use crate::ingest::line::{is_failed_finish, json_reason};
use crate::schema::{ErrorKind, RequestRecord, ServerTimings};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OllamaLine<'a> {
    model: Present,
    created_at: Present,
    message: Present,
    response: Present,
    done: Flag,
    #[serde(borrow)]
    done_reason: Text<'a>,
    total_duration: Uint,
    load_duration: Uint,
    prompt_eval_count: Uint,
    prompt_eval_duration: Uint,
    eval_count: Uint,
    eval_duration: Uint,
    error: ApiError,
}

impl OllamaLine<'_> {
    fn looks_like_ollama(&self) -> bool {
        self.done.0.is_some()
            || self.message.0
            || self.response.0
            || self.eval_count.0.is_some()
            || self.prompt_eval_count.0.is_some()
            || (self.model.0 && self.created_at.0)
    }
}

/// Parser state: the `done: false` chunk seen last and not yet accounted for.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    pending_chunk: Option<u64>,
    /// Chunk lines that were folded into the request that followed them.
    pub folded_chunks: u64,
}

impl Parser {
    /// A final line ends the pending chunk run: those chunks were part of its request.
    fn settle(&mut self) {
        if self.pending_chunk.take().is_some() {
            self.folded_chunks += 1;
        }
    }

    /// Parse one non-blank line.
    pub fn parse_line(&mut self, seq: u64, text: &str) -> Outcome {
        let line = match serde_json::from_str::<OllamaLine>(text) {
            Ok(l) => l,
            Err(e) => return Outcome::Unparseable(json_reason(&e, "ollama")),
        };
        if line.error.present {
            self.settle();
            let mut r = RequestRecord::failed(seq, ErrorKind::StreamError, line.error.describe());
            r.http_status = line.error.http_status();
            return Outcome::Record(r);
        }
        if !line.looks_like_ollama() {
            return Outcome::Unparseable(format!(
                "not an ollama response (no `done`, `message`, `response` or counts): {}",
                describe_json(text)
            ));
        }
        if line.done.0 == Some(false) {
            // The previous chunk, if any, is part of the same request as this one.
            self.settle();
            self.pending_chunk = Some(seq);
            return Outcome::Pending;
        }
        self.settle();
        let reason = line.done_reason.as_str();
        if matches!(reason, Some("load" | "unload")) {
            return Outcome::Skipped;
        }
        let mut r = RequestRecord {
            seq,
            ok: true,
            prompt_tokens: line.prompt_eval_count.0,
            completion_tokens: line.eval_count.0,
            finish_reason: reason.map(str::to_owned),
            server: ServerTimings {
                total_duration_ns: line.total_duration.0,
                load_duration_ns: line.load_duration.0,
                prompt_eval_duration_ns: line.prompt_eval_duration.0,
                eval_duration_ns: line.eval_duration.0,
            },
            ..Default::default()
        };
        if is_failed_finish(reason) {
            r.ok = false;
            r.error_kind = Some(ErrorKind::Aborted);
            r.error = Some(format!("done_reason {:?}", reason.unwrap_or_default()));
        }
        Outcome::Record(r)
    }

    /// End of file: chunks with no final line are a request that was cut short.
    pub fn finish(&mut self) -> Option<RequestRecord> {
        let seq = self.pending_chunk.take()?;
        Some(RequestRecord::failed(
            seq,
            ErrorKind::CutShort,
            "the stream ended without its final `done: true` line",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dump_chat_response() {
        let mut p = Parser::default();
        let line = r#"{"model":"llama3.2","created_at":"2026-01-01T12:00:00.143Z","done":true,"done_reason":"stop","total_duration":612004512,"load_duration":20311042,"prompt_eval_count":31,"prompt_eval_duration":48022000,"eval_count":5,"eval_duration":69411000,"message":{"role":"assistant","content":"The sky is blue.","thinking":null,"images":null,"tool_name":null,"tool_calls":null},"logprobs":null}"#;
        let Outcome::Record(r) = p.parse_line(1, line) else {
            panic!()
        };
        assert!(r.ok);
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(31), Some(5)));
        assert_eq!(r.server.eval_duration_ns, Some(69411000));
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn chunks_fold_into_their_request() {
        let mut p = Parser::default();
        let chunk = r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"The"},"done":false}"#;
        let last = r#"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","eval_count":3}"#;
        assert!(matches!(p.parse_line(1, chunk), Outcome::Pending));
        assert!(matches!(p.parse_line(2, chunk), Outcome::Pending));
        assert!(matches!(p.parse_line(3, last), Outcome::Record(_)));
        assert_eq!(p.folded_chunks, 2);
        assert!(p.finish().is_none());
        assert!(matches!(p.parse_line(4, chunk), Outcome::Pending));
        let cut = p.finish().unwrap();
        assert_eq!((cut.seq, cut.error_kind), (4, Some(ErrorKind::CutShort)));
        assert_eq!(p.folded_chunks, 2);
    }

    #[test]
    fn errors_and_loads() {
        let mut p = Parser::default();
        let Outcome::Record(r) = p.parse_line(
            1,
            r#"{"error":"model \"foo\" not found, try pulling it first"}"#,
        ) else {
            panic!()
        };
        assert_eq!(r.error_kind, Some(ErrorKind::StreamError));
        assert!(r.error.unwrap().contains("not found"));
        assert!(matches!(
            p.parse_line(
                2,
                r#"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"load"}"#
            ),
            Outcome::Skipped
        ));
        assert!(matches!(
            p.parse_line(3, r#"{"id": 1}"#),
            Outcome::Unparseable(_)
        ));
    }
}
