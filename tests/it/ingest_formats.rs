//! Each reader on realistic sample files (tests/fixtures/ingest): what counts as a request,
//! a success, a failure of which kind, and where tokens and timings come from.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::api::ingest::{Format, Scan, scan_file};
use crate::support::api::schema::{ErrorKind, RequestRecord};
use crate::support::fixture;

fn scan(path: &Path, forced: Option<Format>) -> (Scan, Vec<RequestRecord>) {
    let mut records = Vec::new();
    let scan = scan_file(path, forced, |r| records.push(r)).unwrap();
    (scan, records)
}

fn kinds(records: &[RequestRecord]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in records.iter().filter(|r| !r.ok) {
        *m.entry(r.error_kind.map_or("none", |k| k.as_str()))
            .or_default() += 1;
    }
    m
}

fn by_seq(records: &[RequestRecord], seq: u64) -> &RequestRecord {
    records.iter().find(|r| r.seq == seq).unwrap()
}

#[test]
fn openai_lines_responses_and_error_bodies() {
    let (scan, records) = scan(&fixture("ingest/openai_chat.jsonl"), None);
    assert_eq!(scan.format, Format::OpenAi);
    assert_eq!((scan.records, scan.unparseable, scan.skipped), (12, 0, 0));
    assert_eq!(records.iter().filter(|r| r.ok).count(), 6);
    assert_eq!(
        kinds(&records),
        BTreeMap::from([("aborted", 1), ("http_status", 4), ("stream_error", 1)])
    );
    // seq is the line number; line 3 is blank.
    let r = by_seq(&records, 4);
    assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(6), Some(5)));
    assert_eq!(r.id.as_deref(), Some("cmpl-3f9a"));
    let r = by_seq(&records, 5);
    assert_eq!(r.http_status, Some(400));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("maximum context length is 4096")
    );
    let r = by_seq(&records, 6);
    assert_eq!(
        (r.http_status, r.error_kind),
        (Some(404), Some(ErrorKind::HttpStatus))
    );
    let r = by_seq(&records, 8);
    assert_eq!(
        (r.http_status, r.error_kind),
        (None, Some(ErrorKind::StreamError))
    );
    assert!(r.error.as_deref().unwrap().contains("not found"));
    let r = by_seq(&records, 10);
    assert_eq!(r.error_kind, Some(ErrorKind::Aborted));
    let r = by_seq(&records, 11);
    assert_eq!(r.error.as_deref(), Some("missing: Field required"));
    let r = by_seq(&records, 12);
    assert!(r.ok);
    assert_eq!((r.prompt_tokens, r.completion_tokens), (None, None));
    let total_completion: u64 = records
        .iter()
        .filter(|r| r.ok)
        .filter_map(|r| r.completion_tokens)
        .sum();
    assert_eq!(total_completion, 8 + 5 + 5 + 3 + 3);
}

#[test]
fn vllm_run_batch_output() {
    let (scan, records) = scan(&fixture("ingest/openai_batch.jsonl"), None);
    assert_eq!(scan.format, Format::OpenAiBatch);
    assert_eq!((scan.records, scan.unparseable), (7, 0));
    let ok: Vec<&str> = records
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.id.as_deref().unwrap())
        .collect();
    assert_eq!(ok, ["request-0", "req-0001", "req-0004"]);
    assert_eq!(
        kinds(&records),
        BTreeMap::from([("http_status", 3), ("other", 1)])
    );
    let r = by_seq(&records, 3);
    assert_eq!(
        (r.id.as_deref(), r.http_status),
        (Some("request-2"), Some(400))
    );
    assert!(r.error.as_deref().unwrap().contains("max_model_len=1024"));
    let r = by_seq(&records, 4);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("URL /v1/completions is not a supported endpoint")
    );
    assert_eq!(by_seq(&records, 6).http_status, Some(500));
    assert!(
        by_seq(&records, 7)
            .error
            .as_deref()
            .unwrap()
            .contains("batch_expired")
    );
    let r = by_seq(&records, 1);
    assert_eq!(
        (r.prompt_tokens, r.completion_tokens, r.http_status),
        (Some(23), Some(5), Some(200))
    );
}

