//! The simulator against the real servers: each recorded request in
//! tests/fixtures/transcripts (Ollama 0.24.0, vLLM 0.32.0) is sent byte for byte to
//! `benchkeep simulate`'s server in the matching profile, and its raw answer is compared
//! with the recorded one.
//!
//! Compared: the status code; the `Content-Type` header (exactly); the framing (chunked
//! or `Content-Length`); the JSON *shape* of every NDJSON line / SSE event / body: keys in
//! order and value kinds (string, number, bool, null, object, array; arrays by their first
//! element), with runs of same-shaped units collapsed (so a stream of 16 tokens and one of
//! 5 compare equal); how many units each HTTP chunk carries (collapsed the same way: one
//! per chunk, and e.g. Ollama's `/v1` ending finish + usage + `[DONE]` in one chunk); and
//! error bodies exactly where they do not depend on server internals. Also the values
//! named in each test (`done_reason`, `finish_reason`, `object`, counts that follow from
//! the request).
//!
//! Not compared: generated text, ids, timestamps, durations and token counts that depend
//! on the real tokenizer, the number of chunks, and headers other than `Content-Type` /
//! `Content-Length` / `Transfer-Encoding` (`Date`, `server`, `vary`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use benchkeep::sim::{self, Profile, SimConfig, SimServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------- raw HTTP

fn fixture(server: &str, name: &str, ext: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/transcripts")
        .join(server)
        .join(format!("{name}.{ext}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body's HTTP chunks (one element when not chunked).
    chunks: Vec<Vec<u8>>,
    chunked: bool,
}

impl Resp {
    fn parse(raw: &[u8]) -> Resp {
        let head_end = find(raw, b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body = &raw[head_end + 4..];
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let mut chunks = Vec::new();
        if chunked {
            let mut at = 0;
            while at < body.len() {
                let eol = at + find(&body[at..], b"\r\n").expect("chunk size");
                let n =
                    usize::from_str_radix(std::str::from_utf8(&body[at..eol]).unwrap().trim(), 16)
                        .unwrap();
                if n == 0 {
                    break;
                }
                chunks.push(body[eol + 2..eol + 2 + n].to_vec());
                at = eol + 2 + n + 2;
            }
        } else {
            chunks.push(body.to_vec());
        }
        Resp {
            status,
            headers,
            chunks,
            chunked,
        }
    }

    fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// Send a recorded request to `addr`; returns the raw response and when its first byte
/// came.
async fn send(addr: std::net::SocketAddr, req: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let mut first = None;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("response within 20 s")
            .unwrap();
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| t0.elapsed());
        out.extend_from_slice(&buf[..n]);
    }
    (out, first.unwrap_or_default())
}

// ---------------------------------------------------------------- JSON shapes

/// The shape of one JSON text: keys in order, value kinds.
fn shape(text: &str) -> String {
    let b = text.trim().as_bytes();
    let mut i = 0;
    let mut out = String::new();
    value(b, &mut i, &mut out);
    out
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn string(b: &[u8], i: &mut usize) -> String {
    let start = *i + 1;
    *i += 1;
    while b[*i] != b'"' {
        if b[*i] == b'\\' {
            *i += 1;
        }
        *i += 1;
    }
    *i += 1;
    String::from_utf8_lossy(&b[start..*i - 1]).to_string()
}

fn value(b: &[u8], i: &mut usize, out: &mut String) {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            out.push('{');
            ws(b, i);
            let mut first = true;
            while b[*i] != b'}' {
                if !first {
                    out.push(',');
                }
                first = false;
                ws(b, i);
                let k = string(b, i);
                out.push_str(&k);
                out.push(':');
                ws(b, i);
                *i += 1; // ':'
                value(b, i, out);
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                    ws(b, i);
                }
            }
            *i += 1;
            out.push('}');
        }
        b'[' => {
            *i += 1;
            out.push('[');
            ws(b, i);
            let mut first = true;
            while b[*i] != b']' {
                let mut el = String::new();
                value(b, i, &mut el);
                if first {
                    out.push_str(&el);
                }
                first = false;
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
                ws(b, i);
            }
            *i += 1;
            out.push(']');
        }
        b'"' => {
            string(b, i);
            out.push('s');
        }
        b't' | b'f' => {
            *i += if b[*i] == b't' { 4 } else { 5 };
            out.push('b');
        }
        b'n' => {
            *i += 4;
            out.push_str("null");
        }
        _ => {
            while *i < b.len()
                && !matches!(b[*i], b',' | b'}' | b']')
                && !b[*i].is_ascii_whitespace()
            {
                *i += 1;
            }
            out.push('n');
        }
    }
}

