//! `benchkeep import`, one test per format: counts, latencies, units and definitions of the
//! stored runs checked against the values in the fixture files (tests/fixtures/import/,
//! README there says which were made by the real tools).

use serde_json::Value;

use crate::support::import::{f, import, import_fixture, runs_of};

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    (dir, store)
}

fn ok(store: &std::path::Path, rel: &str) -> String {
    let (code, stdout, stderr) = import(store, &[], &[import_fixture(rel)]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    stdout
}

#[test]
fn vllm_serve_append_with_a_cut_last_line() {
    let (_d, s) = store();
    let out = ok(&s, "vllm_serve/append.jsonl");
    assert!(out.contains("(vllm bench serve): 2 runs"), "{out}");
    let runs = runs_of(&s, "vllm-bench-serve");
    assert_eq!(runs.len(), 2);
    // Line 1 is --save-detailed: recomputed from its 4 records (ttft 0.1 s, e2e 0.41 s).
    let a = &runs[0];
    assert_eq!(a["results"]["success_count"], 4);
    assert_eq!(f(a, "/results/latency_ms/ttft/p50"), 100.0);
    assert_eq!(f(a, "/results/latency_ms/e2e/p50"), 410.0);
    assert_eq!(f(a, "/results/imported/mean_tpot_ms"), 10.0);
    assert!(
        a["source"]["recomputed"]
            .as_str()
            .unwrap()
            .contains("4 per-request")
    );
    assert_eq!(a["source"]["unparseable_lines"], 1);
    // Line 2 has no per-request arrays: counts and tokens from the tool's totals.
    let b = &runs[1];
    assert_eq!(b["results"]["total_completion_tokens"], 128);
    assert!(b["results"].get("latency_ms").is_none());
    assert_eq!(b["source"]["load"]["request_rate"], 4.0);
}

#[test]
fn vllm_throughput_keeps_its_total_token_definition() {
    let (_d, s) = store();
    ok(&s, "vllm_throughput/throughput.json");
    let m = &runs_of(&s, "vllm-bench-throughput")[0];
    assert_eq!(m["results"]["success_count"], 1000);
    assert_eq!(f(m, "/results/total_time_seconds"), 12.5);
    // prompt + output tok/s: benchkeep's throughput_tokens_per_sec, never output tok/s.
    assert_eq!(f(m, "/results/throughput_tokens_per_sec"), 102400.0);
    assert_eq!(f(m, "/results/output_tokens_per_sec"), 0.0);
    let def = m["source"]["definitions"]["tokens_per_second"]
        .as_str()
        .unwrap();
    assert!(def.contains("prompt + output"), "{def}");
    assert_eq!(m["platform"], "vllm");
}

#[test]
fn vllm_latency_iterations_in_seconds() {
    let (_d, s) = store();
    ok(&s, "vllm_latency/latency.json");
    let m = &runs_of(&s, "vllm-bench-latency")[0];
    assert_eq!(m["results"]["success_count"], 3);
    assert_eq!(f(m, "/results/latency_ms/e2e/max"), 600.0);
    assert_eq!(f(m, "/results/latency_ms/e2e/mean"), 500.0);
    assert_eq!(f(m, "/results/total_time_seconds"), 1.5);
    assert_eq!(m["source"]["notes"]["requests_are"], "batch iterations");
}

#[test]
fn vllm_sweep_folder_with_a_run_missing() {
    let (_d, s) = store();
    let out = ok(&s, "vllm_sweep");
    // run=1.json of max_concurrency=4 is missing: it comes from that summary.json.
    assert!(
        out.contains("Imported 4 runs from 4 files; 1 skipped"),
        "{out}"
    );
    let runs = runs_of(&s, "vllm-bench-serve");
    let ids: std::collections::BTreeSet<&str> = runs
        .iter()
        .map(|m| m["sweep"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one sweep: {ids:?}");
    let mut points: Vec<(f64, u64)> = runs
        .iter()
        .map(|m| (f(m, "/sweep/value"), m["sweep"]["index"].as_u64().unwrap()))
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(points, [(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)]);
    assert!(runs.iter().all(|m| m["sweep"]["axis"] == "concurrency"));
}

#[test]
fn inference_benchmarker_marks_the_warmup() {
    let (_d, s) = store();
    ok(&s, "inference_benchmarker");
    let runs = runs_of(&s, "inference-benchmarker");
    assert_eq!(runs.len(), 4);
    let warm = runs
        .iter()
        .find(|m| m["source"]["notes"]["step"] == "warmup")
        .unwrap();
    assert_eq!(warm["source"]["warmup"], true);
    assert!(warm.get("sweep").is_none());
    let rates: Vec<(f64, &str)> = runs
        .iter()
        .filter(|m| m.get("sweep").is_some())
        .map(|m| (f(m, "/sweep/value"), m["sweep"]["role"].as_str().unwrap()))
        .collect();
    assert_eq!(rates, [(8.0, "throughput"), (2.0, "point"), (5.0, "point")]);
    let t = runs
        .iter()
        .find(|m| m["source"]["notes"]["step"] == "throughput")
        .unwrap();
    assert_eq!(t["results"]["success_count"], 80);
    assert_eq!(t["results"]["total_completion_tokens"], 80 * 32);
    assert_eq!(t["results"]["total_prompt_tokens"], 80 * 64);
    assert_eq!(f(t, "/results/imported/time_to_first_token_ms/p50"), 50.0);
    // No max or count in the file: benchkeep's latency summaries are not made up.
    assert!(t["results"].get("latency_ms").is_none());
    assert_eq!(t["test"]["workload"]["input_tokens"], 64);
}

#[test]
fn llmperf_recomputes_from_responses_and_keeps_its_itl_apart() {
    let (_d, s) = store();
    let out = ok(&s, "llmperf");
    assert!(
        out.contains("skipped") && out.contains("individual_responses"),
        "{out}"
    );
    let m = &runs_of(&s, "llmperf")[0];
    assert_eq!(
        (
            m["results"]["success_count"].as_u64(),
            m["results"]["failure_count"].as_u64()
        ),
        (Some(4), Some(1))
    );
    assert_eq!(m["status"], "partial");
    // ttft_s 0.10..0.13 s -> ms; e2e 0.40..0.43 s.
    assert_eq!(f(m, "/results/latency_ms/ttft/max"), 130.0);
    assert_eq!(f(m, "/results/latency_ms/e2e/mean"), 415.0);
    assert_eq!(f(m, "/results/total_time_seconds"), 2.0); // 5 / (150 per min)
    let def = m["source"]["definitions"]["results_inter_token_latency_s"]
        .as_str()
        .unwrap();
    assert!(def.contains("including TTFT"), "{def}");
    // Its ITL (which includes TTFT) is never benchkeep's itl.
    assert!(m["results"]["latency_ms"].get("itl").is_none());
    assert_eq!(
        f(m, "/results/imported/results_inter_token_latency_s_mean"),
        0.0125
    );
}

#[test]
fn genai_perf_units_from_names_and_raw_beside() {
    let (_d, s) = store();
    ok(&s, "genai_perf");
    assert!(
        runs_of(&s, "genai-perf-raw").is_empty(),
        "the raw file is read with its summary"
    );
    let m = &runs_of(&s, "genai-perf")[0];
    assert_eq!(m["results"]["success_count"], 4);
    // Raw ns timestamps: first response 100 ms, last 100 + 31 * 10 ms after the request.
    assert_eq!(f(m, "/results/latency_ms/ttft/p50"), 100.0);
    assert_eq!(f(m, "/results/latency_ms/e2e/max"), 410.0);
    assert_eq!(f(m, "/results/total_time_seconds"), 2.0);
    let osl = &m["results"]["imported"]["output_sequence_length"];
    assert_eq!(osl["unit"], "tokens");
    assert_eq!(osl["unit_as_written"], "requests/sec");
}

#[test]
fn guidellm_empty_benchmarks_is_skipped_not_failed() {
    let (_d, s) = store();
    let out = ok(&s, "guidellm_empty");
    assert!(
        out.contains("holds no benchmarks") && out.contains("0 runs"),
        "{out}"
    );
}

/// GuideLLM 0.8.1's own `benchmarks.json` (a sweep run against `benchkeep simulate`).
#[test]
fn guidellm_sweep_from_the_real_tool() {
    let (_d, s) = store();
    ok(&s, "guidellm/benchmarks.json");
    let file: Value =
        serde_json::from_slice(&std::fs::read(import_fixture("guidellm/benchmarks.json")).unwrap())
            .unwrap();
    let benchmarks = file["benchmarks"].as_array().unwrap();
    let runs = runs_of(&s, "guidellm");
    assert_eq!(runs.len(), benchmarks.len());
    assert_eq!(
        runs[0]["source"]["tool_version"],
        file["metadata"]["guidellm_version"]
    );
    for (m, b) in runs.iter().zip(benchmarks) {
        let ok_n = b["metrics"]["request_totals"]["successful"]
            .as_u64()
            .unwrap();
        assert_eq!(m["results"]["success_count"].as_u64(), Some(ok_n));
        // request_latency (s) -> ms, recomputed from the per-request samples.
        let mean_s = b["metrics"]["request_latency"]["successful"]["mean"]
            .as_f64()
            .unwrap();
        let mean_ms = f(m, "/results/latency_ms/e2e/mean");
        assert!(
            (mean_ms - mean_s * 1000.0).abs() < 0.01 * mean_ms,
            "{mean_ms} vs {mean_s} s"
        );
        let ttft = b["metrics"]["time_to_first_token_ms"]["successful"]["mean"]
            .as_f64()
            .unwrap();
        assert!(
            (f(m, "/results/latency_ms/ttft/mean") - ttft).abs() < 0.01,
            "ttft mean"
        );
        let max = b["metrics"]["time_to_first_token_ms"]["successful"]["max"]
            .as_f64()
            .unwrap();
        assert!(
            (f(m, "/results/latency_ms/ttft/max") - max).abs() < 0.01,
            "ttft max"
        );
        // GuideLLM's own TPOT (TTFT included) stays under its name, never benchkeep's tpot.
        let tpot = b["metrics"]["time_per_output_token_ms"]["successful"]["mean"]
            .as_f64()
            .unwrap();
        assert_eq!(
            f(m, "/results/imported/time_per_output_token_ms/mean"),
            tpot
        );
        let def = m["source"]["definitions"]["time_per_output_token_ms"]
            .as_str()
            .unwrap();
        assert!(def.contains("TTFT included"), "{def}");
        assert_eq!(m["sweep"]["axis"], "rate");
        assert_eq!(m["test"]["workload"]["input_tokens"], 64);
    }
    let roles: Vec<&str> = runs
        .iter()
        .map(|m| m["sweep"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(&roles[..2], ["synchronous", "throughput"]);
    let ids: std::collections::BTreeSet<&str> = runs
        .iter()
        .map(|m| m["sweep"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
}

/// AIPerf 0.13.0's own `profile_export_aiperf.json` and `profile_export.jsonl` (against
/// `benchkeep simulate`).
#[test]
fn aiperf_from_the_real_tool() {
    let (_d, s) = store();
    let out = ok(&s, "aiperf");
    assert!(out.contains("(aiperf 0.13.0): 1 run"), "{out}");
    assert!(
        out.contains("profile_export.jsonl: AIPerf per-request records, read with"),
        "{out}"
    );
    let file: Value = serde_json::from_slice(
        &std::fs::read(import_fixture("aiperf/profile_export_aiperf.json")).unwrap(),
    )
    .unwrap();
    let m = &runs_of(&s, "aiperf")[0];
    assert_eq!(
        m["results"]["success_count"].as_f64(),
        file["request_count"]["avg"].as_f64()
    );
    assert!(
        m["source"]["recomputed"]
            .as_str()
            .unwrap()
            .contains("per-request records")
    );
    // ms values from the records give the tool's own mean and max (units trusted).
    for (ours, theirs) in [("ttft", "time_to_first_token"), ("e2e", "request_latency")] {
        let mean = file[theirs]["avg"].as_f64().unwrap();
        assert!(
            (f(m, &format!("/results/latency_ms/{ours}/mean")) - mean).abs() < 0.01,
            "{ours}"
        );
        let max = file[theirs]["max"].as_f64().unwrap();
        assert!(
            (f(m, &format!("/results/latency_ms/{ours}/max")) - max).abs() < 0.01,
            "{ours}"
        );
    }
    assert_eq!(m["source"]["load"]["max_concurrency"], 2);
    assert_eq!(m["test"]["workload"]["input_tokens"], 64);
    // Server-counted output tokens (usage), not AIPerf's re-tokenised OSL.
    assert_eq!(
        m["results"]["total_completion_tokens"].as_u64(),
        Some(8 * 32)
    );
    assert!(
        m["source"]["definitions"]["output_sequence_length"]
            .as_str()
            .unwrap()
            .contains("AIPerf's tokenizer")
    );
}