#[test]
fn ollama_model_dump_responses() {
    let (scan, records) = scan(&fixture("ingest/ollama_chat.jsonl"), None);
    assert_eq!(scan.format, Format::Ollama);
    // The `done_reason: "load"` line is not a request.
    assert_eq!((scan.records, scan.unparseable, scan.skipped), (5, 0, 1));
    assert_eq!(records.iter().filter(|r| r.ok).count(), 4);
    let r = by_seq(&records, 1);
    assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(31), Some(5)));
    assert_eq!(r.server.total_duration_ns, Some(612004512));
    assert_eq!(r.server.load_duration_ns, Some(20311042));
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    let r = by_seq(&records, 2);
    assert_eq!((r.prompt_tokens, r.completion_tokens), (None, Some(128)));
    assert_eq!(r.server.load_duration_ns, None);
    let r = by_seq(&records, 3);
    assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(12), Some(4)));
    let r = by_seq(&records, 4);
    assert_eq!(r.error_kind, Some(ErrorKind::StreamError));
    assert!(r.error.as_deref().unwrap().contains("gemma3:27b"));
}

#[test]
fn ollama_stream_chunks_fold_into_requests() {
    let (scan, records) = scan(&fixture("ingest/ollama_stream.jsonl"), None);
    assert_eq!(scan.format, Format::Ollama);
    assert_eq!((scan.records, scan.unparseable, scan.skipped), (3, 0, 5));
    let summary: Vec<(u64, bool, Option<ErrorKind>)> = records
        .iter()
        .map(|r| (r.seq, r.ok, r.error_kind))
        .collect();
    assert_eq!(
        summary,
        [
            (4, true, None),
            (6, false, Some(ErrorKind::StreamError)),
            (8, false, Some(ErrorKind::CutShort))
        ]
    );
    assert_eq!(records[0].completion_tokens, Some(5));
}

#[test]
fn vllm_offline_dumps() {
    let (scan, records) = scan(&fixture("ingest/vllm_offline.jsonl"), None);
    assert_eq!(scan.format, Format::VllmOffline);
    assert_eq!((scan.records, scan.unparseable), (4, 0));
    let r = &records[0];
    assert_eq!(
        (r.id.as_deref(), r.prompt_tokens, r.completion_tokens),
        (Some("0"), Some(15), Some(9))
    );
    assert!((r.ttft_ms.unwrap() - 41.2).abs() < 1e-6);
    assert!((r.e2e_ms.unwrap() - 155.2).abs() < 1e-3);
    let r = &records[1];
    assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(4), Some(2)));
    assert!((r.ttft_ms.unwrap() - 300.0).abs() < 1e-3);
    assert!((r.e2e_ms.unwrap() - 800.0).abs() < 1e-3);
    assert_eq!(records[2].error_kind, Some(ErrorKind::Aborted));
    let r = &records[3];
    assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(6), Some(3)));
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert!((r.e2e_ms.unwrap() - 1000.0).abs() < 1e-3);
    // arrival/finish give the run's span (first arrival to last finish).
    let start = records
        .iter()
        .filter_map(|r| r.sent_s)
        .fold(f64::MAX, f64::min);
    let end = records
        .iter()
        .filter_map(|r| r.end_s)
        .fold(f64::MIN, f64::max);
    assert!((end - start - 1.8766).abs() < 1e-3, "{}", end - start);
}

#[test]
fn benchkeep_raw_records_round_trip() {
    let (scan, records) = scan(&fixture("ingest/benchkeep_raw.jsonl"), None);
    assert_eq!(scan.format, Format::Benchkeep);
    assert_eq!((scan.records, scan.unparseable), (4, 0));
    assert_eq!(records[0].itl_ms, vec![12.5, 13.0, 12.8]);
    assert_eq!(records[1].error_kind, Some(ErrorKind::HttpStatus));
    assert_eq!(records[2].server.eval_duration_ns, Some(300000000));
    assert_eq!(records[3].error_kind, Some(ErrorKind::StreamError));
}