/// The units of a body: NDJSON lines, SSE `data:` payloads, or the whole body.
fn units(resp: &Resp, chunk: &[u8]) -> Vec<String> {
    let ct = resp.header("content-type").unwrap_or("");
    let text = String::from_utf8_lossy(chunk);
    if ct.starts_with("application/x-ndjson") {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else if ct.starts_with("text/event-stream") {
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim_start_matches("data: ").to_string())
            .collect()
    } else {
        vec![text.to_string()]
    }
}

fn unit_shape(u: &str) -> String {
    if u.starts_with('{') || u.starts_with('[') {
        shape(u)
    } else {
        u.to_string()
    }
}

fn collapse<T: PartialEq + Clone>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in v {
        if out.last() != Some(x) {
            out.push(x.clone());
        }
    }
    out
}

/// Compare a simulated response with the recorded one (see the module doc).
fn compare(name: &str, real: &Resp, sim: &Resp) {
    assert_eq!(sim.status, real.status, "{name}: status");
    assert_eq!(
        sim.header("content-type"),
        real.header("content-type"),
        "{name}: content type"
    );
    assert_eq!(sim.chunked, real.chunked, "{name}: chunked framing");
    assert_eq!(
        sim.header("content-length").is_some(),
        real.header("content-length").is_some(),
        "{name}: Content-Length present"
    );
    let shapes = |r: &Resp| -> Vec<String> {
        r.chunks
            .iter()
            .flat_map(|c| units(r, c))
            .map(|u| unit_shape(&u))
            .collect()
    };
    let (rs, ss) = (collapse(&shapes(real)), collapse(&shapes(sim)));
    assert_eq!(ss, rs, "{name}: shapes (sim left, real right)");
    if real.chunked {
        let per_chunk = |r: &Resp| -> Vec<usize> {
            collapse(
                &r.chunks
                    .iter()
                    .map(|c| units(r, c).len())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            per_chunk(sim),
            per_chunk(real),
            "{name}: units per HTTP chunk"
        );
    }
}

// ---------------------------------------------------------------- servers

async fn ollama() -> SimServer {
    let mut c = SimConfig::for_profile(Profile::Ollama);
    c.model = "tiny".into();
    c.server_version = "0.24.0".into();
    c.timing.prefill_base_ms = 1.0;
    c.timing.itl_ms = 2.0;
    c.timing.itl_per_seq_ms = 0.0;
    c.timing.load_ms = 0.0;
    sim::start(c).await.unwrap()
}

async fn vllm() -> SimServer {
    let mut c = SimConfig::for_profile(Profile::Vllm);
    c.model = "tiny".into();
    c.server_version = "0.32.0".into();
    c.max_model_len = 1024;
    c.timing.prefill_base_ms = 1.0;
    c.timing.itl_ms = 2.0;
    sim::start(c).await.unwrap()
}

async fn check(s: &SimServer, server: &str, name: &str) -> (Resp, Resp) {
    let real = Resp::parse(&fixture(server, name, "raw"));
    let (raw, _) = send(s.addr(), &fixture(server, name, "req")).await;
    let sim = Resp::parse(&raw);
    compare(name, &real, &sim);
    (real, sim)
}

fn body_str(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body()).to_string()
}

// ---------------------------------------------------------------- Ollama

