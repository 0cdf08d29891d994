//! Every fault mode: HTTP 500, error event after 200, dropped connection, stall,
//! garbage chunk and endless line, in SSE, NDJSON and non-streamed responses; each is
//! counted in `/metrics`, and the server stays healthy afterwards.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::api::sim::{Faults, Profile, SimConfig, SimServer, SimStats};
use crate::support::sim::*;

#[derive(Debug, PartialEq)]
enum End {
    Clean,
    Error,
    Idle,
    Cap,
}

/// Read a response body raw until it ends, fails, goes idle for `idle`, or passes `cap`.
async fn read_raw(url: &str, body: &Value, cap: usize, idle: Duration) -> (u16, Vec<u8>, End) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    let mut s = r.bytes_stream();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, s.next()).await {
            Err(_) => return (status, out, End::Idle),
            Ok(None) => return (status, out, End::Clean),
            Ok(Some(Err(_))) => return (status, out, End::Error),
            Ok(Some(Ok(b))) => {
                out.extend_from_slice(&b);
                if out.len() >= cap {
                    return (status, out, End::Cap);
                }
            }
        }
    }
}

fn with_faults(profile: Profile, f: Faults) -> SimConfig {
    let mut c = fast(profile);
    c.faults = f;
    c
}

fn sse_events(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or(e).to_string())
        .collect()
}

fn content_chunks(events: &[String]) -> usize {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|v| chunk_text(v).is_some())
        .count()
}

async fn metric(base: &str, kind: &str) -> String {
    let m = get(&format!("{base}/metrics")).await.1;
    let key = format!("benchkeep_sim_faults_total{{kind=\"{kind}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or("missing")
        .to_string()
}

/// The server still answers, and no request is left running.
async fn healthy(s: &SimServer) {
    let base = s.base_url();
    assert_eq!(get(&format!("{base}/health")).await.0, 200);
    assert_eq!(get(&format!("{base}/v1/models")).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.stats().running > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.stats().running, 0);
}

#[tokio::test]
async fn error_rate_answers_500_in_each_shape() {
    let s = start(with_faults(
        Profile::Vllm,
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let (st, v) = post_json(
        &format!("{base}/v1/chat/completions"),
        &chat("sim-model", Some(3), true),
    )
    .await;
    assert_eq!(st, 500);
    assert_eq!(v["error"]["type"], "InternalServerError");
    assert_eq!(v["error"]["code"], 500);
    let (st, v) = post_json(
        &format!("{base}/api/generate"),
        &json!({"model": "sim-model", "prompt": "x"}),
    )
    .await;
    assert_eq!(st, 500);
    assert!(v["error"].is_string());
    assert_eq!(metric(&base, "error").await, "2.0");
    assert_eq!(s.stats().faults.error, 2);
}

#[tokio::test]
async fn error_rate_is_seeded() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let mut c = with_faults(
            Profile::Vllm,
            Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
        );
        c.timing.no_delay = true;
        c.seed = seed;
        let s = start(c).await;
        let url = format!("{}/chat/completions", s.openai_base_url());
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(
                post(&url, &chat("sim-model", Some(1), false).to_string())
                    .await
                    .0,
            );
        }
        out
    }
    let a = pattern(5).await;
    assert_eq!(a, pattern(5).await);
    assert!(a.contains(&200) && a.contains(&500), "{a:?}");
}

