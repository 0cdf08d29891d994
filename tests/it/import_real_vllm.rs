//! `benchkeep import` on files written by vLLM 0.32.0 itself (the CPU peer, tiny
//! random-weight model; tests/fixtures/import/README.md has the commands): every figure
//! checked against the file it came from.

use serde_json::Value;

use crate::support::import::{f, import, import_fixture, runs_of};

fn read(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(import_fixture(rel)).unwrap();
    if let Ok(v) = serde_json::from_str(&text) {
        return vec![v];
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn imported(rel: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, stdout, stderr) = import(&store, &[], &[import_fixture(rel)]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    (dir, store, stdout)
}

fn mean(xs: &[Value]) -> f64 {
    xs.iter().map(|x| x.as_f64().unwrap()).sum::<f64>() / xs.len() as f64
}

/// A run against the file: counts, tokens, and e2e recomputed from `latencies` (s -> ms).
fn check(m: &Value, file: &Value) {
    assert_eq!(m["results"]["success_count"], file["completed"]);
    assert_eq!(m["results"]["failure_count"], file["failed"]);
    assert_eq!(
        m["results"]["total_completion_tokens"],
        file["total_output_tokens"]
    );
    let e2e = mean(file["latencies"].as_array().unwrap()) * 1000.0;
    let got = f(m, "/results/latency_ms/e2e/mean");
    assert!((got - e2e).abs() <= 1e-3, "{got} vs {e2e}"); // stored to 1 µs
    assert_eq!(m["platform"], "vllm");
    assert_eq!(m["model"], file["model_id"]);
    assert_eq!(
        f(m, "/results/imported/mean_ttft_ms"),
        f(file, "/mean_ttft_ms")
    );
}

#[test]
fn save_result_without_detail_has_latencies_but_no_ttfts() {
    let (_d, s, out) = imported("vllm_real/serve.json");
    assert!(out.contains("1 run"), "{out}");
    let file = &read("vllm_real/serve.json")[0];
    let m = &runs_of(&s, "vllm-bench-serve")[0];
    check(m, file);
    // vLLM 0.32 writes `latencies` even without --save-detailed, but no `ttfts`: no TTFT
    // summary is made up from the tool's mean/median/p99.
    assert!(file.get("ttfts").is_none());
    assert!(m["results"]["latency_ms"].get("ttft").is_none());
}

#[test]
fn save_detailed_recomputes_ttft_from_its_records() {
    let (_d, s, _) = imported("vllm_real/serve_detailed.json");
    let file = &read("vllm_real/serve_detailed.json")[0];
    let m = &runs_of(&s, "vllm-bench-serve")[0];
    check(m, file);
    let ttft = mean(file["ttfts"].as_array().unwrap()) * 1000.0;
    assert!((f(m, "/results/latency_ms/ttft/mean") - ttft).abs() <= 1e-3);
    assert_eq!(
        m["results"]["latency_ms"]["ttft"]["count"],
        file["completed"]
    );
}

#[test]
fn append_result_two_runs_in_one_file() {
    let (_d, s, out) = imported("vllm_real/append.jsonl");
    assert!(out.contains("(vllm bench serve): 2 runs"), "{out}");
    let lines = read("vllm_real/append.jsonl");
    let runs = runs_of(&s, "vllm-bench-serve");
    assert_eq!(runs.len(), 2);
    for (m, file) in runs.iter().zip(&lines) {
        check(m, file);
    }
    assert_eq!(runs[0]["source"]["load"]["request_rate"], "inf");
    assert_eq!(runs[1]["source"]["load"]["request_rate"], 4.0);
    // Only the second was --save-detailed.
    assert!(runs[0]["results"]["latency_ms"].get("ttft").is_none());
    assert!(runs[1]["results"]["latency_ms"].get("ttft").is_some());
}

#[test]
fn sweep_serve_folder_one_sweep_over_concurrency() {
    let (_d, s, out) = imported("vllm_real/sweep");
    assert!(
        out.contains("Imported 2 runs from 2 files; 2 skipped"),
        "{out}"
    );
    let runs = runs_of(&s, "vllm-bench-serve");
    let mut points: Vec<f64> = runs.iter().map(|m| f(m, "/sweep/value")).collect();
    points.sort_by(f64::total_cmp);
    assert_eq!(points, [1.0, 2.0]);
    assert!(runs.iter().all(|m| m["sweep"]["axis"] == "concurrency"));
    assert!(
        runs.iter()
            .all(|m| m["sweep"]["id"] == runs[0]["sweep"]["id"])
    );
    for m in &runs {
        let c = m["source"]["load"]["max_concurrency"].as_u64().unwrap();
        let rel = format!("vllm_real/sweep/20261202_145452/BENCH--max_concurrency={c}/run=0.json");
        check(m, &read(&rel)[0]);
    }
}

#[test]
fn offline_throughput_of_the_engine() {
    let (_d, s, _) = imported("vllm_real/throughput.json");
    let file = &read("vllm_real/throughput.json")[0];
    let m = &runs_of(&s, "vllm-bench-throughput")[0];
    assert_eq!(m["results"]["success_count"], file["num_requests"]);
    // Stored to 0.01 tok/s and 1 ms.
    let tps = f(m, "/results/throughput_tokens_per_sec");
    assert!((tps - f(file, "/tokens_per_second")).abs() <= 0.01, "{tps}");
    let t = f(m, "/results/total_time_seconds");
    assert!((t - f(file, "/elapsed_time")).abs() <= 1e-3, "{t}");
    // prompt + output tokens/s: never benchkeep's output tok/s.
    assert_eq!(f(m, "/results/output_tokens_per_sec"), 0.0);
    assert_eq!(m["model"], file["model_id"]);
}
