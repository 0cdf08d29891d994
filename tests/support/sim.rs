//! Simulator helpers: configs with small latencies, a starter, and an HTTP client that
//! sends JSON and reads SSE or NDJSON streams with a receive time per event.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use super::api::sim::{self, Profile, SimConfig, SimServer};

/// A fast, fault-free config of `profile` (small latencies, so tests stay quick); the
/// profile's jitter and parallelism are kept.
pub fn fast(profile: Profile) -> SimConfig {
    let mut c = SimConfig::for_profile(profile);
    c.timing.prefill_base_ms = 2.0;
    c.timing.prefill_tok_s = 100_000.0;
    c.timing.itl_ms = 1.0;
    c.timing.itl_per_seq_ms = 0.0;
    c.timing.load_ms = 0.0;
    c
}

/// A fault-free config with small, exact latencies (no jitter) and 8 parallel slots.
pub fn timed(profile: Profile, prefill_ms: f64, itl_ms: f64) -> SimConfig {
    let mut c = SimConfig::for_profile(profile);
    c.timing.prefill_base_ms = prefill_ms;
    c.timing.prefill_tok_s = 10_000_000.0;
    c.timing.itl_ms = itl_ms;
    c.timing.itl_per_seq_ms = 0.0;
    c.timing.load_ms = 0.0;
    c.timing.jitter = 0.0;
    c.num_parallel = 8;
    c
}

/// [`timed`] with 1 ms steps.
pub fn fast_exact(profile: Profile) -> SimConfig {
    timed(profile, 1.0, 1.0)
}

/// Start a simulator on 127.0.0.1 (port 0) in the current runtime. This thread's HTTP
/// client ([`client`]) is built now: building one takes tens of milliseconds (TLS roots),
/// which must not fall inside a test's timing windows.
pub async fn start(c: SimConfig) -> SimServer {
    let s = sim::start(c).await.expect("simulator starts");
    drop(client());
    s
}

/// Start a simulator on its own runtime, for tests without one.
pub fn start_blocking(c: SimConfig) -> SimServer {
    sim::start_blocking(c).expect("simulator starts")
}

thread_local! {
    /// One client per test thread: building one (TLS roots) is slow. No pooling, so no
    /// connection outlives the runtime of the test that opened it.
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
}

pub fn client() -> reqwest::Client {
    CLIENT.with(|c| c.clone())
}

/// POST JSON (or raw text), return status and body.
pub async fn post(url: &str, body: &str) -> (u16, String) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body read"))
}

pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (s, text) = post(url, &body.to_string()).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (s, v)
}

pub async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body read"))
}

/// One received event (SSE `data:` payload or NDJSON line) and when it arrived.
#[derive(Debug, Clone)]
pub struct Ev {
    pub at: Instant,
    pub data: String,
}

impl Ev {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Send a streaming request; returns the status, the start time and the events (SSE
/// payloads without `data: `, or NDJSON lines). Panics if the stream errors.
pub async fn stream(url: &str, body: &Value) -> (u16, Instant, Vec<Ev>) {
    let (s, t0, evs, err) = stream_lossy(url, body).await;
    assert!(err.is_none(), "stream failed: {err:?}");
    (s, t0, evs)
}

/// Like [`stream`], but returns the transport error (if any) instead of panicking.
pub async fn stream_lossy(url: &str, body: &Value) -> (u16, Instant, Vec<Ev>, Option<String>) {
    let client = client();
    let t0 = Instant::now();
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    let sse = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let mut s = r.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut err = None;
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(b) => buf.extend_from_slice(&b),
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        }
        let now = Instant::now();
        let sep: &[u8] = if sse { b"\n\n" } else { b"\n" };
        while let Some(pos) = find(&buf, sep) {
            let raw: Vec<u8> = buf.drain(..pos + sep.len()).collect();
            let text = String::from_utf8_lossy(&raw[..pos]).to_string();
            let data = if sse {
                text.strip_prefix("data: ").unwrap_or(&text).to_string()
            } else {
                text
            };
            out.push(Ev { at: now, data });
        }
    }
    (status, t0, out, err)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Content text of an OpenAI chunk (chat delta or completion text), if non-empty.
pub fn chunk_text(v: &Value) -> Option<String> {
    let c = v.get("choices")?.get(0)?;
    let t = c
        .get("delta")
        .and_then(|d| d.get("content"))
        .or_else(|| c.get("text"))?
        .as_str()?;
    (!t.is_empty()).then(|| t.to_string())
}

pub fn chat(model: &str, max_tokens: Option<u32>, stream: bool) -> Value {
    let mut v = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "say something about the sea please"}],
        "stream": stream,
    });
    if let Some(m) = max_tokens {
        v["max_tokens"] = m.into();
    }
    v
}