#[tokio::test]
async fn stream_error_after_200() {
    let s = start(with_faults(
        Profile::Vllm,
        Faults {
            stream_error_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let (st, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(10), true),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Clean));
    let evs = sse_events(&raw);
    assert_eq!(content_chunks(&evs), 5);
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&evs[evs.len() - 2]).unwrap();
    assert_eq!(err["error"]["type"], "InternalServerError");
    assert_eq!(err["error"]["code"], 500);
    // NDJSON: an error line ends the stream.
    let body = json!({"model": "sim-model", "prompt": "x", "options": {"num_predict": 4}});
    let (st, raw, end) = read_raw(
        &format!("{base}/api/generate"),
        &body,
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Clean));
    let text = String::from_utf8(raw).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["error"].is_string(), "{text}");
    assert_eq!(text.lines().count(), 3);
    // Not streamed: a 500.
    let (st, v) = post_json(&url, &chat("sim-model", Some(4), false)).await;
    assert_eq!(st, 500);
    assert_eq!(v["error"]["type"], "InternalServerError");
    assert_eq!(metric(&base, "stream_error").await, "3.0");
    // The engine notices an abandoned request at its next step (unless, on a busy
    // machine, it had already produced every token before the fault fired).
    let settled = |st: SimStats| st.aborted + st.completed == 3;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !settled(s.stats()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(settled(s.stats()), "{:?}", s.stats());
    healthy(&s).await;
}

#[tokio::test]
async fn drop_closes_mid_stream() {
    let s = start(with_faults(
        Profile::Vllm,
        Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let (st, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(10), true),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Error));
    let evs = sse_events(&raw);
    assert_eq!(content_chunks(&evs), 5);
    assert!(!evs.iter().any(|e| e == "[DONE]"));
    let (st, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(10), false),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Error));
    assert!(serde_json::from_slice::<Value>(&raw).is_err());
    assert_eq!(metric(&base, "drop").await, "2.0");
    healthy(&s).await;
}