#[test]
fn crlf_bom_and_blank_lines_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [
        ("openai_chat.jsonl", Format::OpenAi),
        ("openai_batch.jsonl", Format::OpenAiBatch),
        ("ollama_chat.jsonl", Format::Ollama),
        ("vllm_offline.jsonl", Format::VllmOffline),
        ("benchkeep_raw.jsonl", Format::Benchkeep),
    ] {
        let original = std::fs::read_to_string(fixture(&format!("ingest/{name}"))).unwrap();
        let (plain, plain_records) = scan(&fixture(&format!("ingest/{name}")), None);
        // BOM, CRLF endings, whitespace-only lines between records, no final newline.
        let mut text = String::from("\u{feff}");
        for line in original.lines() {
            text.push_str(line);
            text.push_str("\r\n \t\r\n");
        }
        let text = text.trim_end_matches(['\r', '\n', ' ', '\t']).to_string();
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (s, records) = scan(&path, None);
        assert_eq!(s.format, format, "{name}");
        assert_eq!(
            (s.records, s.unparseable, s.skipped),
            (plain.records, 0, plain.skipped),
            "{name}"
        );
        assert_eq!(s.bytes, text.len() as u64);
        // Same records; line numbers double (every record line is followed by a blank one).
        for (a, b) in plain_records.iter().zip(&records) {
            let mut a = a.clone();
            if format != Format::Benchkeep {
                a.seq = a.seq * 2 - 1;
            }
            assert_eq!(&a, b, "{name}");
        }
    }
}

#[test]
fn forced_format_skips_detection() {
    // An openai file read as openai-batch: no line is a batch line.
    let (scan_forced, records) = scan(
        &fixture("ingest/openai_chat.jsonl"),
        Some(Format::OpenAiBatch),
    );
    assert_eq!(scan_forced.format, Format::OpenAiBatch);
    assert_eq!(scan_forced.records + scan_forced.unparseable, 12);
    assert!(records.iter().all(|r| !r.ok));
    // An error-only file would be detected as openai; forcing ollama reads it as ollama.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.jsonl");
    std::fs::write(&path, "{\"error\": \"boom\"}\n{\"error\": \"again\"}\n").unwrap();
    let (s, _) = scan(&path, None);
    assert_eq!(s.format, Format::Ollama);
    let (s, records) = scan(&path, Some(Format::OpenAi));
    assert_eq!((s.format, s.records), (Format::OpenAi, 2));
    assert_eq!(records[0].error.as_deref(), Some("boom"));
    // Unknown keys under a forced format are unparseable, with the keys named.
    let (s, _) = scan(&fixture("ingest/unknown.jsonl"), Some(Format::Ollama));
    assert_eq!((s.records, s.unparseable), (0, 2));
    assert!(
        s.first_unparseable[0].reason.contains("\"answer\""),
        "{}",
        s.first_unparseable[0].reason
    );
}

#[test]
fn detection_passes_over_error_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let ollama = std::fs::read_to_string(fixture("ingest/ollama_chat.jsonl")).unwrap();
    std::fs::write(
        &path,
        format!("not json at all\n{{\"error\": \"first\"}}\n\n{ollama}"),
    )
    .unwrap();
    let (s, records) = scan(&path, None);
    assert_eq!(s.format, Format::Ollama);
    assert_eq!((s.records, s.unparseable), (6, 1));
    assert_eq!(s.first_unparseable[0].line, 1);
    assert!(s.first_unparseable[0].reason.starts_with("invalid JSON"));
    assert_eq!(records[0].error.as_deref(), Some("first"));
}

#[test]
fn sha256_and_size_of_the_whole_file() {
    let (s, _) = scan(&fixture("ingest/openai_batch.jsonl"), None);
    let bytes = std::fs::read(fixture("ingest/openai_batch.jsonl")).unwrap();
    assert_eq!(s.bytes, bytes.len() as u64);
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(s.sha256, want);
}
