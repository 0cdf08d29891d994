//! The load-generating client: one streamed (or whole) generation request in, one
//! [`RequestRecord`] out, with per-chunk timing.
//!
//! Timing follows DESIGN.md: TTFT and E2E count from the *scheduled* send time, so a client
//! or server that falls behind shows up in the latencies; the first token is the first chunk
//! with non-empty content; ITL are the gaps between content chunks; token counts come from
//! the server (`usage`, `eval_count`). Every failure (connect, timeout, idle stall, HTTP
//! status, error event in a 200 stream, cut-short stream, invalid JSON, oversized line)
//! becomes a failed record with a kind and a message; nothing here panics or stops a run.

pub mod apierror;
pub mod body;
pub mod events;
pub mod http;
pub mod lines;
pub mod mlflow;
pub mod ollama;
pub mod openai;
pub mod probe;
pub mod prom;
mod reader;
pub mod response;
pub mod scan;
pub mod sse;
pub mod url;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::http::{HeaderMap, Method, Uri};

use crate::schema::{ErrorKind, MAX_FINISH_REASON_BYTES, RECORD_VERSION, RequestRecord};
use reader::Reader;
use response::{Acc, Flow};

pub use url::BaseUrl;

/// The error of a request still in flight when the run was stopped (grace expired, or a
/// second signal).
pub const ABORTED_MESSAGE: &str = "stopped by signal before it finished";

/// How long a finished stream may take to deliver the end of its body.
const DRAIN_WAIT: Duration = Duration::from_millis(200);

/// The request/response protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions` (vLLM, Ollama's `/v1`, any OpenAI-compatible server).
    OpenAiChat,
    /// `POST /v1/completions`.
    OpenAiCompletions,
    /// Ollama's native `POST /api/chat`.
    OllamaChat,
    /// Ollama's native `POST /api/generate`.
    OllamaGenerate,
}

impl Api {
    pub const ALL: [Api; 4] = [
        Api::OpenAiChat,
        Api::OpenAiCompletions,
        Api::OllamaChat,
        Api::OllamaGenerate,
    ];

    /// The name used by `--api` and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAiChat => "openai-chat",
            Api::OpenAiCompletions => "openai-completions",
            Api::OllamaChat => "ollama-chat",
            Api::OllamaGenerate => "ollama-generate",
        }
    }

    pub fn from_name(s: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The default for a platform: Ollama's native chat for `ollama*`, else OpenAI chat.
    pub fn default_for_platform(platform: &str) -> Api {
        if platform.to_ascii_lowercase().starts_with("ollama") {
            Api::OllamaChat
        } else {
            Api::OpenAiChat
        }
    }

    /// The endpoint path.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiCompletions => "/v1/completions",
            Api::OllamaChat => "/api/chat",
            Api::OllamaGenerate => "/api/generate",
        }
    }

    pub fn is_ollama(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }
}

/// Limits that keep a hostile server from growing memory (RELIABILITY P8).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest SSE/NDJSON line, and largest SSE event.
    pub max_line_bytes: usize,
    /// Largest non-streamed response body.
    pub max_body_bytes: usize,
    /// Most of an error body read for its message.
    pub max_error_bytes: usize,
    /// Most response text kept per request with `--save-text`.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 1 << 20,
            max_body_bytes: 16 << 20,
            max_error_bytes: 64 << 10,
            max_text_bytes: 64 << 10,
        }
    }
}

/// Everything about how requests are sent, validated.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub api: Api,
    pub stream: bool,
    /// Whole-request limit, from the actual send.
    pub timeout: Duration,
    /// Longest silence (no bytes) tolerated.
    pub idle_timeout: Duration,
    /// Extra headers, authentication included. Values are secret: never printed.
    pub headers: HeaderMap,
    pub limits: Limits,
    pub save_text: bool,
    /// Idle connections kept (the concurrency).
    pub pool_size: usize,
}

/// Replaces known secret strings in messages (a server that echoes a header back must not
/// make a key reach the raw log).
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), crate::redact::REDACTED);
            }
        }
        out
    }
}