#[tokio::test]
async fn ollama_native_generation_matches() {
    let s = ollama().await;
    for name in [
        "chat_stream",
        "chat_nostream",
        "generate_stream",
        "generate_nostream",
        "generate_default_stream",
        "generate_keepalive0",
        "generate_load_only",
    ] {
        let (_, sim) = check(&s, "ollama", name).await;
        let body = body_str(&sim);
        if name != "generate_load_only" {
            // load_duration is in every final object, warm or not.
            assert!(body.contains("\"load_duration\":"), "{name}: {body}");
        }
    }
    // /api/chat sends fewer chunks than tokens; /api/generate one per token.
    let (_, sim) = check(&s, "ollama", "chat_stream").await;
    let lines = units(&sim, &sim.body()).len() - 1;
    assert!(lines < 16, "{lines} chat chunks for 16 tokens");
    let (_, sim) = check(&s, "ollama", "generate_stream").await;
    assert_eq!(units(&sim, &sim.body()).len() - 1, 16);
}

#[tokio::test]
async fn ollama_compat_layer_matches() {
    let s = ollama().await;
    for name in [
        "v1_chat_stream",
        "v1_chat_stream_nousage",
        "v1_chat_nostream",
        "v1_completions_stream",
        "v1_models",
        "v1_model_tiny",
    ] {
        let (_, sim) = check(&s, "ollama", name).await;
        let body = body_str(&sim);
        if name.contains("stream") && !name.contains("nostream") {
            assert!(!body.contains(
                "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null"
            ));
            assert!(body.contains("\"system_fingerprint\":\"fp_ollama\""));
            assert!(body.contains("\"id\":\"c"), "{body}");
        }
    }
}

#[tokio::test]
async fn ollama_errors_match_exactly() {
    let s = ollama().await;
    for name in [
        "unknown_model_chat",
        "unknown_model_chat_nostream",
        "unknown_model_generate",
        "unknown_model_show",
        "unknown_model_v1_chat",
        "unknown_model_v1_chat_stream",
        "malformed_chat",
        "malformed_generate",
        "malformed_v1_chat",
        "empty_body_chat",
        "missing_model_field_chat",
        "unknown_path",
    ] {
        let (real, sim) = check(&s, "ollama", name).await;
        assert_eq!(body_str(&sim), body_str(&real), "{name}: error body");
    }
}

#[tokio::test]
async fn ollama_info_endpoints_match() {
    let s = ollama().await;
    for name in ["root_get", "root_head", "version", "tags", "show"] {
        check(&s, "ollama", name).await;
    }
    let (_, sim) = check(&s, "ollama", "ps_after_unload").await;
    assert_eq!(body_str(&sim), "{\"models\":[]}");
    send(s.addr(), &fixture("ollama", "generate_nostream", "req")).await;
    check(&s, "ollama", "ps_loaded").await;
    let (_, sim) = check(&s, "ollama", "show").await;
    assert!(body_str(&sim).contains("\"tokenizer.ggml.merges\":null"));
}

