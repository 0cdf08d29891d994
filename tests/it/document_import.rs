//! `benchkeep analyze` with a whole-document format (`vllm bench serve --save-result`):
//! one file, one or several runs, stored once in `raw/` and once per run in `metadata/`.
//! The fixtures in `tests/fixtures/document/` follow PEERS.md 1a.1 (units: seconds).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

use crate::support::api::digest::sha256_hex;
use crate::support::{self, bk, store::all_metadata};

fn fixture(name: &str) -> PathBuf {
    support::fixture(&format!("document/{name}"))
}

fn analyze(store: &Path, input: &Path) -> Command {
    let mut cmd = bk(store);
    cmd.args(["analyze", "--platform", "vllm-serve", "--model", "model-8b"])
        .arg("--input")
        .arg(input);
    cmd
}

/// Every run's metadata, oldest id first.
fn runs(store: &Path) -> Vec<Value> {
    all_metadata(store)
}

fn raw_files(store: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(store.join("raw")) else {
        return Vec::new();
    };
    dir.map(|e| e.unwrap().path()).collect()
}

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() < 1e-6, "{got} != {want}");
}

fn verify_clean(store: &Path) {
    bk(store).arg("verify").assert().code(0);
}

#[test]
fn detailed_file_gives_records_in_ms_and_the_failure() {
    let store = tempfile::tempdir().unwrap();
    let input = fixture("vllm_serve_detailed.json");
    analyze(store.path(), &input)
        .assert()
        .code(0)
        .stdout(contains("Requests: 3/4"))
        .stdout(contains("Format: vllm-bench-serve"))
        .stdout(contains("Imported 1 run from"));
    let all = runs(store.path());
    assert_eq!(all.len(), 1);
    let m = &all[0];
    let r = &m["results"];
    assert_eq!(m["status"], "partial");
    assert_eq!(m["test"]["num_requests"], 4);
    assert_eq!(r["success_count"], 3);
    assert_eq!(r["failure_count"], 1);
    // "Internal Server Error" is aiohttp's reason phrase for an HTTP 500.
    assert_eq!(r["errors_by_kind"]["http_status"], 1);
    // input_lens 32 + 48 + 64 and output_lens 4 + 3 + 5 of the successful requests.
    assert_eq!(r["total_prompt_tokens"], 144);
    assert_eq!(r["total_completion_tokens"], 12);
    close(&r["total_time_seconds"], 0.4);
    // ttfts 0.123, 0.2, 0.1 s -> 123, 200, 100 ms; latencies 0.183, 0.255, 0.18 s.
    let lat = &r["latency_ms"];
    assert_eq!(lat["ttft"]["count"], 3);
    close(&lat["ttft"]["p50"], 123.0);
    close(&lat["ttft"]["max"], 200.0);
    close(&lat["e2e"]["p50"], 183.0);
    close(&lat["e2e"]["max"], 255.0);
    // itls: 9 gaps of the successful requests, the largest 0.03 s.
    assert_eq!(lat["itl"]["count"], 9);
    close(&lat["itl"]["max"], 30.0);
    // tpot (e2e - ttft) / (tokens - 1): 20, 27.5, 20 ms, as vLLM's own median says.
    close(&lat["tpot"]["p50"], 20.0);
    // vLLM's figures are kept under their own names.
    let imported = &r["imported"];
    close(&imported["median_ttft_ms"], 123.0);
    close(&imported["p99_tpot_ms"], 27.35);
    close(&imported["request_throughput"], 7.5);
    assert_eq!(imported["request_goodput"], Value::Null);
    assert!(imported.get("latencies").is_none());
    // Where it came from.
    let src = &m["source"];
    assert_eq!(src["format"], "vllm-bench-serve");
    assert_eq!(src["kind"], "analyze");
    assert_eq!(src["tool"], "vllm bench serve");
    assert_eq!(src["tool_version"], Value::Null);
    assert_eq!(src["locator"], "line 1");
    assert_eq!(src["tool_model"], "org/model-8b");
    assert_eq!(src["started"], "20260301-101500");
    assert_eq!(src["load"]["request_rate"], "inf");
    assert_eq!(src["load"]["max_concurrency"], 4);
    assert_eq!(src["notes"]["tp"], "1");
    assert_eq!(src["notes"]["gpu"], "H100");
    // The original is stored byte for byte, and its hash recorded.
    let raw = store
        .path()
        .join(m["test"]["output_file"].as_str().unwrap());
    let bytes = std::fs::read(&input).unwrap();
    assert_eq!(std::fs::read(&raw).unwrap(), bytes);
    assert_eq!(m["test"]["raw_sha256"], sha256_hex(&bytes));
    assert_eq!(m["test"]["raw_bytes"], bytes.len() as u64);
    verify_clean(store.path());
    bk(store.path())
        .args(["query", "--metric", "imported.median_ttft_ms"])
        .assert()
        .code(0)
        .stdout(contains("123"));
    // The HTML report reads the run's requests back from the shared raw copy at the run's
    // locator: its latency distribution is drawn.
    bk(store.path()).arg("report").assert().code(0);
    let charts: Vec<String> = std::fs::read_dir(store.path().join("reports/charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        charts.iter().any(|n| n.starts_with("latency-")),
        "no latency chart: {charts:?}"
    );
}

#[test]
fn plain_file_has_latencies_and_the_tools_token_totals() {
    let store = tempfile::tempdir().unwrap();
    analyze(store.path(), &fixture("vllm_serve_plain.json"))
        .assert()
        .code(0)
        .stdout(contains("Requests: 3/3"));
    let m = &runs(store.path())[0];
    let r = &m["results"];
    assert_eq!(m["status"], "completed");
    assert_eq!(r["success_count"], 3);
    // No per-request tokens without --save-detailed: vLLM's totals are used.
    assert_eq!(r["total_prompt_tokens"], 300);
    assert_eq!(r["total_completion_tokens"], 96);
    close(&r["output_tokens_per_sec"], 64.0);
    close(&r["total_time_seconds"], 1.5);
    // latencies 0.61, 0.58, 0.72 s; no TTFT in a plain file.
    let lat = &r["latency_ms"];
    close(&lat["e2e"]["p50"], 610.0);
    close(&lat["e2e"]["max"], 720.0);
    assert!(lat.get("ttft").is_none());
    close(&r["imported"]["mean_ttft_ms"], 95.2);
    assert_eq!(m["source"]["load"]["request_rate"], 20.0);
    assert!(m["source"]["load"].get("max_concurrency").is_none());
    verify_clean(store.path());
}

#[test]
fn appended_file_gives_two_runs_and_one_raw_copy() {
    let store = tempfile::tempdir().unwrap();
    let input = fixture("vllm_serve_append.jsonl");
    analyze(store.path(), &input)
        .assert()
        .code(0)
        .stdout(contains("Imported 2 runs from"));
    let all = runs(store.path());
    assert_eq!(all.len(), 2);
    assert_ne!(all[0]["test_id"], all[1]["test_id"]);
    let mut by_line: Vec<&Value> = all.iter().collect();
    by_line.sort_by_key(|m| m["source"]["locator"].as_str().unwrap().to_string());
    assert_eq!(by_line[0]["source"]["locator"], "line 1");
    assert_eq!(by_line[1]["source"]["locator"], "line 2");
    assert_eq!(by_line[0]["source"]["load"]["max_concurrency"], 1);
    assert_eq!(by_line[1]["source"]["load"]["max_concurrency"], 4);
    assert_eq!(by_line[0]["results"]["success_count"], 2);
    assert_eq!(by_line[1]["results"]["success_count"], 4);
    close(&by_line[1]["results"]["total_time_seconds"], 0.95);
    assert_eq!(by_line[1]["source"]["started"], "20260302-090100");
    // One copy of the file in raw/, shared by both runs.
    assert_eq!(all[0]["test"]["output_file"], all[1]["test"]["output_file"]);
    assert_eq!(raw_files(store.path()).len(), 1);
    let raw = store
        .path()
        .join(all[0]["test"]["output_file"].as_str().unwrap());
    assert_eq!(std::fs::read(raw).unwrap(), std::fs::read(&input).unwrap());
    verify_clean(store.path());
    // Imported again: two more runs with fresh ids, a second copy, still clean.
    analyze(store.path(), &input).assert().code(0);
    let all = runs(store.path());
    let mut ids: Vec<&str> = all.iter().map(|m| m["test_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(raw_files(store.path()).len(), 2);
    verify_clean(store.path());
}

#[test]
fn a_cut_last_line_is_reported_and_strict_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cut.jsonl");
    let mut text = std::fs::read_to_string(fixture("vllm_serve_append.jsonl")).unwrap();
    let first = text.split('\n').next().unwrap().to_string();
    text.push('\n');
    text.push_str(&first[..first.len() / 2]);
    std::fs::write(&input, text).unwrap();
    let store = tempfile::tempdir().unwrap();
    analyze(store.path(), &input)
        .arg("--strict")
        .assert()
        .code(2)
        .stderr(contains("cut.jsonl:3"))
        .stderr(contains("--strict"));
    assert!(runs(store.path()).is_empty());
    assert!(raw_files(store.path()).is_empty());
    analyze(store.path(), &input)
        .assert()
        .code(0)
        .stderr(contains("cut.jsonl:3: truncated JSON"))
        .stdout(contains("Imported 2 runs"));
    let all = runs(store.path());
    assert_eq!(all[0]["source"]["unparseable_lines"], 1);
    verify_clean(store.path());
}

#[test]
fn forced_format_and_files_no_document_format_claims() {
    let store = tempfile::tempdir().unwrap();
    analyze(store.path(), &fixture("vllm_serve_plain.json"))
        .args(["--format", "vllm-bench-serve"])
        .assert()
        .code(0)
        .stdout(contains("Imported 1 run"));
    let fresh = tempfile::tempdir().unwrap();
    let store = fresh.path().join("store");
    // Not a vLLM result: today's "unknown format" error, exit 2, nothing written.
    analyze(&store, &fixture("not_a_run.json"))
        .assert()
        .code(2)
        .stderr(contains("is in no format benchkeep reads"))
        .stderr(contains("--format"));
    analyze(&store, &fixture("not_a_run.json"))
        .args(["--format", "vllm-bench-serve"])
        .assert()
        .code(2)
        .stderr(contains("is not a vllm-bench-serve file"));
    // A line format forced on a document: read as lines, as before.
    analyze(&store, &fixture("vllm_serve_plain.json"))
        .args(["--format", "ollama", "--total-time", "1"])
        .assert()
        .stdout(contains("Format: ollama"));
    bk(&store)
        .args(["analyze", "--platform", "p", "--model", "m", "--input"])
        .arg(fixture("vllm_serve_plain.json"))
        .args(["--format", "nope"])
        .assert()
        .code(2)
        .stderr(contains("vllm-bench-serve"));
}

#[test]
fn every_request_failed_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("all_failed.json");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("vllm_serve_detailed.json")).unwrap())
            .unwrap();
    v["errors"] = serde_json::json!(["Bad Request", "Bad Request", "Bad Request", "Bad Request"]);
    v["completed"] = 0.into();
    v["failed"] = 4.into();
    std::fs::write(&input, serde_json::to_vec(&v).unwrap()).unwrap();
    let store = tempfile::tempdir().unwrap();
    analyze(store.path(), &input)
        .assert()
        .code(1)
        .stderr(contains("every request of every run"));
    let m = &runs(store.path())[0];
    assert_eq!(m["status"], "failed");
    assert_eq!(m["results"]["errors_by_kind"]["http_status"], 4);
}
