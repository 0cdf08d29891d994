//! Ollama's native `/api/chat` and `/api/generate` responses (FORMATS.md §5): NDJSON lines
//! when streamed, one object otherwise. The final object (`done: true`) carries the token
//! counts and Ollama's own nanosecond durations, which are kept as they are.

use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use super::apierror;
use super::response::{Acc, Flow, Text, preview};
use crate::schema::ErrorKind;

#[derive(Deserialize, Default)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Text<'a>,
    #[serde(default, borrow)]
    thinking: Text<'a>,
    #[serde(default, borrow)]
    tool_calls: Text<'a>,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
    #[serde(default, borrow)]
    response: Text<'a>,
    #[serde(default, borrow)]
    thinking: Text<'a>,
    #[serde(default)]
    done: bool,
    #[serde(default, borrow)]
    done_reason: Text<'a>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
    #[serde(default)]
    error: Option<Value>,
}

impl Line<'_> {
    fn error_message(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        let wrapped = serde_json::json!({ "error": e });
        Some(apierror::message_of(&wrapped).unwrap_or_else(|| e.to_string()))
    }

    /// The content of this line: (has content, its text).
    fn content(&self) -> (bool, &str) {
        let (mut any, mut text) = (self.response.is_present(), self.response.as_str());
        any |= self.thinking.is_present();
        if let Some(m) = &self.message {
            any |= m.content.is_present() || m.thinking.is_present() || m.tool_calls.is_present();
            if m.content.is_present() {
                text = m.content.as_str();
            }
        }
        (any, text)
    }

    fn finish(self, acc: &mut Acc) {
        acc.done = true;
        acc.prompt_tokens = self.prompt_eval_count.or(acc.prompt_tokens);
        acc.completion_tokens = self.eval_count.or(acc.completion_tokens);
        if self.done_reason.is_present() {
            acc.finish_reason = Some(self.done_reason.as_str().to_string());
        }
        acc.server.total_duration_ns = self.total_duration;
        acc.server.load_duration_ns = self.load_duration;
        acc.server.prompt_eval_duration_ns = self.prompt_eval_duration;
        acc.server.eval_duration_ns = self.eval_duration;
    }
}

/// One NDJSON line, received at `at`.
pub fn on_line(line: &[u8], at: Instant, acc: &mut Acc) -> Flow {
    if line.trim_ascii().is_empty() {
        return Flow::Continue;
    }
    match serde_json::from_slice::<Line>(line) {
        Ok(l) => {
            if let Some(msg) = l.error_message() {
                acc.fail(
                    ErrorKind::StreamError,
                    format!(
                        "error line in the stream: {}",
                        apierror::truncate(&msg, apierror::MAX_MESSAGE)
                    ),
                );
                return Flow::Done;
            }
            let (any, text) = l.content();
            if any {
                acc.content(at, text);
            }
            if l.done {
                l.finish(acc);
                return Flow::Done;
            }
            Flow::Continue
        }
        Err(e) => {
            acc.fail(
                ErrorKind::InvalidJson,
                format!("stream line is not valid JSON ({e}): {}", preview(line)),
            );
            Flow::Done
        }
    }
}

/// A whole (non-streamed) response body with HTTP status 2xx.
pub fn on_body(body: &[u8], acc: &mut Acc) {
    match serde_json::from_slice::<Line>(body) {
        Ok(l) => {
            if let Some(msg) = l.error_message() {
                acc.fail(
                    ErrorKind::StreamError,
                    format!(
                        "HTTP 200 with an error body: {}",
                        apierror::truncate(&msg, apierror::MAX_MESSAGE)
                    ),
                );
                return;
            }
            let (_, text) = l.content();
            acc.append_text(text);
            if l.done {
                l.finish(acc);
            } else {
                acc.fail(
                    ErrorKind::CutShort,
                    "response body has no `done: true`: the answer is incomplete",
                );
            }
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

    fn feed(lines: &[&str]) -> Acc {
        let mut acc = Acc::new(Some(1000));
        let t0 = Instant::now();
        for (i, l) in lines.iter().enumerate() {
            if on_line(
                l.as_bytes(),
                t0 + Duration::from_millis(2 * i as u64),
                &mut acc,
            ) == Flow::Done
            {
                break;
            }
        }
        acc
    }

    #[test]
    fn chat_stream() {
        let acc = feed(&[
            r#"{"model":"llama3.2","created_at":"2026-01-01T12:00:00.101Z","message":{"role":"assistant","content":"The"},"done":false}"#,
            "",
            r#"{"model":"llama3.2","created_at":"2026-01-01T12:00:00.115Z","message":{"role":"assistant","content":" sky"},"done":false}"#,
            r#"{"model":"llama3.2","created_at":"2026-01-01T12:00:00.143Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":612004512,"load_duration":20311042,"prompt_eval_count":31,"prompt_eval_duration":48022000,"eval_count":5,"eval_duration":69411000}"#,
        ]);
        assert!(acc.done && acc.failure.is_none());
        assert_eq!(acc.chunks, 2);
        assert_eq!(acc.itl_ms, vec![4.0]);
        assert_eq!(acc.prompt_tokens, Some(31));
        assert_eq!(acc.completion_tokens, Some(5));
        assert_eq!(acc.server.eval_duration_ns, Some(69_411_000));
        assert_eq!(acc.finish_reason.as_deref(), Some("stop"));
        assert_eq!(acc.text.as_deref(), Some("The sky"));
    }

    #[test]
    fn generate_and_errors() {
        let acc = feed(&[
            r#"{"response":"Blue","done":false}"#,
            r#"{"response":", mostly.","done":true,"eval_count":4}"#,
        ]);
        assert_eq!(acc.chunks, 2, "a final line with text is a chunk too");
        assert_eq!(acc.text.as_deref(), Some("Blue, mostly."));
        let acc = feed(&[r#"{"response":"a","done":false}"#, r#"{"error":"boom"}"#]);
        assert_eq!(
            acc.failure.unwrap(),
            (
                ErrorKind::StreamError,
                "error line in the stream: boom".into()
            )
        );
        let acc = feed(&["{not json"]);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::InvalidJson);
    }

    #[test]
    fn whole_body() {
        let mut acc = Acc::new(None);
        on_body(
            br#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":true,"eval_count":2,"prompt_eval_count":3}"#,
            &mut acc,
        );
        assert!(acc.done);
        assert_eq!(acc.completion_tokens, Some(2));
        let mut acc = Acc::new(None);
        on_body(br#"{"error":"model \"x\" not found"}"#, &mut acc);
        assert_eq!(acc.failure.unwrap().0, ErrorKind::StreamError);
    }
}
