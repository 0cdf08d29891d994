//! `benchkeep analyze` end to end with each reader: what lands in the metadata, and that
//! bad input exits 2 and writes nothing.

use predicates::str::contains;

use crate::support::cmd::analyze_cmd;
use crate::support::fixture;
use crate::support::store::all_metadata;

#[test]
fn ollama_responses_count_as_successes() {
    let store = tempfile::tempdir().unwrap();
    analyze_cmd(store.path(), "ollama", "gemma3:12b")
        .args(["--config", "{}"])
        .args(["--total-time", "10", "--input"])
        .arg(fixture("ingest/ollama_chat.jsonl"))
        .assert()
        .success()
        .stdout(contains("Requests: 4/5"))
        .stdout(contains("Format: ollama"));
    let m = &all_metadata(store.path())[0];
    let r = &m["results"];
    assert_eq!(r["success_count"], 4);
    assert_eq!(r["failure_count"], 1);
    assert_eq!(r["errors_by_kind"]["stream_error"], 1);
    assert_eq!(r["total_completion_tokens"], 5 + 128 + 4 + 20);
    assert_eq!(m["source"]["format"], "ollama");
    assert_eq!(m["status"], "partial");
    // The raw copy is byte-identical and its hash is recorded.
    let raw = store
        .path()
        .join(m["test"]["output_file"].as_str().unwrap());
    assert_eq!(
        std::fs::read(raw).unwrap(),
        std::fs::read(fixture("ingest/ollama_chat.jsonl")).unwrap()
    );
    assert_eq!(m["test"]["raw_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn vllm_offline_timings_give_latencies_and_total_time() {
    let store = tempfile::tempdir().unwrap();
    analyze_cmd(store.path(), "vllm-offline", "qwen")
        .arg("--input")
        .arg(fixture("ingest/vllm_offline.jsonl"))
        .assert()
        .success();
    let m = &all_metadata(store.path())[0];
    let r = &m["results"];
    assert_eq!(r["success_count"], 3);
    assert_eq!(r["errors_by_kind"]["aborted"], 1);
    let total = r["total_time_seconds"].as_f64().unwrap();
    assert!((total - 1.8766).abs() < 1e-3, "{total}");
    assert_eq!(r["latency_ms"]["ttft"]["count"], 3);
}

#[test]
fn batch_and_openai_files_import() {
    for (name, format, ok, total) in [
        ("openai_batch.jsonl", "openai-batch", 3, 7),
        ("openai_chat.jsonl", "openai", 6, 12),
        ("benchkeep_raw.jsonl", "benchkeep", 2, 4),
    ] {
        let store = tempfile::tempdir().unwrap();
        analyze_cmd(store.path(), "vllm-serve", "tiny")
            .args(["--total-time", "5"])
            .arg("--input")
            .arg(fixture(&format!("ingest/{name}")))
            .assert()
            .success()
            .stdout(contains(format!("Requests: {ok}/{total}")));
        let m = &all_metadata(store.path())[0];
        assert_eq!(m["source"]["format"], format);
        assert_eq!(m["test"]["num_requests"], total);
    }
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    for (input, message) in [
        (dir.path().join("missing.jsonl"), "does not exist"),
        (empty, "is empty"),
        (fixture("ingest/unknown.jsonl"), "--format"),
    ] {
        analyze_cmd(store.path(), "p", "m")
            .args(["--total-time", "1", "--input"])
            .arg(&input)
            .assert()
            .code(2)
            .stderr(contains(message));
    }
    assert!(all_metadata(store.path()).is_empty());
    assert!(
        !store.path().join("raw").exists()
            || std::fs::read_dir(store.path().join("raw"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn forced_format_flag() {
    let store = tempfile::tempdir().unwrap();
    analyze_cmd(store.path(), "p", "m")
        .args(["--total-time", "1", "--format", "ollama"])
        .arg("--input")
        .arg(fixture("ingest/ollama_stream.jsonl"))
        .assert()
        .success()
        .stdout(contains("Requests: 1/3"));
    analyze_cmd(store.path(), "p", "m")
        .args(["--total-time", "1", "--format", "csv"])
        .arg("--input")
        .arg(fixture("ingest/ollama_stream.jsonl"))
        .assert()
        .code(2)
        .stderr(contains("openai-batch"));
}
