//! Replays what real servers sent (tests/fixtures/transcripts: Ollama 0.24.0 and vLLM
//! 0.32.0, see the README there) byte for byte to benchkeep's client, and checks that the
//! client reads the right tokens, durations, finish reason, error kind and message.
//!
//! The replay server is a tokio `TcpListener` on 127.0.0.1:0. It reads the client's
//! request, then writes the recorded response bytes: split at the recorded reads and at
//! the recorded times where a `.timing` file exists, else one HTTP chunk per write. The
//! client is driven through its library API (`benchkeep::client::Client::generate`, the
//! same path `benchkeep run` takes), and the pre-run probe (`client::probe::probe`) is
//! driven against a replay server that answers each path with its transcript.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benchkeep::client::{self, Api, BaseUrl, Client, ClientOptions, Limits, Scrubber};
use benchkeep::schema::{ErrorKind, RequestRecord};
use bytes::Bytes;
use hyper::http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- transcripts

fn dir(server: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/transcripts")
        .join(server)
}

/// One recorded exchange.
#[derive(Clone)]
struct Exchange {
    path: String,
    body: Vec<u8>,
    raw: Vec<u8>,
    /// (offset after the request was sent, bytes) per recorded read.
    reads: Option<Vec<(Duration, usize)>>,
}

fn load(server: &str, name: &str) -> Exchange {
    let d = dir(server);
    let req = std::fs::read(d.join(format!("{name}.req"))).expect("req");
    let raw = std::fs::read(d.join(format!("{name}.raw"))).expect("raw");
    let head_end = find(&req, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(&req, b"\n\n").map(|i| i + 2))
        .unwrap_or(req.len());
    let line = String::from_utf8_lossy(&req[..req.iter().position(|&b| b == b'\n').unwrap()])
        .trim()
        .to_string();
    let path = line.split(' ').nth(1).unwrap().to_string();
    let reads = std::fs::read_to_string(d.join(format!("{name}.timing")))
        .ok()
        .map(|t| parse_timing(&t));
    if let Some(r) = &reads {
        let sum: usize = r.iter().map(|(_, n)| n).sum();
        assert_eq!(sum, raw.len(), "{name}: timing does not add up");
    }
    Exchange {
        path,
        body: req[head_end..].to_vec(),
        raw,
        reads,
    }
}

