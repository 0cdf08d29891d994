//! Helpers for the `run`, `recover` and `demo` tests: a simulator on 127.0.0.1 port 0,
//! runs through the real CLI parsing and `load::run`, and readers for what they stored.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use benchkeep::cli::{Cli, Command};
use benchkeep::load::RunOutcome;
use benchkeep::schema::{Metadata, RequestRecord};
use benchkeep::sim::{self, Profile, SimConfig, SimServer};
use benchkeep::store::Store;
use clap::Parser;

/// The benchkeep binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_benchkeep");

/// `benchkeep --store STORE` as a child process, with no API key from the environment.
pub fn bk(store: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.arg("--store").arg(store).env_remove("OPENAI_API_KEY");
    c
}

/// Run a command to its end: exit code, stdout, stderr.
pub fn out(c: &mut std::process::Command) -> (i32, String, String) {
    let o = c.output().expect("benchkeep runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fault-free simulator config with small, exact latencies (no jitter).
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

/// A fast config (1 ms steps).
pub fn fast(profile: Profile) -> SimConfig {
    timed(profile, 1.0, 1.0)
}

pub async fn start(c: SimConfig) -> SimServer {
    sim::start(c).await.expect("simulator starts")
}

/// `benchkeep --store STORE run ARGS --quiet`, parsed by the real CLI and run in-process.
pub async fn run(store: &Path, args: &[&str]) -> anyhow::Result<RunOutcome> {
    let mut argv: Vec<String> = ["benchkeep", "--store"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(store.display().to_string());
    argv.push("run".into());
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.push("--quiet".into());
    let cli = Cli::try_parse_from(&argv)?;
    let Command::Run(a) = cli.command else {
        panic!("not a run command")
    };
    let plan = benchkeep::cli::run::plan(&a, &argv)?;
    benchkeep::load::run(&Store::new(store), plan).await
}

/// The records of a raw log, checking that every line parses with `seq` 1, 2, 3, ...
pub fn records(path: &Path) -> Vec<RequestRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let r: RequestRecord =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        assert_eq!(r.seq, i as u64 + 1, "seq of line {}", i + 1);
        out.push(r);
    }
    assert!(text.is_empty() || text.ends_with('\n'));
    out
}

/// The one metadata file of a store.
pub fn only_metadata(store: &Path) -> (PathBuf, Metadata) {
    let files: Vec<PathBuf> = std::fs::read_dir(store.join("metadata"))
        .expect("metadata dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let m: Metadata = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    (files[0].clone(), m)
}

/// The raw file of a run.
pub fn raw_path(store: &Path, m: &Metadata) -> PathBuf {
    store.join(&m.test.output_file)
}

/// Poll `f` until it is true (panics after `limit`).
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines in a file (0 when it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// The raw file of the only run in `store`, once its metadata exists.
pub fn find_raw(store: &Path) -> Option<PathBuf> {
    let dir = store.join("raw");
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        p.extension().is_some_and(|x| x == "jsonl").then_some(p)
    })
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// What a hostile test server does on `POST /v1/chat/completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Valid chunks as fast as the socket takes them, forever.
    EndlessEvents,
    /// `data:` lines that never get their blank line.
    EndlessEvent,
    /// One event that is not UTF-8, then `[DONE]`.
    BadUtf8,
    /// A 200 whole body larger than the client's cap.
    HugeBody,
    /// HTTP 200 with a JSON body although a stream was asked for.
    JsonInsteadOfStream,
    /// HTTP 400 whose error message echoes every request header, Python-dict style
    /// (`{'authorization': 'Basic ...'}`), as some proxies and frameworks do.
    EchoHeaders400,
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that misbehaves as `mode` says; every other path
/// is a 404. Bodies end when the connection closes.
pub async fn hostile(mode: Hostile) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                if !text.starts_with("POST /v1/chat/completions") {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                        .await;
                    return;
                }
                let sse = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
                let json = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                let chunk = br#"data: {"id":"x","choices":[{"index":0,"delta":{"content":"w"}}]}"#;
                match mode {
                    Hostile::EndlessEvents => {
                        let mut block = Vec::new();
                        for _ in 0..64 {
                            block.extend_from_slice(chunk);
                            block.extend_from_slice(b"\n\n");
                        }
                        let _ = sock.write_all(sse).await;
                        while sock.write_all(&block).await.is_ok() {}
                    }
                    Hostile::EndlessEvent => {
                        let _ = sock.write_all(sse).await;
                        let line = [&chunk[..], b"\n"].concat().repeat(64);
                        while sock.write_all(&line).await.is_ok() {}
                    }
                    Hostile::BadUtf8 => {
                        let _ = sock.write_all(sse).await;
                        let _ = sock
                            .write_all(b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\ndata: [DONE]\n\n")
                            .await;
                    }
                    Hostile::HugeBody => {
                        let _ = sock.write_all(json).await;
                        let _ = sock
                            .write_all(b"{\"choices\":[{\"message\":{\"content\":\"")
                            .await;
                        let block = vec![b'a'; 1 << 20];
                        for _ in 0..20 {
                            if sock.write_all(&block).await.is_err() {
                                return;
                            }
                        }
                        let _ = sock.write_all(b"\"}}]}").await;
                    }
                    Hostile::EchoHeaders400 => {
                        // Read the request body too, so closing does not reset the
                        // connection under the response.
                        let head_len = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        let want = text
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        let mut have = head.len() - head_len;
                        while have < want {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => have += n,
                            }
                        }
                        let mut headers: Vec<(String, String)> = text[..head_len]
                            .split("\r\n")
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        // the interesting one first, whatever the error message's cap
                        headers.sort_by_key(|(k, _)| k != "authorization");
                        let headers: Vec<String> = headers
                            .iter()
                            .map(|(k, v)| format!("'{k}': '{v}'"))
                            .collect();
                        let body = serde_json::json!({
                            "error": {
                                "message": format!("bad request; headers: {{{}}}", headers.join(", ")),
                                "type": "BadRequestError",
                            }
                        })
                        .to_string();
                        let head = format!(
                            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                    Hostile::JsonInsteadOfStream => {
                        let _ = sock.write_all(json).await;
                        let _ = sock
                            .write_all(br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"completion_tokens":1}}"#)
                            .await;
                    }
                }
            });
        }
    });
    addr
}
