//! Bad input: files that cannot be imported at all (exit code 2, a message naming the
//! problem and the fix), and lines that are counted as unparseable with their reasons.

use std::path::{Path, PathBuf};

use crate::support::api::error::{exit, exit_code_for};
use crate::support::api::ingest::{Format, MAX_LINE_BYTES, Scan, scan_file};
use crate::support::api::schema::RequestRecord;

const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error message and exit code of a scan that must fail; the sink must not be called.
fn fails(path: &Path, forced: Option<Format>) -> (String, i32) {
    let mut called = false;
    let err = scan_file(path, forced, |_| called = true).unwrap_err();
    assert!(!called, "records were sent before the error");
    (format!("{err:#}"), exit_code_for(&err))
}

fn scan(path: &Path) -> (Scan, Vec<RequestRecord>) {
    let mut records = Vec::new();
    let s = scan_file(path, None, |r| records.push(r)).unwrap();
    (s, records)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (msg, code) = fails(&dir.path().join("nope.jsonl"), None);
    assert_eq!(code, exit::USAGE);
    assert!(
        msg.contains("nope.jsonl") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (msg, code) = fails(dir.path(), Some(Format::OpenAi));
    assert_eq!(code, exit::USAGE);
    assert!(msg.contains("is a directory"), "{msg}");
}

#[test]
fn empty_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.jsonl", &b""[..]),
        ("blank.jsonl", b"\n\n  \r\n\t\n"),
        ("bom.jsonl", b"\xEF\xBB\xBF\r\n\n"),
    ] {
        let path = write(dir.path(), name, bytes);
        for forced in [None, Some(Format::OpenAi)] {
            let (msg, code) = fails(&path, forced);
            assert_eq!(code, exit::USAGE, "{name}");
            assert!(msg.contains(name) && msg.contains("is empty"), "{msg}");
        }
    }
}

#[test]
fn unknown_format_names_keys_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mine.jsonl",
        b"{\"prompt\": \"2+2?\", \"answer\": \"4\", \"latency\": 0.4}\n",
    );
    let (msg, code) = fails(&path, None);
    assert_eq!(code, exit::USAGE);
    for want in [
        "\"prompt\"",
        "\"answer\"",
        "\"latency\"",
        "--format",
        "openai-batch",
        "vllm-offline",
        "benchkeep",
    ] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }
}

#[test]
fn not_json_lines_and_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "log.txt",
        b"INFO 11-28 06:19:27 starting\nINFO done\n",
    );
    let (msg, code) = fails(&path, None);
    assert_eq!(code, exit::USAGE);
    assert!(
        msg.contains("not JSON") && msg.contains("INFO 11-28"),
        "{msg}"
    );
    let path = write(dir.path(), "array.json", format!("[{CHAT}]\n").as_bytes());
    let (msg, _) = fails(&path, None);
    assert!(msg.contains("a JSON array, not an object"), "{msg}");
    let path = write(
        dir.path(),
        "chunks.jsonl",
        br#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"P"},"finish_reason":null}]}
"#,
    );
    let (msg, _) = fails(&path, None);
    assert!(msg.contains("streaming chunk"), "{msg}");
}

#[test]
fn unparseable_lines_are_counted_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    data.extend_from_slice(CHAT.as_bytes()); // 1
    data.extend_from_slice(b"\ngarbage here\n"); // 2
    data.extend_from_slice(&[0u8; 300]); // 3: a zero-filled block
    data.push(b'\n');
    data.extend_from_slice(b"{\"id\": \"\xff\xfe\", \"choices\": []}\n"); // 4: invalid UTF-8
    data.extend_from_slice(CHAT.as_bytes()); // 5
    data.extend_from_slice(b"\n{\"foo\": 1}\n"); // 6: JSON, not a response
    data.extend_from_slice(b"\n"); // 7: blank
    data.extend_from_slice(&CHAT.as_bytes()[..CHAT.len() / 2]); // 8: torn last line
    let path = write(dir.path(), "torn.jsonl", &data);
    let (s, records) = scan(&path);
    assert_eq!(s.format, Format::OpenAi);
    assert_eq!((s.records, s.unparseable), (2, 5));
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 5]);
    let lines: Vec<u64> = s.first_unparseable.iter().map(|u| u.line).collect();
    assert_eq!(lines, [2, 3, 4, 6, 8]);
    let reasons: Vec<&str> = s
        .first_unparseable
        .iter()
        .map(|u| u.reason.as_str())
        .collect();
    assert!(reasons[0].starts_with("invalid JSON"), "{}", reasons[0]);
    assert!(reasons[1].contains("NUL"), "{}", reasons[1]);
    assert!(reasons[2].contains("UTF-8"), "{}", reasons[2]);
    assert!(reasons[3].contains("\"foo\""), "{}", reasons[3]);
    assert!(reasons[4].starts_with("truncated JSON"), "{}", reasons[4]);
}

#[test]
fn only_the_first_twenty_reasons_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{CHAT}\n");
    for _ in 0..50 {
        text.push_str("{oops\n");
    }
    let path = write(dir.path(), "many.jsonl", text.as_bytes());
    let (s, _) = scan(&path);
    assert_eq!(
        (s.records, s.unparseable, s.first_unparseable.len()),
        (1, 50, 20)
    );
    assert_eq!(s.first_unparseable[19].line, 21);
}

#[test]
fn lines_over_the_limit_are_skipped_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{CHAT}").unwrap();
        f.write_all(b"{\"id\": \"").unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..=(MAX_LINE_BYTES >> 20) {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        writeln!(f, "{CHAT}").unwrap();
    }
    let (s, records) = scan(&path);
    assert_eq!((s.records, s.unparseable), (2, 1));
    assert_eq!(records[1].seq, 3);
    assert_eq!(s.first_unparseable[0].line, 2);
    assert!(
        s.first_unparseable[0].reason.contains("64 MiB"),
        "{}",
        s.first_unparseable[0].reason
    );
}
