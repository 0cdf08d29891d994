//! The read-only commands on an analyzed store: `compare` in each format, `show`, `query`
//! (a run in progress, a figure some runs lack) and `export`.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::cmd::{analyze, analyze_cmd, populated_store};
use crate::support::store::{metadata_files, read_json, today};
use crate::support::{bk, fixture};

#[test]
fn compare_shows_every_run_in_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("empty");
    bk(&store)
        .arg("compare")
        .assert()
        .success()
        .stdout(predicate::str::contains("No benchmarks found"))
        .stdout(predicate::str::contains("benchkeep analyze"));
    assert!(
        !store.exists(),
        "compare on an empty store must not create it"
    );

    let store = populated_store(dir.path());
    fs::remove_file(store.join("reports/COMPARISON.md")).unwrap();
    fs::remove_file(store.join("analysis/summary.json")).unwrap();
    bk(&store)
        .arg("compare")
        .assert()
        .success()
        .stdout(predicate::str::contains("Throughput (tok/s)"))
        .stdout(predicate::str::contains("vllm-offline"))
        .stdout(predicate::str::contains("gemma3:12b"));
    // derived files are regenerated from metadata (P5)
    assert!(store.join("reports/COMPARISON.md").is_file());
    assert_eq!(
        read_json(&store.join("analysis/summary.json"))["run_count"],
        3
    );

    let md = bk(&store)
        .args(["compare", "--format", "markdown"])
        .output()
        .unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.starts_with("# Benchmark Comparison\n\n| Platform | Model |"),
        "{md}"
    );
    assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 2 + 3);

    let csv = bk(&store)
        .args(["compare", "--format", "csv", "--platform", "ollama"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",ollama,")));

    let json = bk(&store)
        .args(["compare", "--format", "json", "--label", "gpu=rtx4080"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["run_count"], 1);
    assert_eq!(json["runs"][0]["labels"]["gpu"], "rtx4080");

    bk(&store)
        .args(["compare", "--model", "gemma3-12b", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::function(|s: &str| s.lines().count() == 3));
    bk(&store)
        .args(["compare", "--since", "2999-01-01"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No runs match"));
    bk(&store)
        .args(["compare", "--since", "yesterday"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--since"));
}

#[test]
fn show_and_query_answer_instantly() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let id = format!("vllm-offline-gemma3-4b-5-{}", today());
    bk(&store)
        .args(["show", "vllm-off"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id.as_str()))
        .stdout(predicate::str::contains("Errors by kind"))
        .stdout(predicate::str::contains("max_model_len"));
    bk(&store)
        .args(["show", "ollama"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("matches 2 runs"));
    bk(&store).args(["show", "nope"]).assert().code(3);
    let json = bk(&store).args(["show", "--json", &id]).output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&json.stdout).unwrap()["test_id"],
        id.as_str()
    );

    bk(&store)
        .args([
            "query",
            "--platform",
            "vllm-offline",
            "--model",
            "gemma3-4b",
            "--metric",
            "throughput_tokens_per_sec",
        ])
        .assert()
        .success()
        .stdout("120.0\n");
    bk(&store)
        .args([
            "query",
            "--platform",
            "vllm-offline",
            "--model",
            "gemma3-4b",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("throughput_tokens_per_sec"))
        .stdout(predicate::str::contains("120"));
    // latest of two ollama runs is the one with --total-time 2
    bk(&store)
        .args([
            "query",
            "--platform",
            "ollama",
            "--metric",
            "total_time_seconds",
        ])
        .assert()
        .success()
        .stdout("2.0\n");
    bk(&store)
        .args([
            "query",
            "--platform",
            "ollama",
            "--metric",
            "total_time_seconds",
            "--all",
        ])
        .assert()
        .success()
        .stdout(predicate::function(|s: &str| s.lines().count() == 2));
    let out = bk(&store)
        .args(["query", "--platform", "ollama", "--json", "--all"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["success_count"], 3);
    bk(&store)
        .args(["query", "--platform", "sglang"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("platforms: ollama, vllm-offline"));
    bk(&store)
        .args([
            "query",
            "--platform",
            "ollama",
            "--metric",
            "no_such_metric",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("throughput_tokens_per_sec"));
    bk(&store)
        .args([
            "query",
            "--model",
            "gemma3-4b",
            "--metric",
            "config.max_model_len",
        ])
        .assert()
        .success()
        .stdout("4096\n");
}

#[test]
fn export_to_a_bare_file_name_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    bk(&store)
        .current_dir(dir.path())
        .args(["export", "--format", "csv", "--out", "runs.csv"])
        .assert()
        .success();
    let csv = fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

#[test]
fn query_does_not_answer_from_a_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    analyze(
        &store,
        "vllm-serve",
        "m",
        &fixture("foundation/ollama_chat.jsonl"),
    )
    .success();
    let path = metadata_files(&store).pop().unwrap();
    let mut meta = read_json(&path);
    meta["status"] = "running".into();
    meta["pid"] = std::process::id().into();
    fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
    bk(&store)
        .args([
            "query",
            "--platform",
            "vllm-serve",
            "--metric",
            "throughput_tokens_per_sec",
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("in progress"));
}

#[test]
fn query_a_figure_some_runs_lack() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let log = dir.path().join("run.jsonl");
    fs::write(
        &log,
        "{\"seq\":1,\"ok\":true,\"prompt_tokens\":4,\"completion_tokens\":8,\"scheduled_s\":0.0,\"end_s\":0.5,\"ttft_ms\":10.0,\"e2e_ms\":500.0}\n",
    )
    .unwrap();
    analyze_cmd(&store, "vllm", "m")
        .arg("--input")
        .arg(&log)
        .assert()
        .success();
    analyze(
        &store,
        "vllm",
        "m",
        &fixture("foundation/ollama_chat.jsonl"),
    )
    .success();
    bk(&store)
        .args([
            "query",
            "--platform",
            "vllm",
            "--metric",
            "ttft.p50",
            "--all",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\t10.0\n"))
        .stdout(predicate::str::contains("\tnull\n"));
    bk(&store)
        .args(["query", "--platform", "vllm", "--metric", "ttft.p50"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("has no ttft.p50"));
    bk(&store)
        .args(["query", "--platform", "vllm", "--metric", "nonsense"])
        .assert()
        .code(2);
}

#[test]
fn compare_prints_the_table_even_when_the_store_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // The lock file cannot be opened (a directory stands in its place), as on a
    // read-only archive where nothing can be written.
    let _ = fs::remove_file(store.join(".lock"));
    fs::create_dir(store.join(".lock")).unwrap();
    bk(&store)
        .arg("compare")
        .assert()
        .success()
        .stdout(predicate::str::contains("vllm-offline"))
        .stderr(predicate::str::contains("could not be rebuilt"));
}
