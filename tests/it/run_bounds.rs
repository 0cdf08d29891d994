//! `benchkeep run` against hostile servers and with absurd flags: bounded memory and raw
//! lines (RELIABILITY P8, P13), honest error kinds (`not_a_stream`, failures by status),
//! input fields sent as given, and flags that would break every request refused.

use std::io::Write;

use crate::support::api::schema::{
    ErrorKind, MAX_ITL_GAPS, MAX_RAW_LINE_BYTES, RequestRecord, Status,
};
use crate::support::api::sim::Profile;
use crate::support::cmd::{refs, run_in_process, run_synthetic, synthetic_args};
use crate::support::hostile::{Hostile, hostile};
use crate::support::sim::{fast_exact, start_blocking};
use crate::support::store::{only_run, raw_path, records};
use crate::support::{bk, bk_std, out};

const BASE: [&str; 6] = [
    "--platform",
    "vllm",
    "--model",
    "m",
    "--base-url",
    "http://127.0.0.1:9",
];
const SYN: [&str; 5] = ["--synthetic", "--input-tokens", "8", "--output-tokens", "8"];

#[test]
fn flags_that_break_every_request_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--concurrency", "1000000"],
            "--concurrency 1000000: at most 100000",
        ),
        (
            vec!["--header", "Content-Length: 5"],
            "--header content-length",
        ),
        (
            vec!["--header", "Transfer-Encoding: chunked"],
            "--header transfer-encoding",
        ),
        (vec!["--header", "Host: other"], "--header host"),
        (vec!["--header", "connection: close"], "--header connection"),
        (vec!["--slo", "ttft=1s,ttft=2s"], "\"ttft\" is given twice"),
    ];
    for (extra, want) in cases {
        let (code, _, err) = out(bk_std(&store).arg("run").args(BASE).args(SYN).args(&extra));
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    assert!(!store.join("metadata").exists(), "nothing was written");
}

/// An HTML page in answer to a streaming request is `not_a_stream`, with the page quoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_is_not_a_stream() {
    let addr = hostile(Hostile::Html200).await;
    let dir = tempfile::tempdir().unwrap();
    let args = synthetic_args(&format!("http://{addr}"), "x", "m", "2", "4");
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let r = &o.metadata.results;
    assert_eq!(r.errors_by_kind.get("not_a_stream"), Some(&2), "{r:?}");
    assert!(r.errors_by_status.is_empty(), "{r:?}");
    let recs = records(&raw_path(dir.path(), &o.metadata));
    let e = recs[0].error.as_deref().unwrap();
    assert!(
        e.contains("text/html") && e.contains("Sign in to the proxy"),
        "{e}"
    );
    assert_eq!(recs[0].http_status, Some(200));
}

/// Failures by status are counted by status in the results, `show` and the summary.
#[test]
fn failures_are_counted_by_http_status() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(hostile(Hostile::Statuses));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let args = synthetic_args(&format!("http://{addr}"), "x", "m", "6", "4");
    let (code, stdout, err) = out(bk_std(store).arg("run").args(&args).arg("--quiet"));
    assert_eq!(code, 1, "every request failed: {stdout}{err}");
    let (_, meta) = only_run(store);
    let by: Vec<(String, u64)> = meta.results.errors_by_status.clone().into_iter().collect();
    let total: u64 = by.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 6, "{by:?}");
    assert!(by.iter().all(|(k, _)| k == "429" || k == "500"), "{by:?}");
    assert!(stdout.contains("Errors by HTTP status: "), "{stdout}");
    let show = bk(store).args(["show", &meta.test_id]).output().unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("Errors by HTTP status"), "{show}");
    drop(rt);
}

/// A server that answers 413 and closes while a large body is still being sent: the record
/// says so, as `http_status` 413 when the answer could be read, else as the documented
/// `connection_closed` with a message naming the 413 case; never the undocumented `other`.
#[test]
fn a_413_then_a_reset_is_never_an_unnamed_failure() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(hostile(Hostile::Reject413));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    // About 2.5 MB of prompt per request: far more than the socket buffers take at once.
    let base = format!("http://{addr}");
    let args = [
        "--platform",
        "x",
        "--base-url",
        &base,
        "--model",
        "m",
        "--synthetic",
        "--input-tokens",
        "500000",
        "--output-tokens",
        "4",
        "--num-requests",
        "4",
    ];
    let (code, stdout, err) = out(bk_std(store).arg("run").args(args).arg("--quiet"));
    assert_eq!(code, 1, "every request failed: {stdout}{err}");
    let (_, meta) = only_run(store);
    let raw = raw_path(store, &meta);
    for r in records(&raw) {
        match r.error_kind {
            Some(ErrorKind::HttpStatus) => assert_eq!(r.http_status, Some(413), "{r:?}"),
            Some(ErrorKind::ConnectionClosed) => {
                assert!(r.error.as_deref().unwrap_or("").contains("413"), "{r:?}")
            }
            other => panic!("a 413 and a reset became {other:?}: {r:?}"),
        }
    }
    assert!(
        !meta.results.errors_by_kind.contains_key("other"),
        "{:?}",
        meta.results.errors_by_kind
    );
    drop(rt);
}