/// Ollama: `sent_at S` then `T +Ds N bytes`; vLLM: `SECONDS BYTES`.
fn parse_timing(t: &str) -> Vec<(Duration, usize)> {
    t.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("sent_at"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (secs, n) = if f.len() >= 3 {
                (f[1].trim_start_matches('+').trim_end_matches('s'), f[2])
            } else {
                (f[0], f[1])
            };
            (
                Duration::from_secs_f64(secs.parse().unwrap()),
                n.parse().unwrap(),
            )
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Without a timing file: the head, then each HTTP chunk as its own write.
fn untimed_segments(raw: &[u8]) -> Vec<usize> {
    let head = find(raw, b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    let headers = String::from_utf8_lossy(&raw[..head]).to_ascii_lowercase();
    if !headers.contains("transfer-encoding: chunked") {
        return vec![raw.len()];
    }
    let mut segs = vec![head];
    let mut at = head;
    while at < raw.len() {
        let eol = at + find(&raw[at..], b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[at..eol]).unwrap().trim(), 16)
            .expect("hex chunk size");
        let end = (eol + 2 + size + 2).min(raw.len());
        segs.push(end - at);
        at = end;
    }
    segs
}

// ---------------------------------------------------------------- replay server

/// Read one HTTP/1.1 request (headers and Content-Length body); returns its path.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut tmp).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return head
                .lines()
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("/")
                .to_string();
        }
        let n = sock.read(&mut tmp).await.unwrap();
        if n == 0 {
            return String::new();
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Write the recorded response the way it was received.
async fn replay(sock: &mut TcpStream, ex: &Exchange) {
    let t0 = tokio::time::Instant::now();
    let mut at = 0;
    match &ex.reads {
        Some(reads) => {
            // Offsets count from the client's send, so the server's work (and a queue
            // wait) shows as the time before the first read.
            for (offset, n) in reads {
                tokio::time::sleep_until(t0 + *offset).await;
                if sock.write_all(&ex.raw[at..at + n]).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
                at += n;
            }
        }
        None => {
            for n in untimed_segments(&ex.raw) {
                if sock.write_all(&ex.raw[at..at + n]).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
                at += n;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let _ = sock.shutdown().await;
}

/// Serve `routes` (by path; the empty path answers anything) until the test ends.
async fn serve(routes: HashMap<String, Exchange>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = Arc::clone(&routes);
            tokio::spawn(async move {
                let path = read_request(&mut sock).await;
                let ex = routes
                    .get(&path)
                    .or_else(|| routes.get(""))
                    .cloned()
                    .unwrap_or_else(|| load("ollama", "unknown_path"));
                replay(&mut sock, &ex).await;
            });
        }
    });
    addr
}

fn api_for(path: &str) -> Api {
    match path {
        "/api/chat" => Api::OllamaChat,
        "/api/generate" => Api::OllamaGenerate,
        "/v1/completions" => Api::OpenAiCompletions,
        _ => Api::OpenAiChat,
    }
}

/// Replay one generation exchange to the client; returns its record.
async fn run(server: &str, name: &str) -> RequestRecord {
    let ex = load(server, name);
    let api = api_for(&ex.path);
    let req: serde_json::Value = serde_json::from_slice(&ex.body).unwrap_or_default();
    // As the real server decided: native Ollama streams unless told not to.
    let stream = req
        .get("stream")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(api.is_ollama());
    let addr = serve(HashMap::from([(String::new(), ex.clone())])).await;
    let base = BaseUrl::parse(&format!("http://{addr}")).unwrap();
    let opts = ClientOptions {
        api,
        stream,
        timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(10),
        headers: HeaderMap::new(),
        limits: Limits::default(),
        save_text: true,
        pool_size: 1,
    };
    let client = Client::new(&base, opts, Scrubber::default()).unwrap();
    let now = Instant::now();
    client
        .generate(Bytes::from(ex.body.clone()), now, now)
        .await
}

// ---------------------------------------------------------------- expectations

/// What the client must read from a successful transcript (values from the transcript).
struct Want {
    prompt: u64,
    completion: u64,
    finish: &'static str,
    /// Ollama's (total, load, prompt_eval, eval) durations in ns.
    ns: Option<[u64; 4]>,
    /// Content chunks (streams only).
    chunks: Option<u64>,
}

fn ok(prompt: u64, completion: u64, finish: &'static str) -> Want {
    Want {
        prompt,
        completion,
        finish,
        ns: None,
        chunks: None,
    }
}

fn check_ok(name: &str, r: &RequestRecord, w: &Want) {
    assert!(r.ok, "{name}: {:?} {:?}", r.error_kind, r.error);
    assert_eq!(r.http_status, Some(200), "{name}");
    assert_eq!(r.prompt_tokens, Some(w.prompt), "{name}: prompt tokens");
    assert_eq!(r.completion_tokens, Some(w.completion), "{name}: tokens");
    assert_eq!(r.finish_reason.as_deref(), Some(w.finish), "{name}");
    if let Some([total, load, prompt, eval]) = w.ns {
        assert_eq!(r.server.total_duration_ns, Some(total), "{name}");
        assert_eq!(r.server.load_duration_ns, Some(load), "{name}");
        assert_eq!(r.server.prompt_eval_duration_ns, Some(prompt), "{name}");
        assert_eq!(r.server.eval_duration_ns, Some(eval), "{name}");
    } else {
        assert!(r.server.is_empty(), "{name}: {:?}", r.server);
    }
    if let Some(c) = w.chunks {
        assert_eq!(r.chunks, Some(c), "{name}: chunks");
    }
    assert!(r.e2e_ms.is_some(), "{name}");
    if r.chunks.is_some() {
        assert!(r.ttft_ms.is_some(), "{name}");
    }
    assert!(!r.text.as_deref().unwrap_or("").is_empty(), "{name}: text");
}

fn check_err(name: &str, r: &RequestRecord, status: u16, message: &str) {
    assert!(!r.ok, "{name}");
    assert_eq!(r.http_status, Some(status), "{name}");
    assert_eq!(r.error_kind, Some(ErrorKind::HttpStatus), "{name}");
    let e = r.error.as_deref().unwrap_or("");
    assert!(e.starts_with(&format!("HTTP {status}")), "{name}: {e}");
    assert!(e.contains(message), "{name}: {e:?} lacks {message:?}");
}

// ---------------------------------------------------------------- Ollama

#[tokio::test]
async fn ollama_native_streams_and_bodies() {
    let cases: Vec<(&str, Want)> = vec![
        (
            "chat_stream",
            Want {
                ns: Some([25_959_304, 1_049_764, 2_089_923, 21_323_884]),
                // 11 content chunks carry 16 tokens: the count comes from eval_count.
                chunks: Some(11),
                ..ok(25, 16, "length")
            },
        ),
        (
            "chat_nostream",
            Want {
                ns: Some([34_777_659, 3_185_098, 726_708, 29_168_442]),
                ..ok(25, 16, "length")
            },
        ),
        (
            "chat_stream_cold2",
            Want {
                ns: Some([324_807_697, 279_661_037, 2_874_016, 40_043_101]),
                ..ok(25, 16, "length")
            },
        ),
        (
            "generate_stream",
            Want {
                ns: Some([23_905_993, 3_196_511, 433_326, 18_491_920]),
                chunks: Some(16),
                ..ok(20, 16, "length")
            },
        ),
        (
            "generate_stream_cold",
            Want {
                ns: Some([37_638_722, 1_526_378, 1_572_701, 32_437_415]),
                // Even /api/generate sent fewer chunks (14) than tokens (16) here.
                chunks: Some(14),
                ..ok(20, 16, "length")
            },
        ),
        (
            // No "stream" in the request: the answer streams.
            "generate_default_stream",
            Want {
                ns: Some([6_789_685, 2_439_122, 1_709_849, 1_305_465]),
                chunks: Some(4),
                ..ok(19, 4, "length")
            },
        ),
        (
            "generate_nostream",
            Want {
                ns: Some([23_185_942, 1_418_820, 309_713, 20_034_227]),
                ..ok(20, 16, "length")
            },
        ),
        (
            "generate_keepalive0",
            Want {
                ns: Some([9_582_314, 1_344_426, 1_974_380, 4_988_285]),
                ..ok(19, 4, "length")
            },
        ),
        (
            "concurrent_1",
            Want {
                ns: Some([616_828_635, 3_090_968, 1_788_319, 602_798_414]),
                ..ok(26, 200, "length")
            },
        ),
    ];
    for (name, want) in &cases {
        let r = run("ollama", name).await;
        check_ok(name, &r, want);
    }
}

#[tokio::test]
async fn ollama_queued_request_ttft_includes_the_wait() {
    // The second of two requests at OLLAMA_NUM_PARALLEL=1: no status line until +0.586 s.
    let r = run("ollama", "concurrent_2").await;
    check_ok(
        "concurrent_2",
        &r,
        &Want {
            ns: Some([790_114_343, 1_732_360, 1_251_959, 213_320_341]),
            ..ok(26, 200, "length")
        },
    );
    let ttft = r.ttft_ms.unwrap();
    assert!(ttft >= 560.0, "ttft {ttft} ms must include the queue wait");
    // ~150 reads for 200 tokens: ITLs are the gaps between the reads that carried content.
    assert!(r.itl_ms.len() >= 100, "{}", r.itl_ms.len());
}

#[tokio::test]
async fn ollama_load_only_has_no_tokens_and_no_durations() {
    // {"model":"tiny"}: a non-streamed `done_reason: "load"` without any duration.
    let ex = load("ollama", "generate_load_only");
    assert!(!ex.raw.windows(9).any(|w| w == b"_duration"));
    let r = run("ollama", "generate_load_only").await;
    assert_eq!(r.http_status, Some(200));
    assert_eq!(r.finish_reason.as_deref(), Some("load"));
    assert!(r.server.is_empty(), "{:?}", r.server);
    assert_eq!(r.completion_tokens.unwrap_or(0), 0);
}

#[tokio::test]
async fn ollama_compat_layer() {
    let cases: Vec<(&str, Want)> = vec![
        (
            "v1_chat_stream",
            Want {
                // 13 content events for 16 tokens; the count comes from usage.
                chunks: Some(13),
                ..ok(25, 16, "length")
            },
        ),
        ("v1_chat_nostream", ok(25, 16, "length")),
        ("v1_completions_stream", ok(17, 8, "length")),
    ];
    for (name, want) in &cases {
        let r = run("ollama", name).await;
        check_ok(name, &r, want);
    }
    // Without include_usage Ollama sends no counts at all.
    let r = run("ollama", "v1_chat_stream_nousage").await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.chunks, Some(12));
}

#[tokio::test]
async fn ollama_errors() {
    for (name, status, message) in [
        ("unknown_model_chat", 404, "model 'nope' not found"),
        ("unknown_model_chat_nostream", 404, "model 'nope' not found"),
        ("unknown_model_generate", 404, "model 'nope' not found"),
        ("unknown_model_v1_chat", 404, "model 'nope' not found"),
        (
            "unknown_model_v1_chat_stream",
            404,
            "model 'nope' not found",
        ),
        ("malformed_chat", 400, "unexpected EOF"),
        (
            "malformed_generate",
            400,
            "invalid character 'b' looking for beginning of object key string",
        ),
        ("malformed_v1_chat", 400, "unexpected EOF"),
        ("empty_body_chat", 400, "missing request body"),
        ("missing_model_field_chat", 400, "model is required"),
    ] {
        let r = run("ollama", name).await;
        check_err(name, &r, status, message);
    }
}

// ---------------------------------------------------------------- vLLM

#[tokio::test]
async fn vllm_generation() {
    let cases: Vec<(&str, Want)> = vec![
        (
            // The role-only event carries no content and is not a content chunk, and
            // one token's delta is `""` (a UTF-8 sequence held back): 15 content chunks.
            "chat_stream_usage",
            Want {
                chunks: Some(15),
                ..ok(36, 16, "length")
            },
        ),
        ("chat_nostream", ok(36, 16, "length")),
        // max_completion_tokens 6 wins.
        ("chat_max_completion_tokens", ok(36, 6, "length")),
        ("chat_min_tokens", ok(36, 12, "length")),
        ("completions_nostream", ok(16, 8, "length")),
        ("completions_stream_usage", ok(16, 16, "length")),
    ];
    for (name, want) in &cases {
        let r = run("vllm", name).await;
        check_ok(name, &r, want);
    }
    let r = run("vllm", "chat_stream_nousage").await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.chunks, Some(8));
    // The first token was received 36 ms after the send (recorded timing).
    let r = run("vllm", "chat_stream_usage").await;
    let ttft = r.ttft_ms.unwrap();
    assert!((30.0..200.0).contains(&ttft), "ttft {ttft}");
}