#[tokio::test]
async fn stall_keeps_the_connection_open() {
    let s = start(with_faults(
        Profile::Ollama,
        Faults {
            stall_after: Some(3),
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let t0 = Instant::now();
    let (st, raw, end) = read_raw(
        &url,
        &chat("llama3.2", Some(10), true),
        1 << 20,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!((st, end), (200, End::Idle));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(content_chunks(&sse_events(&raw)), 3);
    // NDJSON too.
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}],
                      "options": {"num_predict": 10}});
    let (_, raw, end) = read_raw(
        &format!("{base}/api/chat"),
        &body,
        1 << 20,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(end, End::Idle);
    assert_eq!(String::from_utf8(raw).unwrap().lines().count(), 3);
    assert_eq!(metric(&base, "stall").await, "2.0");
    // The client gave up: the server notices and frees the connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.stats().connections > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.stats().connections, 0);
    assert_eq!(s.stats().running, 0);
}

#[tokio::test]
async fn garbage_chunk_mid_stream() {
    let s = start(with_faults(
        Profile::Vllm,
        Faults {
            garbage_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let (_, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(6), true),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(end, End::Clean);
    let evs = sse_events(&raw);
    let bad: Vec<&String> = evs
        .iter()
        .filter(|e| *e != "[DONE]" && serde_json::from_str::<Value>(e).is_err())
        .collect();
    assert_eq!(bad.len(), 1, "{evs:?}");
    assert_eq!(content_chunks(&evs), 6);
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let body = json!({"model": "sim-model", "prompt": "x", "options": {"num_predict": 4}});
    let (_, raw, _) = read_raw(
        &format!("{base}/api/generate"),
        &body,
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    let bad = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .count();
    assert_eq!((bad, text.lines().count()), (1, 6));
    let (st, text) = post(&url, &chat("sim-model", Some(3), false).to_string()).await;
    assert_eq!(st, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(metric(&base, "garbage").await, "3.0");
}

#[tokio::test]
async fn endless_line_is_bounded_by_the_client() {
    let mut c = with_faults(
        Profile::Vllm,
        Faults {
            endless_line: true,
            ..Faults::default()
        },
    );
    c.timing.no_delay = true;
    let s = start(c).await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let cap = 4 << 20;
    let (st, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(10), true),
        cap,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Cap));
    let first_blank = find(&raw, b"\n\n").unwrap();
    let tail = &raw[raw.len() - (2 << 20)..];
    assert!(!tail.contains(&b'\n'), "the last line never ends");
    assert!(first_blank < 2048);
    assert_eq!(
        content_chunks(&sse_events(&raw[..raw.len() - (3 << 20)])),
        1
    );
    // Not streamed: an endless body.
    let (_, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(3), false),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(end, End::Cap);
    assert!(raw.starts_with(b"{\"id\":\"xxx"));
    assert_eq!(metric(&base, "endless_line").await, "2.0");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.stats().connections > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s.stats().connections <= 1, "{:?}", s.stats());
}

#[tokio::test]
async fn endless_event_never_ends_the_event() {
    let mut c = with_faults(
        Profile::Vllm,
        Faults {
            endless_event: true,
            ..Faults::default()
        },
    );
    c.timing.no_delay = true;
    let s = start(c).await;
    let url = format!("{}/v1/chat/completions", s.base_url());
    let (st, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(10), true),
        2 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((st, end), (200, End::Cap));
    let first_blank = find(&raw, b"\n\n").unwrap();
    let tail = &raw[raw.len() - (1 << 20)..];
    assert!(
        find(tail, b"\n\n").is_none(),
        "no blank line ends the event"
    );
    assert!(
        tail.windows(6).filter(|w| w == b"data: ").count() > 500,
        "many data lines"
    );
    assert!(first_blank < 2048);
    assert_eq!(metric(&s.base_url(), "endless_event").await, "1.0");
}

#[tokio::test]
async fn invalid_utf8_chunk_mid_stream() {
    let s = start(with_faults(
        Profile::Vllm,
        Faults {
            invalid_utf8_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let url = format!("{base}/v1/chat/completions");
    let (_, raw, end) = read_raw(
        &url,
        &chat("sim-model", Some(6), true),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(end, End::Clean);
    assert!(std::str::from_utf8(&raw).is_err());
    let bad: Vec<&[u8]> = raw
        .split(|b| *b == b'\n')
        .filter(|l| std::str::from_utf8(l).is_err())
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].starts_with(b"data: {"));
    let evs = sse_events(&raw);
    assert_eq!(
        content_chunks(&evs),
        6 + 1,
        "the bad chunk is extra (lossy-decoded here)"
    );
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let (_, raw, _) = read_raw(
        &url,
        &chat("sim-model", Some(3), false),
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert!(std::str::from_utf8(&raw).is_err());
    assert_eq!(metric(&base, "invalid_utf8").await, "2.0");
}

#[tokio::test]
async fn missing_done_ends_cleanly_without_the_sentinel() {
    let s = start(with_faults(
        Profile::Ollama,
        Faults {
            missing_done_rate: 1.0,
            ..Faults::default()
        },
    ))
    .await;
    let base = s.base_url();
    let mut body = chat("llama3.2", Some(4), true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, raw, end) = read_raw(
        &format!("{base}/v1/chat/completions"),
        &body,
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(end, End::Clean);
    let evs = sse_events(&raw);
    assert_eq!(content_chunks(&evs), 4);
    assert!(!evs.iter().any(|e| e == "[DONE]"), "{evs:?}");
    assert!(evs.last().unwrap().contains("\"usage\""));
    let native = json!({"model": "llama3.2", "prompt": "x", "options": {"num_predict": 3}});
    let (_, raw, end) = read_raw(
        &format!("{base}/api/generate"),
        &native,
        1 << 20,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(end, End::Clean);
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(!text.contains("\"done\":true"));
    assert_eq!(metric(&base, "missing_done").await, "2.0");
    // Not streamed: unaffected.
    let (st, v) = post_json(
        &format!("{base}/v1/chat/completions"),
        &chat("llama3.2", Some(2), false),
    )
    .await;
    assert_eq!(
        (st, v["usage"]["completion_tokens"].clone()),
        (200, json!(2))
    );
}

#[tokio::test]
async fn shutdown_cuts_streams_and_frees_the_port() {
    let mut c = fast(Profile::Vllm);
    c.timing.itl_ms = 50.0;
    let s = start(c).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let addr = s.addr();
    let reader = tokio::spawn(async move {
        read_raw(
            &url,
            &chat("sim-model", Some(100), true),
            1 << 20,
            Duration::from_secs(5),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.shutdown().await;
    let (_, _, end) = reader.await.unwrap();
    assert_eq!(end, End::Error);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