/// Sends generation requests to one endpoint.
#[derive(Clone)]
pub struct Client {
    transport: http::Transport,
    uri: Uri,
    opts: ClientOptions,
    scrubber: Scrubber,
}

/// Seconds from `clock` to `t` (negative when `t` is earlier), to the microsecond.
pub fn secs_since(clock: Instant, t: Instant) -> f64 {
    let s = if t >= clock {
        (t - clock).as_secs_f64()
    } else {
        -(clock - t).as_secs_f64()
    };
    (s * 1e6).round() / 1e6
}

impl Client {
    pub fn new(base: &BaseUrl, opts: ClientOptions, scrubber: Scrubber) -> anyhow::Result<Client> {
        let transport = http::Transport::new(base.scheme, opts.pool_size)?;
        let uri: Uri = base
            .endpoint(opts.api.path())
            .parse()
            .map_err(|_| anyhow::anyhow!("--base-url {}: not a valid URL", base.redacted()))?;
        Ok(Client {
            transport,
            uri,
            opts,
            scrubber,
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The pooled HTTP client (shared with the probe before a run).
    pub fn transport(&self) -> &http::Transport {
        &self.transport
    }

    /// Send one request body and measure it. `scheduled` is when it was due to be sent;
    /// times in the record are seconds since `clock`. `seq` and `id` are left to the caller.
    pub async fn generate(&self, body: Bytes, scheduled: Instant, clock: Instant) -> RequestRecord {
        self.generate_until(body, scheduled, clock, std::future::pending())
            .await
    }

    /// [`Client::generate`], stopped when `abort` completes first: the request is dropped
    /// and its record is a failure of kind `aborted` with whatever was measured until then
    /// (send time, first token, chunks, tokens of a usage already seen), ending at the abort.
    pub async fn generate_until(
        &self,
        body: Bytes,
        scheduled: Instant,
        clock: Instant,
        abort: impl std::future::Future<Output = ()>,
    ) -> RequestRecord {
        let sent = Instant::now();
        let save = self
            .opts
            .save_text
            .then_some(self.opts.limits.max_text_bytes);
        let mut acc = Acc::new(save);
        let mut http_status = None;
        let outcome = {
            let exchange = self.exchange(body, sent, &mut acc, &mut http_status);
            tokio::select! {
                biased;
                end = exchange => Some(end),
                _ = abort => None,
            }
        };
        let end = match outcome {
            Some(end) => end.unwrap_or_else(Instant::now),
            None => {
                acc.fail(ErrorKind::Aborted, ABORTED_MESSAGE);
                Instant::now()
            }
        };
        if acc.failure.is_none()
            && let Some(reason) = acc.finish_reason.as_deref()
            && matches!(reason, "abort" | "error")
        {
            acc.fail(
                ErrorKind::Aborted,
                format!("the server ended the request with finish_reason {reason:?}"),
            );
        }
        self.record(acc, http_status, scheduled, sent, end, clock)
    }

    /// Send `body` and read the response into `acc`; returns the end time of a complete
    /// response.
    async fn exchange(
        &self,
        body: Bytes,
        sent: Instant,
        acc: &mut Acc,
        http_status: &mut Option<u16>,
    ) -> Option<Instant> {
        let deadline = sent + self.opts.timeout;
        let mut end = None;
        let send = self
            .transport
            .send(Method::POST, &self.uri, &self.opts.headers, Some(body));
        match tokio::time::timeout_at(deadline.into(), send).await {
            Err(_) => acc.fail(
                ErrorKind::Timeout,
                format!(
                    "no response within --timeout {}",
                    fmt_duration(self.opts.timeout)
                ),
            ),
            Ok(Err(http::SendError::Connect(m))) => {
                acc.fail(ErrorKind::Connect, format!("cannot connect: {m}"))
            }
            Ok(Err(http::SendError::Closed(m))) => acc.fail(
                ErrorKind::ConnectionClosed,
                format!(
                    "the server closed the connection before its answer could be read ({m}); a server that refuses a request body as too large (HTTP 413) closes it while the body is still being sent"
                ),
            ),
            Ok(Err(http::SendError::Other(m))) => {
                acc.fail(ErrorKind::Other, format!("request failed: {m}"))
            }
            Ok(Ok(mut resp)) => {
                *http_status = Some(resp.status);
                if !(200..300).contains(&resp.status) {
                    let limit = self.opts.limits.max_error_bytes;
                    let body = self
                        .read_body(&mut resp.body, deadline, limit, false)
                        .await
                        .unwrap_or_else(|(_, _, partial)| partial);
                    acc.fail(
                        ErrorKind::HttpStatus,
                        format!("HTTP {}: {}", resp.status, apierror::snippet(&body)),
                    );
                } else if self.opts.stream
                    && let Some(t) = resp
                        .content_type
                        .as_deref()
                        .filter(|t| !is_stream_type(t, self.opts.api.is_ollama()))
                {
                    let limit = self.opts.limits.max_error_bytes;
                    let body = self
                        .read_body(&mut resp.body, deadline, limit, false)
                        .await
                        .unwrap_or_else(|(_, _, partial)| partial);
                    acc.fail(
                        ErrorKind::NotAStream,
                        format!(
                            "HTTP {} answered the streaming request with Content-Type {t}, not a stream ({} expected): {}",
                            resp.status,
                            if self.opts.api.is_ollama() {
                                "application/x-ndjson"
                            } else {
                                "text/event-stream"
                            },
                            apierror::snippet(&body)
                        ),
                    );
                } else if self.opts.stream {
                    end = self.read_stream(&mut resp.body, deadline, acc).await;
                } else {
                    let limit = self.opts.limits.max_body_bytes;
                    match self.read_body(&mut resp.body, deadline, limit, true).await {
                        Ok(body) => {
                            end = Some(Instant::now());
                            if self.opts.api.is_ollama() {
                                ollama::on_body(&body, acc);
                            } else {
                                openai::on_body(&body, acc);
                            }
                        }
                        Err((kind, msg, _)) => acc.fail(kind, msg),
                    }
                }
            }
        }
        end
    }

    fn record(
        &self,
        acc: Acc,
        http_status: Option<u16>,
        scheduled: Instant,
        sent: Instant,
        end: Instant,
        clock: Instant,
    ) -> RequestRecord {
        let since_sched = |t: Instant| response::ms(t.saturating_duration_since(scheduled));
        let (error_kind, error) = match acc.failure {
            Some((k, m)) => (Some(k), Some(self.scrubber.scrub(&m))),
            None => (None, None),
        };
        RequestRecord {
            record_version: RECORD_VERSION,
            seq: 0,
            id: None,
            ok: error_kind.is_none(),
            error_kind,
            error,
            http_status,
            prompt_tokens: acc.prompt_tokens,
            completion_tokens: acc.completion_tokens,
            finish_reason: acc
                .finish_reason
                .map(|f| cap_str(f, MAX_FINISH_REASON_BYTES)),
            scheduled_s: Some(secs_since(clock, scheduled)),
            sent_s: Some(secs_since(clock, sent)),
            first_token_s: acc.first.map(|t| secs_since(clock, t)),
            end_s: Some(secs_since(clock, end)),
            ttft_ms: acc.first.map(since_sched),
            e2e_ms: Some(since_sched(end)),
            itl_ms: acc.itl_ms,
            itl_overflow: acc.itl_overflow,
            chunks: self.opts.stream.then_some(acc.chunks),
            client_stall_ms: None,
            slot_wait_ms: None,
            server: acc.server,
            text: acc.text.map(|t| self.scrubber.scrub(&t)),
        }
    }

    /// Read a streamed body (SSE or NDJSON) into `acc`. Returns when the last event was
    /// read (the request's end time) for a complete response.
    async fn read_stream(
        &self,
        body: &mut http::Body,
        deadline: Instant,
        acc: &mut Acc,
    ) -> Option<Instant> {
        let ndjson = self.opts.api.is_ollama();
        let mut events = events::EventReader::new(ndjson, self.opts.limits.max_line_bytes);
        let on_event = |data: &[u8], at: Instant, acc: &mut Acc| {
            if ndjson {
                ollama::on_line(data, at, acc)
            } else {
                openai::on_event(data, at, acc)
            }
        };
        let mut reader = Reader::new(self.opts.idle_timeout, self.opts.timeout, deadline);
        loop {
            let chunk = match reader.next(body).await {
                Ok(c) => c,
                Err((kind, msg)) => {
                    acc.fail(kind, msg);
                    return None;
                }
            };
            let now = Instant::now();
            let Some(chunk) = chunk else {
                // End of the body: a last line without its terminator still counts, but a
                // stream without its final event was cut short.
                match events.finish(|d| on_event(d, now, acc)) {
                    Err(e) => acc.fail(ErrorKind::TooLarge, e),
                    Ok(_) if acc.done => return Some(now),
                    Ok(_) => acc.fail(
                        ErrorKind::CutShort,
                        if ndjson {
                            "the stream ended without its final `done: true` line"
                        } else {
                            "the stream ended without `data: [DONE]`"
                        },
                    ),
                }
                return None;
            };
            match events.feed(chunk, |d| on_event(d, now, acc)) {
                Err(e) => {
                    acc.fail(ErrorKind::TooLarge, e);
                    return None;
                }
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    if acc.done && acc.failure.is_none() {
                        // Read the body's end so the connection goes back to the pool
                        // (briefly: a server that keeps the body open loses the connection).
                        let _ =
                            tokio::time::timeout(DRAIN_WAIT, reader.drain(body, 64 << 10)).await;
                        return Some(now);
                    }
                    return None;
                }
            }
        }
    }

    /// Read a whole body up to `limit` bytes. `Err` carries the failure and what was read.
    async fn read_body(
        &self,
        body: &mut http::Body,
        deadline: Instant,
        limit: usize,
        strict: bool,
    ) -> Result<Bytes, (ErrorKind, String, Bytes)> {
        let mut buf = BytesMut::new();
        let mut reader = Reader::new(self.opts.idle_timeout, self.opts.timeout, deadline);
        loop {
            match reader.next(body).await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > limit {
                        if !strict {
                            buf.extend_from_slice(&chunk[..limit - buf.len()]);
                            return Ok(buf.freeze());
                        }
                        return Err((
                            ErrorKind::TooLarge,
                            format!("the response body exceeded {limit} bytes"),
                            buf.freeze(),
                        ));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err((kind, msg)) => return Err((kind, msg, buf.freeze())),
            }
        }
    }
}

/// Whether a 2xx response's media type can carry the stream asked for: SSE for the OpenAI
/// APIs, NDJSON for Ollama's native API (which also answers `application/json`), and the
/// untyped `application/octet-stream`. A response without a `Content-Type` is read as a
/// stream too (its bytes decide).
pub fn is_stream_type(media_type: &str, ndjson: bool) -> bool {
    match media_type {
        "text/event-stream" | "application/octet-stream" => true,
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
        | "application/json-seq" => true,
        "application/json" => ndjson,
        _ => false,
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cap_str(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A duration as a user would write it (`30s`, `250ms`, `1.5s`).
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", ms.round())
    } else {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s}s")
        } else {
            format!("{s:.3}").trim_end_matches('0').to_string() + "s"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_and_defaults() {
        for a in Api::ALL {
            assert_eq!(Api::from_name(a.name()), Some(a));
        }
        assert_eq!(Api::default_for_platform("ollama"), Api::OllamaChat);
        assert_eq!(Api::default_for_platform("vllm-serve"), Api::OpenAiChat);
    }

    #[test]
    fn stream_media_types() {
        assert!(is_stream_type("text/event-stream", false));
        assert!(is_stream_type("application/x-ndjson", true));
        assert!(is_stream_type("application/json", true));
        assert!(!is_stream_type("application/json", false));
        assert!(!is_stream_type("text/html", false));
        assert!(!is_stream_type("text/html", true));
        assert_eq!(cap_str("héllo".into(), 2), "h");
    }

    #[test]
    fn scrubber_and_durations() {
        let s = Scrubber::new(["CANARY-KEY".to_string(), "ab".to_string()]);
        assert_eq!(s.scrub("key CANARY-KEY ab"), "key *** ab");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    }
}
