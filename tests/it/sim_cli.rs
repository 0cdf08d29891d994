//! `benchkeep simulate` as a binary: prints one machine-readable address line, serves,
//! stops on SIGTERM, and rejects bad flags with a message naming the flag.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::benchkeep;

fn http(addr: &str, request: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn prints_address_and_serves() {
    let mut child = benchkeep()
        .args([
            "simulate",
            "--port",
            "0",
            "--profile",
            "ollama",
            "--no-delay",
            "--workers",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let addr = url
        .strip_prefix("http://127.0.0.1:")
        .map(|p| format!("127.0.0.1:{p}"))
        .unwrap();
    let resp = http(
        &addr,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("Ollama is running"),
        "{resp}"
    );
    let body = r#"{"model":"llama3.2","prompt":"hi","stream":false,"options":{"num_predict":3}}"#;
    let resp = http(
        &addr,
        &format!(
            "POST /api/generate HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(resp.contains("\"eval_count\":3"), "{resp}");
    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_flags_name_the_flag() {
    for (args, needle) in [
        (vec!["--drop-rate", "2"], "--drop-rate"),
        (vec!["--jitter", "1.5"], "--jitter"),
        (vec!["--host", "localhost"], "--host"),
        (vec!["--profile", "tgi"], "tgi"),
        (vec!["--max-num-seqs", "0"], "--max-num-seqs"),
        (vec!["--workers", "0"], "--workers"),
    ] {
        let out = benchkeep()
            .arg("simulate")
            .args(["--port", "0"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