#[tokio::test]
async fn vllm_errors() {
    for (name, status, message) in [
        (
            "unknown_model",
            404,
            "The model `nope` does not exist. Valid aliases: tiny.",
        ),
        (
            "unknown_model_stream",
            404,
            "The model `nope` does not exist.",
        ),
        ("malformed_json", 400, "JSON decode error"),
        ("missing_messages", 400, "Field required"),
        ("wrong_type", 400, "Input should be a valid list"),
        (
            "max_tokens_over_context",
            400,
            "max_tokens=5000 cannot be greater than max_model_len=1024",
        ),
        ("too_long", 400, "maximum context length is 1024 tokens"),
    ] {
        let r = run("vllm", name).await;
        check_err(name, &r, status, message);
    }
}

// ---------------------------------------------------------------- probe

fn routes(server: &str, pairs: &[(&str, &str)]) -> HashMap<String, Exchange> {
    pairs
        .iter()
        .map(|(path, name)| (path.to_string(), load(server, name)))
        .collect()
}

#[tokio::test]
async fn probe_reads_the_real_info_endpoints() {
    let transport = client::http::Transport::new(client::url::Scheme::Http, 1).unwrap();
    let headers = HeaderMap::new();

    let addr = serve(routes(
        "ollama",
        &[
            ("/api/version", "version"),
            ("/api/show", "show"),
            ("/api/ps", "ps_loaded"),
            ("/api/tags", "tags"),
            ("/v1/models", "v1_models"),
        ],
    ))
    .await;
    let base = BaseUrl::parse(&format!("http://{addr}")).unwrap();
    let info = client::probe::probe(&transport, &base, &headers, Api::OllamaChat, "tiny")
        .await
        .expect("ollama probe");
    assert_eq!(info.version.as_deref(), Some("0.24.0"));
    assert_eq!(info.max_model_len, Some(4096));

    let addr = serve(routes(
        "vllm",
        &[
            ("/version", "version"),
            ("/v1/models", "models"),
            ("/metrics", "metrics_after"),
        ],
    ))
    .await;
    let base = BaseUrl::parse(&format!("http://{addr}")).unwrap();
    let info = client::probe::probe(&transport, &base, &headers, Api::OpenAiChat, "tiny")
        .await
        .expect("vllm probe");
    assert_eq!(info.version.as_deref(), Some("0.32.0"));
    assert_eq!(info.max_model_len, Some(1024));
}
