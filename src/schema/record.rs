//! The per-request record: what every parser and the live client produce, and the line
//! format of `raw/<test_id>.jsonl` (`schemas/raw-record.schema.json`).

use serde::{Deserialize, Serialize};

use super::RECORD_VERSION;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Could not connect.
    Connect,
    /// The whole request took longer than `--timeout`.
    Timeout,
    /// No bytes for longer than `--idle-timeout`.
    IdleTimeout,
    /// A non-2xx HTTP status (or a batch line whose `status_code` was not 200).
    HttpStatus,
    /// HTTP 200, then an error event in the stream, or an `{"error": ...}` result line.
    StreamError,
    /// The stream ended without its final chunk / `[DONE]` / `done: true`.
    CutShort,
    /// A body or chunk that was not valid JSON.
    InvalidJson,
    /// Exceeded a size limit (line, event, body).
    TooLarge,
    /// A finished request the server marked as aborted or errored (`finish_reason`).
    Aborted,
    /// A streaming request answered by a 2xx response that is not a stream (an HTML page,
    /// a whole JSON body): its `Content-Type` is neither `text/event-stream` nor NDJSON.
    NotAStream,
    /// The server closed the connection before its response could be read (reset, broken
    /// pipe): while the request was being sent (a body refused as too large, HTTP 413,
    /// often ends this way) or right after.
    ConnectionClosed,
    /// Out of memory: a recorded command whose log says the model or its KV cache did not
    /// fit (CUDA/HIP out of memory, vLLM's cache-block errors, Ollama's "model requires
    /// more system memory"); see `record/oom.rs`.
    Oom,
    /// Anything else (also any kind written by a newer benchkeep).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::CutShort => "cut_short",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Aborted => "aborted",
            ErrorKind::NotAStream => "not_a_stream",
            ErrorKind::ConnectionClosed => "connection_closed",
            ErrorKind::Oom => "oom",
            ErrorKind::Other => "other",
        }
    }
}

/// Most gaps one record keeps in `itl_ms`: a stream of endless tiny events must not grow a
/// request's memory or its raw line without bound (RELIABILITY P8, P13). The gaps after
/// these are summarized in [`ItlOverflow`].
pub const MAX_ITL_GAPS: usize = 32_768;

/// Longest raw line benchkeep writes (the JSON of one record and its newline): far under
/// every reader's limit (the report's 16 MiB, `analyze`'s 64 MiB), so whatever benchkeep
/// writes it reads back (RELIABILITY P13). A record within the other caps is far smaller
/// (about 1 MiB at most); [`RequestRecord::fit`] enforces it for any record.
pub const MAX_RAW_LINE_BYTES: usize = 4 << 20;

/// What [`RequestRecord::fit`] keeps of a string that made the line too long.
const FIT_STRING_BYTES: usize = 4096;

/// Longest `finish_reason` kept (it comes from the server).
pub const MAX_FINISH_REASON_BYTES: usize = 256;

/// The gaps of a request beyond [`MAX_ITL_GAPS`]: counted and summarized, not kept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ItlOverflow {
    /// Gaps not kept in `itl_ms`.
    pub gaps: u64,
    /// Their sum, ms.
    pub sum_ms: f64,
    /// The largest of them, ms.
    pub max_ms: f64,
}

/// Server-side timings reported per request (Ollama's nanosecond durations, or the
/// per-request metrics of a vLLM offline dump converted to nanoseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerTimings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration_ns: Option<u64>,
}

impl ServerTimings {
    pub fn is_empty(&self) -> bool {
        self == &ServerTimings::default()
    }
}

/// One request, normalized: what every parser and the live client produce, and the line
/// format of `raw/<test_id>.jsonl` for `benchkeep run`.
///
/// Times (`*_s`) are seconds since the run's start on a monotonic clock; latencies are
/// milliseconds. Fields a source cannot know stay `None`. The line format is
/// `schemas/raw-record.schema.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// The line format's version ([`RECORD_VERSION`]); 1 when absent (older logs).
    #[serde(default = "first_record_version")]
    pub record_version: u32,
    /// Position in the raw log (strictly increasing) or the line number of an imported file.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
    /// Time to first token, from the scheduled send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// End-to-end latency, from the scheduled send time to the last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// Gaps between successive content chunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<f64>,
    /// Gaps beyond [`MAX_ITL_GAPS`] (the record's `itl_ms` holds only the first ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_overflow: Option<ItlOverflow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    /// How long the client itself was stalled (its runtime did not run: the process was
    /// paused, the machine swapped) while this request was in flight, ms. Its latencies
    /// include that time, which is not the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_stall_ms: Option<f64>,
    /// With `--rate` and a `--concurrency` cap: how long the request waited for a free
    /// slot after its scheduled time, ms (vLLM's `client_queue_time`). Its `ttft_ms` and
    /// `e2e_ms` count from the schedule and include this wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_wait_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "ServerTimings::is_empty")]
    pub server: ServerTimings,
    /// Response text, only with `--save-text` (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Cut `s` to at most `max` bytes at a character boundary, marking the cut.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
}

fn first_record_version() -> u32 {
    1
}

impl Default for RequestRecord {
    /// An empty record of this build's [`RECORD_VERSION`] (derived `Default` would say 0).
    fn default() -> Self {
        RequestRecord {
            record_version: RECORD_VERSION,
            seq: 0,
            id: None,
            ok: false,
            error_kind: None,
            error: None,
            http_status: None,
            prompt_tokens: None,
            completion_tokens: None,
            finish_reason: None,
            scheduled_s: None,
            sent_s: None,
            first_token_s: None,
            end_s: None,
            ttft_ms: None,
            e2e_ms: None,
            itl_ms: Vec::new(),
            itl_overflow: None,
            chunks: None,
            client_stall_ms: None,
            slot_wait_ms: None,
            server: ServerTimings::default(),
            text: None,
        }
    }
}

