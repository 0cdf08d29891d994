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

mod ollama;
mod vllm;
