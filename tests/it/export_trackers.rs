//! `export --format bmf` and `--format github-action-benchmark`: the published shapes,
//! one value per benchmark from the latest finished run, and the flag rules.

use serde_json::{Value, json};

use crate::support::api::store::Store;
use crate::support::bk;
use crate::support::report::{Spec, publish};

fn schema(name: &str) -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(crate::support::fixture(&format!("trackers/{name}"))).unwrap();
    jsonschema::draft7::options()
        .build(&serde_json::from_str::<Value>(&text).unwrap())
        .unwrap()
}

fn store_with_runs(dir: &std::path::Path) {
    let store = Store::new(dir.to_path_buf());
    store.ensure_layout().unwrap();
    let mut old = Spec::new("vllm", "llama-8b", "2026-01-01T10:00:00Z", 900.0);
    old.ttft_p50 = Some(50.0);
    publish(&store, &old);
    let mut new = Spec::new("vllm", "llama-8b", "2026-01-02T10:00:00Z", 1000.0);
    new.ttft_p50 = Some(40.0);
    publish(&store, &new);
    let mut ollama = Spec::new("ollama", "llama-8b", "2026-01-02T11:00:00Z", 300.0);
    ollama.ttft_p50 = Some(120.0);
    publish(&store, &ollama);
    let mut failed = Spec::new("ollama", "llama-8b", "2026-01-03T11:00:00Z", 0.0);
    failed.success = 0;
    failed.failure = 10;
    publish(&store, &failed);
}

fn export(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    bk(dir).arg("export").args(args).output().unwrap()
}

#[test]
fn bmf_matches_benchers_schema_with_the_latest_finished_run_per_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    store_with_runs(dir.path());
    let out = export(dir.path(), &["--format", "bmf"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = schema("bmf.schema.json");
    assert!(
        v.is_valid(&doc),
        "{:?}",
        v.iter_errors(&doc)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let names: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 2, "one benchmark per platform: {names:?}");
    let vllm = names
        .iter()
        .find(|n| n.starts_with("vllm/llama-8b/"))
        .expect("vllm benchmark");
    assert_eq!(
        doc[vllm.as_str()]["output-tokens-per-sec"],
        json!({"value": 1000.0})
    );
    assert_eq!(doc[vllm.as_str()]["ttft-p50-ms"]["value"], json!(40.0));
    let ollama = names.iter().find(|n| n.starts_with("ollama/")).unwrap();
    // The failed later run never speaks for the benchmark.
    assert_eq!(
        doc[ollama.as_str()]["output-tokens-per-sec"]["value"],
        json!(300.0)
    );
    // Measure slugs stay within Bencher's 64 characters.
    for b in doc.as_object().unwrap().values() {
        assert!(b.as_object().unwrap().keys().all(|k| k.len() <= 64));
    }
}

#[test]
fn github_action_benchmark_files_match_the_custom_tool_shape_one_direction_each() {
    let dir = tempfile::tempdir().unwrap();
    store_with_runs(dir.path());
    let v = schema("github-action-benchmark.schema.json");
    let big = export(
        dir.path(),
        &[
            "--format",
            "github-action-benchmark",
            "--tool",
            "customBiggerIsBetter",
        ],
    );
    assert!(
        big.status.success(),
        "{}",
        String::from_utf8_lossy(&big.stderr)
    );
    let big: Value = serde_json::from_slice(&big.stdout).unwrap();
    assert!(v.is_valid(&big), "{big}");
    let small = export(
        dir.path(),
        &[
            "--format",
            "github-action-benchmark",
            "--tool",
            "customSmallerIsBetter",
        ],
    );
    let small: Value = serde_json::from_slice(&small.stdout).unwrap();
    assert!(v.is_valid(&small), "{small}");
    let find = |doc: &Value, suffix: &str, platform: &str| {
        doc.as_array()
            .unwrap()
            .iter()
            .find(|i| {
                let n = i["name"].as_str().unwrap();
                n.starts_with(platform) && n.ends_with(suffix)
            })
            .cloned()
    };
    let tps = find(&big, "Output tok/s", "vllm/").expect("throughput is bigger-is-better");
    assert_eq!(tps["value"], json!(1000.0));
    assert_eq!(tps["unit"], "tokens/s");
    assert!(find(&small, "Output tok/s", "vllm/").is_none());
    let ttft = find(&small, "TTFT p50 (ms)", "vllm/").expect("latency is smaller-is-better");
    assert_eq!(ttft["value"], json!(40.0));
    assert_eq!(ttft["unit"], "ms");
    assert!(find(&big, "TTFT p50 (ms)", "vllm/").is_none());
}

#[test]
fn the_tool_flag_is_required_for_gab_and_refused_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    store_with_runs(dir.path());
    let out = export(dir.path(), &["--format", "github-action-benchmark"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tool customBiggerIsBetter"));
    let out = export(
        dir.path(),
        &["--format", "bmf", "--tool", "customBiggerIsBetter"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--tool is for --format github-action-benchmark")
    );
}