#[tokio::test]
async fn ollama_queued_request_waits_for_its_headers() {
    // OLLAMA_NUM_PARALLEL=1: the second request gets no status line until its first
    // chunk, so its first byte comes after the first request's whole stream.
    let mut c = SimConfig::for_profile(Profile::Ollama);
    c.model = "tiny".into();
    c.timing.prefill_base_ms = 1.0;
    c.timing.itl_ms = 2.0;
    c.timing.itl_per_seq_ms = 0.0;
    c.timing.load_ms = 0.0;
    c.num_parallel = 1;
    let s = sim::start(c).await.unwrap();
    let (addr, r1, r2) = (
        s.addr(),
        fixture("ollama", "concurrent_1", "req"),
        fixture("ollama", "concurrent_2", "req"),
    );
    let first = tokio::spawn(async move { send(addr, &r1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (raw2, ttfb2) = send(addr, &r2).await;
    let (raw1, _) = first.await.unwrap();
    let (real1, real2) = (
        Resp::parse(&fixture("ollama", "concurrent_1", "raw")),
        Resp::parse(&fixture("ollama", "concurrent_2", "raw")),
    );
    let (sim1, sim2) = (Resp::parse(&raw1), Resp::parse(&raw2));
    compare("concurrent_1", &real1, &sim1);
    compare("concurrent_2", &real2, &sim2);
    // 200 tokens at 2 ms: the first stream takes ~400 ms, minus the 50 ms head start.
    assert!(ttfb2 >= Duration::from_millis(300), "{ttfb2:?}");
    let last = |r: &Resp| -> serde_json::Value {
        serde_json::from_str(units(r, &r.body()).last().unwrap()).unwrap()
    };
    let (v1, v2) = (last(&sim1), last(&sim2));
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    // total_duration includes the queue wait, eval_duration does not.
    assert!(
        n(&v2, "total_duration") >= n(&v2, "eval_duration") + 300_000_000,
        "{v2}"
    );
    assert!(
        n(&v2, "total_duration") > n(&v1, "total_duration"),
        "{v1} {v2}"
    );
}

// ---------------------------------------------------------------- vLLM

#[tokio::test]
async fn vllm_generation_matches() {
    let s = vllm().await;
    for name in [
        "chat_stream_usage",
        "chat_stream_nousage",
        "chat_nostream",
        "chat_max_completion_tokens",
        "chat_min_tokens",
        "completions_nostream",
        "completions_stream_usage",
    ] {
        let (real, sim) = check(&s, "vllm", name).await;
        // The counts that follow from the request (not the prompt's, which needs the
        // real tokenizer).
        let usage = |r: &Resp| -> Option<serde_json::Value> {
            units(r, &r.body())
                .iter()
                .filter_map(|u| serde_json::from_str::<serde_json::Value>(u).ok())
                .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        };
        assert_eq!(
            usage(&sim).map(|u| u["completion_tokens"].clone()),
            usage(&real).map(|u| u["completion_tokens"].clone()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn vllm_errors_and_info_match() {
    let s = vllm().await;
    for name in [
        "unknown_model",
        "unknown_model_stream",
        "max_tokens_over_context",
        "unknown_path",
        "malformed_json",
        "missing_messages",
        "wrong_type",
        "too_long",
    ] {
        let (real, sim) = check(&s, "vllm", name).await;
        let msg = |r: &Resp| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(&r.body()).unwrap()
        };
        let (rv, sv) = (msg(&real), msg(&sim));
        assert_eq!(sv["error"]["type"], rv["error"]["type"], "{name}");
        assert_eq!(sv["error"]["param"], rv["error"]["param"], "{name}");
        assert_eq!(sv["error"]["code"], rv["error"]["code"], "{name}");
        // Byte for byte: too_long's character count (15017 = the content's 15000 plus
        // "user: ", "\n" and "assistant:") and wrong_type's two errors included.
        assert_eq!(body_str(&sim), body_str(&real), "{name}: error body");
    }
    for name in ["version", "health", "models", "tokenize", "tokenize_chat"] {
        check(&s, "vllm", name).await;
    }
}

#[tokio::test]
async fn vllm_metrics_histograms_match() {
    let s = vllm().await;
    send(s.addr(), &fixture("vllm", "chat_nostream", "req")).await;
    let real = Resp::parse(&fixture("vllm", "metrics_after", "raw"));
    let (raw, _) = send(s.addr(), &fixture("vllm", "metrics_after", "req")).await;
    let sim = Resp::parse(&raw);
    assert_eq!(sim.status, 200);
    assert_eq!(sim.header("content-type"), real.header("content-type"));
    let (rb, sb) = (body_str(&real), body_str(&sim));
    for h in [
        "vllm:time_to_first_token_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:e2e_request_latency_seconds",
    ] {
        let buckets = |b: &str| -> Vec<String> {
            b.lines()
                .filter(|l| l.starts_with(&format!("{h}_bucket{{")))
                .filter_map(|l| l.split("le=\"").nth(1))
                .map(|l| l.split('"').next().unwrap().to_string())
                .collect()
        };
        assert!(rb.contains(&format!("# TYPE {h} histogram")), "{h}");
        assert!(sb.contains(&format!("# TYPE {h} histogram")), "{h} in sim");
        assert_eq!(buckets(&sb), buckets(&rb), "{h}: buckets");
    }
}

/// `s` with every run of digits replaced by `#`.
fn digits_out(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// A request of the recorded kind with other values: its error must follow the recorded
/// message's pattern (`loc`/count/limit numbers and `input` values aside).
#[tokio::test]
async fn vllm_error_messages_follow_the_recorded_patterns() {
    let s = vllm().await;
    let post = |body: String| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let error = |r: &Resp| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&r.body()).unwrap()["error"].clone()
    };
    let real = |name: &str| Resp::parse(&fixture("vllm", name, "raw"));
    let addr = s.addr();
    let ask = |body: String| {
        let req = post(body);
        async move { Resp::parse(&send(addr, req.as_bytes()).await.0) }
    };

    // Over the character bound with two messages: 7000 + 3000 characters of content,
    // "system: " + "\n" + "user: " + "\n" + "assistant:" = 26 more.
    let sim = ask(format!(
        r#"{{"model":"tiny","messages":[{{"role":"system","content":"{}"}},{{"role":"user","content":"{}"}}],"max_tokens":4}}"#,
        "y".repeat(7000),
        "z".repeat(3000)
    ))
    .await;
    let rec = real("too_long");
    compare("too_long (10026 characters)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["type"], re["type"]);
    assert_eq!(se["param"], re["param"]);
    let msg = se["message"].as_str().unwrap();
    assert_eq!(digits_out(msg), digits_out(re["message"].as_str().unwrap()));
    assert!(
        msg.contains("contains 10026 characters (more than 6144 "),
        "{msg}"
    );
    // Under the bound the token-based checks answer as before.
    let sim = ask(format!(
        r#"{{"model":"tiny","messages":[{{"role":"user","content":"{}"}}],"max_tokens":4}}"#,
        "a ".repeat(1500)
    ))
    .await;
    assert_eq!(sim.status, 400);
    let msg = error(&sim)["message"].as_str().unwrap().to_string();
    assert!(msg.contains("However, you requested 1504 tokens"), "{msg}");

    // Three invalid fields: each listed, in the model's field order, the first as param.
    let sim = ask(
        r#"{"stream": "maybe", "max_tokens": "y", "messages": "other", "model": "tiny"}"#
            .to_string(),
    )
    .await;
    let rec = real("wrong_type");
    compare("wrong_type (3 fields)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["type"], re["type"]);
    assert_eq!(se["param"], re["param"]);
    let lines = |m: &serde_json::Value| -> Vec<String> {
        m["message"]
            .as_str()
            .unwrap()
            .split('\n')
            .map(|l| l.split("'input': ").next().unwrap().to_string())
            .collect()
    };
    let (rl, sl) = (lines(&re), lines(&se));
    assert_eq!(sl[0], "3 validation errors:");
    assert_eq!(digits_out(&sl[0]), digits_out(&rl[0]).replace("2", "#"));
    assert_eq!(sl[1..3], rl[1..3], "messages and max_tokens lines");
    assert_eq!(
        sl[3],
        "  {'type': 'bool_parsing', 'loc': 'body.stream', 'msg': 'Input should be a valid \
         boolean, unable to interpret input', "
    );
    let m = se["message"].as_str().unwrap();
    assert!(
        m.contains("'input': 'other'}") && m.contains("'input': 'maybe'}"),
        "{m}"
    );

    // Missing messages in a larger body, malformed JSON cut at another offset.
    let sim = ask(r#"{"model": "tiny", "max_tokens": 3}"#.to_string()).await;
    let rec = real("missing_messages");
    compare("missing_messages (2 keys)", &rec, &sim);
    assert_eq!(
        error(&sim)["message"],
        error(&rec)["message"]
            .as_str()
            .unwrap()
            .replace("<dict of 1 items>", "<dict of 2 items>")
    );
    let sim = ask(r#"{"model": "tiny",   "messages": ["#.to_string()).await;
    let rec = real("malformed_json");
    compare("malformed_json (offset 33)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["param"], "body.33");
    assert_eq!(
        se["message"],
        re["message"]
            .as_str()
            .unwrap()
            .replace("body.31", "body.33")
    );
}