impl RequestRecord {
    /// Time per output token after the first: (e2e - ttft) / (completion_tokens - 1).
    pub fn tpot_ms(&self) -> Option<f64> {
        let (e2e, ttft, n) = (self.e2e_ms?, self.ttft_ms?, self.completion_tokens?);
        (n > 1).then(|| (e2e - ttft) / (n - 1) as f64)
    }

    /// How late the client sent the request compared with its schedule, not counting the
    /// wait for a free slot under a `--concurrency` cap ([`Self::slot_wait_ms`]).
    pub fn lag_ms(&self) -> Option<f64> {
        let late = (self.sent_s? - self.scheduled_s?) * 1000.0;
        Some((late - self.slot_wait_ms.unwrap_or(0.0)).max(0.0))
    }

    /// Time to first token from the actual send (what `vllm bench serve` reports).
    pub fn ttft_from_send_ms(&self) -> Option<f64> {
        Some((self.first_token_s? - self.sent_s?) * 1000.0)
    }

    /// End-to-end latency from the actual send.
    pub fn e2e_from_send_ms(&self) -> Option<f64> {
        Some((self.end_s? - self.sent_s?) * 1000.0)
    }

    /// The record as one JSON line (with its newline) of at most [`MAX_RAW_LINE_BYTES`]:
    /// when it would be longer, the saved text, then the kept gaps (summarized into
    /// `itl_overflow`), then long strings (`error`, `id`, `finish_reason`) are cut until it
    /// fits. Counts, times and token figures are never cut.
    pub fn fit(&mut self) -> Vec<u8> {
        let line = |r: &RequestRecord| {
            let mut v = serde_json::to_vec(r).expect("records serialize");
            v.push(b'\n');
            v
        };
        let mut v = line(self);
        if v.len() <= MAX_RAW_LINE_BYTES {
            return v;
        }
        if let Some(t) = &mut self.text {
            cut(t, FIT_STRING_BYTES);
            v = line(self);
        }
        if v.len() > MAX_RAW_LINE_BYTES && !self.itl_ms.is_empty() {
            let o = self.itl_overflow.get_or_insert_with(ItlOverflow::default);
            for g in self.itl_ms.drain(..) {
                o.gaps += 1;
                o.sum_ms += g;
                o.max_ms = o.max_ms.max(g);
            }
            o.sum_ms = (o.sum_ms * 1000.0).round() / 1000.0;
            v = line(self);
        }
        if v.len() > MAX_RAW_LINE_BYTES {
            for s in [&mut self.error, &mut self.id, &mut self.finish_reason]
                .into_iter()
                .flatten()
            {
                cut(s, FIT_STRING_BYTES);
            }
            v = line(self);
        }
        v
    }

    /// A failed record of the given kind.
    pub fn failed(seq: u64, kind: ErrorKind, message: impl Into<String>) -> Self {
        RequestRecord {
            seq,
            ok: false,
            error_kind: Some(kind),
            error: Some(message.into()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpot_needs_two_tokens() {
        let mut r = RequestRecord {
            ok: true,
            ttft_ms: Some(100.0),
            e2e_ms: Some(500.0),
            completion_tokens: Some(5),
            ..Default::default()
        };
        assert_eq!(r.tpot_ms(), Some(100.0));
        r.completion_tokens = Some(1);
        assert_eq!(r.tpot_ms(), None);
    }

    #[test]
    fn record_round_trips_and_omits_empty_fields() {
        let r = RequestRecord::failed(3, ErrorKind::HttpStatus, "HTTP 500");
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"record_version":1,"seq":3,"ok":false,"error_kind":"http_status","error":"HTTP 500"}"#
        );
        let back: RequestRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn fit_keeps_every_line_under_the_cap() {
        let mut r = RequestRecord {
            ok: true,
            id: Some("i".repeat(6 << 20)),
            text: Some("\u{1}".repeat(1 << 20)),
            itl_ms: vec![123_456.789; 1 << 20],
            chunks: Some(1 << 20),
            ..Default::default()
        };
        let line = r.fit();
        assert!(line.len() <= MAX_RAW_LINE_BYTES, "{}", line.len());
        assert_eq!(line.last(), Some(&b'\n'));
        let back: RequestRecord = serde_json::from_slice(&line).unwrap();
        assert!(back.itl_ms.is_empty());
        assert_eq!(back.itl_overflow.unwrap().gaps, 1 << 20);
        assert_eq!(back.chunks, Some(1 << 20));
        let mut small = RequestRecord::failed(1, ErrorKind::Other, "x");
        let before = small.clone();
        assert_eq!(
            small.fit(),
            [serde_json::to_vec(&before).unwrap(), b"\n".to_vec()].concat()
        );
        assert_eq!(small, before);
    }

    #[test]
    fn lines_without_a_record_version_read_as_version_1() {
        let r: RequestRecord = serde_json::from_str(r#"{"seq":1,"ok":true}"#).unwrap();
        assert_eq!(r.record_version, 1);
        let r: RequestRecord =
            serde_json::from_str(r#"{"seq":1,"ok":true,"record_version":7}"#).unwrap();
        assert_eq!(r.record_version, 7, "a newer version is kept as read");
    }
}