/// A server sending tiny events forever: the request keeps at most MAX_ITL_GAPS gaps and
/// a summary of the rest, and its raw line re-reads with `analyze` and `recover`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_tiny_events_keep_a_bounded_record() {
    let addr = hostile(Hostile::EndlessEvents).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = synthetic_args(&format!("http://{addr}"), "x", "m", "1", "4");
    args.extend(["--timeout", "3s"].map(String::from));
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let raw = raw_path(dir.path(), &o.metadata);
    let recs = records(&raw);
    let r = &recs[0];
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
    assert!(r.itl_ms.len() <= MAX_ITL_GAPS);
    let chunks = r.chunks.unwrap();
    assert!(chunks > MAX_ITL_GAPS as u64 + 1, "{chunks}");
    let over = r
        .itl_overflow
        .expect("the gaps past the cap are summarized");
    assert_eq!(r.itl_ms.len() as u64 + over.gaps + 1, chunks);
    let len = std::fs::metadata(&raw).unwrap().len();
    assert!(len <= MAX_RAW_LINE_BYTES as u64, "{len}");
}

/// The largest record benchkeep can write (every list and string at its cap, text of
/// characters that escape to six bytes) stays one line that `analyze` and `recover` read.
#[test]
fn the_largest_record_round_trips_through_analyze_and_recover() {
    let mut r = RequestRecord {
        seq: 1,
        ok: true,
        id: Some("i".repeat(8 << 20)),
        text: Some("\u{1}".repeat(64 << 10)),
        itl_ms: vec![600_000.123; MAX_ITL_GAPS],
        chunks: Some(u64::MAX),
        completion_tokens: Some(u64::MAX),
        error: None,
        finish_reason: Some("s".repeat(1 << 20)),
        scheduled_s: Some(0.0),
        sent_s: Some(0.0),
        end_s: Some(1.0),
        ttft_ms: Some(1.0),
        e2e_ms: Some(1000.0),
        client_stall_ms: Some(1.0),
        ..Default::default()
    };
    let line = r.fit();
    assert!(line.len() <= MAX_RAW_LINE_BYTES, "{}", line.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(&line).unwrap();
    drop(f);
    let store = dir.path().join("s");
    bk(&store)
        .args([
            "analyze",
            "--platform",
            "x",
            "--model",
            "m",
            "--format",
            "benchkeep",
            "--input",
        ])
        .arg(&file)
        .assert()
        .success();
    let (_, meta) = only_run(&store);
    assert_eq!(meta.results.success_count, 1, "{:?}", meta.results);
    assert_eq!(meta.results.client_stalled_requests, 1);
    // The same line as the raw log of a crashed run: `recover` finishes it.
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let store = dir.path().join("s2");
    let (code, _, err) = out(
        run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "4")
            .args(["--num-requests", "1"]),
    );
    assert_eq!(code, 0, "{err}");
    let (meta_path, mut m) = only_run(&store);
    std::fs::write(raw_path(&store, &m), &line).unwrap();
    m.status = Status::Running;
    m.pid = None;
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (code, stdout, err) = out(bk_std(&store).args(["recover", &m.test_id]));
    assert_eq!(code, 0, "{stdout}{err}");
    let (_, m) = only_run(&store);
    assert_eq!(m.results.success_count, 1, "{:?}", m.results);
    assert_eq!(m.results.unparseable_lines, 0);
    assert_eq!(records(&raw_path(&store, &m))[0].chunks, Some(u64::MAX));
}

/// `run --input` sends the input's other fields as given (`n`, `tools`, `logprobs`...),
/// so its sha256 pairs it honestly with other tools' runs of the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_fields_are_sent_as_given() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&got).into_owned();
                    let Some(at) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let want: usize = text
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if got.len() < at + 4 + want {
                        continue;
                    }
                    if text.starts_with("POST /v1/chat/completions") {
                        let _ = tx.send(text[at + 4..].to_string());
                        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    } else {
                        let _ = sock
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                            .await;
                    }
                    return;
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        r#"{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"other","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":2,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","response_format":{"type":"json_object"},"logprobs":true,"presence_penalty":0.5,"stream":false}}
"#,
    )
    .unwrap();
    let store = dir.path().join("s");
    let base = format!("http://{addr}");
    let args = [
        "--platform",
        "x",
        "--model",
        "m",
        "--base-url",
        &base,
        "--input",
        input.to_str().unwrap(),
        "--max-tokens",
        "3",
    ];
    let o = run_in_process(&store, &args).await.unwrap();
    assert_eq!(o.metadata.results.success_count, 1);
    let sent: serde_json::Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
    assert_eq!(sent["n"], 2);
    assert_eq!(sent["tools"][0]["function"]["name"], "f");
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["response_format"]["type"], "json_object");
    assert_eq!(sent["logprobs"], true);
    assert_eq!(sent["presence_penalty"], 0.5);
    // what the run controls
    assert_eq!(sent["model"], "m");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["max_tokens"], 3);
    assert!(sent.get("custom_id").is_none() && sent.get("url").is_none());
}

/// The client paused (SIGSTOP) while requests are in flight: their records say how long
/// (`client_stall_ms`), and the results count them, instead of blaming the server.
#[test]
fn a_paused_client_marks_the_requests_in_flight() {
    use crate::support::sim::timed;
    let sim = start_blocking(timed(Profile::Vllm, 1.0, 50.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "40")
        .args(["--num-requests", "2", "--concurrency", "2", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // the raw log exists just before the first request is sent
    crate::support::wait_until(std::time::Duration::from_secs(20), "the run starts", || {
        crate::support::store::find_raw(&store).is_some()
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: pausing and resuming our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
    std::thread::sleep(std::time::Duration::from_millis(1000));
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
    assert!(child.wait().unwrap().success());
    let (_, m) = only_run(&store);
    let recs = records(&raw_path(&store, &m));
    assert_eq!(recs.len(), 2);
    for r in &recs {
        let stall = r.client_stall_ms.expect("the pause is on the record");
        assert!((800.0..5000.0).contains(&stall), "{stall}");
    }
    assert_eq!(m.results.client_stalled_requests, 2);
}
