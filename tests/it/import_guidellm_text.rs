//! GuideLLM's `benchmarks.yaml` and `benchmarks.csv` (written by GuideLLM 0.8.1 with the
//! `benchmarks.json` beside them): the YAML through the JSON's reader, the CSV into
//! summary-only runs, and one report imported once when a folder holds all three.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::import::{f, import, import_fixture, runs_of};

/// `names` of the real GuideLLM fixture, copied alone into a fresh folder.
fn only(tmp: &Path, names: &[&str]) -> PathBuf {
    let dir = tmp.join(names.join("+"));
    std::fs::create_dir_all(&dir).unwrap();
    for n in names {
        std::fs::copy(import_fixture(&format!("guidellm/{n}")), dir.join(n)).unwrap();
    }
    dir
}

fn imported(path: &Path) -> (PathBuf, String) {
    let store = path.parent().unwrap().join(format!(
        "store-{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    let (code, stdout, stderr) = import(&store, &[], &[path.to_path_buf()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    (store, stdout)
}

#[test]
fn the_yaml_gives_the_same_runs_as_the_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (js, _) = imported(&only(tmp.path(), &["benchmarks.json"]));
    let (ys, out) = imported(&only(tmp.path(), &["benchmarks.yaml"]));
    assert!(
        out.contains("benchmarks.yaml (guidellm 0.8.1): 3 runs"),
        "{out}"
    );
    let (a, b) = (runs_of(&js, "guidellm"), runs_of(&ys, "guidellm"));
    assert_eq!(a.len(), 3);
    assert_eq!(a.len(), b.len());
    for (j, y) in a.iter().zip(&b) {
        for key in ["success_count", "failure_count", "total_completion_tokens"] {
            assert_eq!(j["results"][key], y["results"][key], "{key}");
        }
        for ptr in [
            "/results/latency_ms/e2e/mean",
            "/results/latency_ms/ttft/p99",
            "/results/latency_ms/tpot/p50",
        ] {
            assert!((f(j, ptr) - f(y, ptr)).abs() < 1e-9, "{ptr}");
        }
        assert_eq!(j["sweep"]["role"], y["sweep"]["role"]);
        assert_eq!(j["test"]["input_sha256"], y["test"]["input_sha256"]);
        assert_eq!(y["source"]["notes"]["report_file_format"], "yaml");
    }
}

#[test]
fn the_csv_alone_gives_summary_only_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (cs, out) = imported(&only(tmp.path(), &["benchmarks.csv"]));
    assert!(
        out.contains("benchmarks.csv (guidellm 0.8.1): 3 runs"),
        "{out}"
    );
    let file: Value =
        serde_json::from_slice(&std::fs::read(import_fixture("guidellm/benchmarks.json")).unwrap())
            .unwrap();
    let runs = runs_of(&cs, "guidellm");
    assert_eq!(runs.len(), 3);
    for (m, b) in runs.iter().zip(file["benchmarks"].as_array().unwrap()) {
        let totals = &b["metrics"]["request_totals"];
        assert_eq!(m["results"]["success_count"], totals["successful"]);
        assert_eq!(m["results"]["failure_count"], totals["errored"]);
        // Stored to 1 ms.
        assert!((f(m, "/results/total_time_seconds") - f(b, "/duration")).abs() <= 1e-3);
        let out_mean = f(b, "/metrics/output_token_count/successful/mean");
        let ok = f(b, "/metrics/request_totals/successful");
        assert_eq!(
            m["results"]["total_completion_tokens"].as_f64(),
            Some((out_mean * ok).round())
        );
        // No per-request data and no labelled percentiles: no latency summary made up.
        assert!(
            m["results"]
                .get("latency_ms")
                .is_none_or(|l| l.get("e2e").is_none())
        );
        let mean = f(m, "/results/imported/request_latency/mean");
        assert!((mean - f(b, "/metrics/request_latency/successful/mean")).abs() < 1e-9);
        assert_eq!(m["source"]["notes"]["report_file_format"], "csv");
        assert_eq!(m["model"], "tiny");
        assert_eq!(m["test"]["workload"]["input_tokens"], 64);
    }
    let roles: Vec<&str> = runs
        .iter()
        .map(|m| m["sweep"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["synchronous", "throughput", "point"]);
    assert_eq!(runs[1]["source"]["load"]["max_concurrency"], 8);
    assert_eq!(runs[2]["source"]["load"]["request_rate"], 15.56);
}

#[test]
fn one_report_in_three_files_is_imported_once() {
    let (code, stdout, stderr) = {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        import(&store, &[], &[import_fixture("guidellm")])
    };
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Imported 3 runs from 1 file; 2 skipped"),
        "{stdout}"
    );
    for skipped in ["benchmarks.csv", "benchmarks.yaml"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("skipped") && l.contains(skipped))
            .unwrap_or_else(|| panic!("{skipped} not skipped: {stdout}"));
        assert!(
            line.contains("same report as") && line.contains("benchmarks.json"),
            "{line}"
        );
    }
    // Without the JSON, the YAML is imported and the CSV is the same report as it.
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = imported(&only(tmp.path(), &["benchmarks.csv", "benchmarks.yaml"]));
    assert!(
        out.contains("Imported 3 runs from 1 file; 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("same report as") && out.contains("benchmarks.yaml"),
        "{out}"
    );
}

#[test]
fn a_yaml_api_key_is_redacted_in_the_stored_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = only(tmp.path(), &["benchmarks.yaml"]);
    let path = dir.join("benchmarks.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("api_key: '**********'"));
    let text = text.replace(
        "api_key: '**********'",
        "api_key: sk-yamlSECRETyamlSECRET42",
    );
    std::fs::write(&path, text).unwrap();
    let (store, out) = imported(&dir);
    assert!(out.contains("secrets removed"), "{out}");
    let m = &runs_of(&store, "guidellm")[0];
    let raw =
        std::fs::read_to_string(store.join(m["test"]["output_file"].as_str().unwrap())).unwrap();
    assert!(!raw.contains("yamlSECRET"));
    // Still a GuideLLM YAML report.
    assert!(raw.starts_with("benchmarks:"), "{}", &raw[..40]);
}
