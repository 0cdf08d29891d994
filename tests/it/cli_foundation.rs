//! Binary-level tests of the foundation: analyze, compare, show, query, verify, the store.

use std::fs;
use std::path::PathBuf;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::cmd::{SEED_CONFIG, analyze, analyze_cmd, populated_store};
use crate::support::store::{metadata_files, read_json, today};
use crate::support::{bk, bk_no_store, bk_std, fixture};

#[test]
fn seed_step_3_command_line_works_and_saves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("benchmarks");
    let input = fixture("foundation/chat_ok_and_error.jsonl");
    analyze_cmd(&store, "vllm-offline", "gemma3-4b")
        .arg("--input")
        .arg(&input)
        .args([
            "--config",
            SEED_CONFIG,
            "--total-time",
            "2400",
            "--model-load-time",
            "25.8",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("Requests: 4/5"))
        .stdout(predicate::str::contains("Saved metadata:"))
        .stdout(predicate::str::contains("Platform: vllm-offline"));

    let id = format!("vllm-offline-gemma3-4b-5-{}", today());
    let meta = read_json(&store.join(format!("metadata/{id}.json")));
    assert_eq!(meta["test_id"], id.as_str());
    assert_eq!(meta["platform"], "vllm-offline");
    assert_eq!(meta["model"], "gemma3-4b");
    assert_eq!(meta["config"]["max_model_len"], 4096);
    assert_eq!(meta["test"]["num_requests"], 5);
    assert_eq!(meta["test"]["output_file"], format!("raw/{id}.jsonl"));
    assert_eq!(meta["results"]["success_count"], 4);
    assert_eq!(meta["results"]["failure_count"], 1);
    assert_eq!(meta["results"]["total_time_seconds"], 2400.0);
    assert_eq!(meta["results"]["model_load_time_seconds"], 25.8);
    // prompt 100+200+300+400, completion 4*50 over 2400 s
    assert_eq!(meta["results"]["total_prompt_tokens"], 1000);
    assert_eq!(meta["results"]["total_completion_tokens"], 200);
    assert_eq!(meta["results"]["throughput_tokens_per_sec"], 0.5);
    assert_eq!(meta["status"], "partial");
    assert_eq!(meta["schema_version"], 1);
    assert_eq!(meta["source"]["kind"], "analyze");
    assert_eq!(meta["source"]["format"], "openai");
    assert_eq!(meta["tool"]["name"], "benchkeep");
    let errors: u64 = meta["results"]["errors_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(errors, 1);

    // byte-exact copy, hashed
    let raw = store.join(format!("raw/{id}.jsonl"));
    assert_eq!(fs::read(&raw).unwrap(), fs::read(&input).unwrap());
    let sha = meta["test"]["raw_sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let digest = std::process::Command::new("sha256sum")
        .arg(&raw)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&digest.stdout).starts_with(sha));
    // without --requests, the prompts behind the results are unknown
    assert!(meta["test"].get("input_sha256").is_none());

    // derived files
    let summary = read_json(&store.join("analysis/summary.json"));
    assert_eq!(summary["run_count"], 1);
    let md = fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(
        md.contains("| Platform | Model | Requests | Success % | Throughput (tok/s)"),
        "{md}"
    );
    assert!(
        md.contains("| vllm-offline | gemma3-4b | 5 | 80.0% |"),
        "{md}"
    );
}

#[test]
fn same_day_runs_get_new_ids_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = fixture("foundation/chat_ok_and_error.jsonl");
    for _ in 0..3 {
        analyze(&store, "vllm-offline", "google/gemma-3-4b-it", &input).success();
    }
    let names: Vec<String> = metadata_files(&store)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let base = format!("vllm-offline-google-gemma-3-4b-it-5-{}", today());
    assert_eq!(
        names,
        vec![
            format!("{base}-2.json"),
            format!("{base}-3.json"),
            format!("{base}.json")
        ]
    );
    for suffix in ["", "-2", "-3"] {
        assert!(store.join(format!("raw/{base}{suffix}.jsonl")).is_file());
    }
}

#[test]
fn ollama_responses_count_as_successes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    analyze(
        &store,
        "ollama",
        "gemma3:12b",
        &fixture("foundation/ollama_chat.jsonl"),
    )
    .success()
    .stdout(predicate::str::contains("Requests: 3/3"));
    let meta = read_json(&metadata_files(&store)[0]);
    assert_eq!(meta["test_id"], format!("ollama-gemma3-12b-3-{}", today()));
    assert_eq!(meta["results"]["success_count"], 3);
    assert_eq!(meta["results"]["total_completion_tokens"], 15);
    assert_eq!(meta["status"], "completed");
    assert_eq!(meta["source"]["format"], "ollama");
    assert!(
        meta["results"]["server_timings"]["eval_tokens_per_sec"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let ok = fixture("foundation/chat_ok_and_error.jsonl");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--input".into(),
                "/nonexistent/results.jsonl".into(),
                "--total-time".into(),
                "1".into(),
            ],
            "/nonexistent/results.jsonl",
        ),
        (
            vec![
                "--input".into(),
                fixture("foundation/empty.jsonl").display().to_string(),
                "--total-time".into(),
                "1".into(),
            ],
            "empty.jsonl",
        ),
        (
            vec![
                "--input".into(),
                fixture("foundation/unknown_format.jsonl")
                    .display()
                    .to_string(),
                "--total-time".into(),
                "1".into(),
            ],
            "--format",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "0".into(),
            ],
            "--total-time",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "-5".into(),
            ],
            "--total-time",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "1".into(),
                "--config".into(),
                "{bad json".into(),
            ],
            "--config",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "1".into(),
                "--config".into(),
                "@/nonexistent/c.json".into(),
            ],
            "--config",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "1".into(),
                "--label".into(),
                "novalue".into(),
            ],
            "--label",
        ),
        (
            vec![
                "--input".into(),
                ok.display().to_string(),
                "--total-time".into(),
                "1".into(),
                "--format".into(),
                "nope".into(),
            ],
            "--format",
        ),
    ];
    for (extra, needle) in cases {
        analyze_cmd(&store, "p", "m")
            .args(&extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
        assert!(
            !store.exists(),
            "store created by a failed command: {extra:?}"
        );
    }
}

#[test]
fn truncated_line_is_counted_and_strict_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = fixture("foundation/truncated.jsonl");
    analyze_cmd(&store, "p", "m")
        .args(["--total-time", "1", "--strict", "--input"])
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 3"));
    assert!(!store.exists());
    analyze(&store, "p", "m", &input)
        .success()
        .stderr(predicate::str::contains("truncated.jsonl:3"));
    let meta = read_json(&metadata_files(&store)[0]);
    assert_eq!(meta["results"]["unparseable_lines"], 1);
    assert_eq!(meta["results"]["success_count"], 2);
    assert_eq!(meta["status"], "partial");
}

#[test]
fn all_failed_is_never_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    analyze(
        &store,
        "vllm-serve",
        "m",
        &fixture("foundation/all_failed.jsonl"),
    )
    .code(1)
    .stderr(predicate::str::contains("every request"));
    let meta = read_json(&metadata_files(&store)[0]);
    assert_eq!(meta["status"], "failed");
    assert_eq!(meta["results"]["success_count"], 0);
}

#[test]
fn store_location_from_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let env_store = dir.path().join("from-env");
    bk_no_store()
        .current_dir(dir.path())
        .env("BENCHKEEP_STORE", &env_store)
        .args([
            "analyze",
            "--platform",
            "p",
            "--model",
            "m",
            "--total-time",
            "1",
            "--input",
        ])
        .arg(fixture("foundation/ollama_chat.jsonl"))
        .assert()
        .success();
    assert_eq!(metadata_files(&env_store).len(), 1);
    bk_no_store()
        .current_dir(dir.path())
        .env_remove("BENCHKEEP_STORE")
        .args([
            "analyze",
            "--platform",
            "p",
            "--model",
            "m",
            "--total-time",
            "1",
            "--input",
        ])
        .arg(fixture("foundation/ollama_chat.jsonl"))
        .assert()
        .success();
    assert_eq!(metadata_files(&dir.path().join("benchmarks")).len(), 1);
}

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
fn verify_finds_each_problem_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    bk(&store)
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("no problems"));

    let before: Vec<(PathBuf, Vec<u8>)> = metadata_files(&store)
        .into_iter()
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    let id = format!("vllm-offline-gemma3-4b-5-{}", today());
    // a changed raw file
    let raw = store.join(format!("raw/{id}.jsonl"));
    let mut bytes = fs::read(&raw).unwrap();
    bytes[10] ^= 1;
    fs::write(&raw, &bytes).unwrap();
    // an orphan raw file, a stray temp file, a future schema, garbage metadata
    fs::write(store.join("raw/orphan.jsonl"), "{}\n").unwrap();
    fs::write(store.join("metadata/.tmp-999999999-0-0-x.json"), "{").unwrap();
    let future = r#"{"schema_version": 99, "test_id": "future"}"#;
    fs::write(store.join("metadata/future.json"), future).unwrap();
    fs::write(store.join("metadata/garbage.json"), "not json").unwrap();
    // a run left `running` by a process that is gone
    let mut running = read_json(&before[0].0);
    running["test_id"] = "dead-run".into();
    running["status"] = "running".into();
    running["pid"] = 999_999_999u64.into();
    running["test"]["output_file"] = "raw/dead-run.jsonl".into();
    fs::write(
        store.join("metadata/dead-run.json"),
        serde_json::to_vec(&running).unwrap(),
    )
    .unwrap();
    fs::write(store.join("raw/dead-run.jsonl"), "").unwrap();

    bk(&store)
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("sha256 is"))
        .stdout(predicate::str::contains("raw file without metadata"))
        .stdout(predicate::str::contains("rm "))
        .stdout(predicate::str::contains("schema_version 99 is newer"))
        .stdout(predicate::str::contains("garbage.json"))
        .stdout(predicate::str::contains("benchkeep recover dead-run"));
    // readers skip the unknown files with a warning, and never touch them
    bk(&store)
        .arg("compare")
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped"))
        .stderr(predicate::str::contains("future.json"));
    assert_eq!(
        fs::read_to_string(store.join("metadata/future.json")).unwrap(),
        future
    );
    assert_eq!(
        fs::read_to_string(store.join("metadata/garbage.json")).unwrap(),
        "not json"
    );
    for (p, b) in before {
        assert_eq!(fs::read(&p).unwrap(), b, "{} changed", p.display());
    }
}

#[test]
fn eight_concurrent_analyze_get_eight_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = fixture("foundation/chat_ok_and_error.jsonl");
    let children: Vec<_> = (0..8)
        .map(|_| {
            bk_std(&store)
                .args([
                    "analyze",
                    "--platform",
                    "vllm-serve",
                    "--model",
                    "gemma3-4b",
                    "--total-time",
                    "3",
                    "--input",
                ])
                .arg(&input)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = metadata_files(&store);
    assert_eq!(files.len(), 8, "{files:?}");
    let mut ids: Vec<String> = files
        .iter()
        .map(|p| read_json(p)["test_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    for id in &ids {
        assert_eq!(
            fs::read(store.join(format!("raw/{id}.jsonl"))).unwrap(),
            fs::read(&input).unwrap()
        );
    }
    let summary = read_json(&store.join("analysis/summary.json"));
    assert_eq!(summary["run_count"], 8);
    let listed: Vec<&str> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test_id"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert_eq!(listed.iter().filter(|l| *l == id).count(), 1);
    }
    bk(&store).arg("verify").assert().success();
}

#[test]
fn input_already_in_raw_is_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    fs::create_dir_all(store.join("raw")).unwrap();
    let inside = store.join("raw/batch_results.jsonl");
    fs::copy(fixture("foundation/chat_ok_and_error.jsonl"), &inside).unwrap();
    analyze(&store, "vllm-offline", "m", &inside).success();
    let meta = read_json(&metadata_files(&store)[0]);
    assert_eq!(meta["test"]["output_file"], "raw/batch_results.jsonl");
    let raws: Vec<_> = fs::read_dir(store.join("raw")).unwrap().collect();
    assert_eq!(raws.len(), 1);
    bk(&store).arg("verify").assert().success();
}

#[test]
fn hostile_model_names_stay_inside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    for model in ["../x", "/etc/passwd", "a/b", &"m".repeat(10_000)] {
        analyze(&store, "p", model, &fixture("foundation/ollama_chat.jsonl")).success();
    }
    for entry in fs::read_dir(&store).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["raw", "metadata", "analysis", "reports", ".lock"].contains(&name.as_str()),
            "{name}"
        );
    }
    assert!(!dir.path().join("x").exists());
    for sub in ["raw", "metadata"] {
        for entry in fs::read_dir(store.join(sub)).unwrap() {
            assert!(entry.unwrap().file_type().unwrap().is_file());
        }
    }
    assert_eq!(metadata_files(&store).len(), 4);
}

#[test]
fn requests_file_makes_imported_runs_comparable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let requests = dir.path().join("batch_5k.jsonl");
    fs::write(&requests, "{\"custom_id\":\"r0\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}\n").unwrap();
    for (platform, model, file) in [
        (
            "vllm-offline",
            "gemma3:12b",
            "foundation/chat_ok_and_error.jsonl",
        ),
        ("ollama", "gemma3:12b", "foundation/ollama_chat.jsonl"),
    ] {
        analyze_cmd(&store, platform, model)
            .args(["--total-time", "10", "--input"])
            .arg(fixture(file))
            .arg("--requests")
            .arg(&requests)
            .assert()
            .success();
    }
    let metas: Vec<Value> = metadata_files(&store)
        .iter()
        .map(|p| read_json(p))
        .collect();
    let sha = metas[0]["test"]["input_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(metas[1]["test"]["input_sha256"], sha.as_str());
    assert_ne!(metas[0]["test"]["raw_sha256"], sha.as_str());
    assert!(
        metas[0]["test"]["input_file"]
            .as_str()
            .unwrap()
            .ends_with("batch_5k.jsonl")
    );
    assert!(
        metas[0]["test"]["results_file"]
            .as_str()
            .unwrap()
            .ends_with(".jsonl")
    );
    let md = fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains("x ollama"), "no head-to-head ratio in:\n{md}");
    analyze_cmd(&store, "p", "m")
        .args([
            "--total-time",
            "1",
            "--requests",
            "/nonexistent/req.jsonl",
            "--input",
        ])
        .arg(fixture("foundation/ollama_chat.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--requests"));
}

#[test]
fn seed_step_3_file_already_in_raw_keeps_its_name_as_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("benchmarks");
    fs::create_dir_all(store.join("raw")).unwrap();
    let name = "vllm-offline-gemma3-4b-5000-2024-10-28";
    let raw = store.join(format!("raw/{name}.jsonl"));
    fs::copy(fixture("foundation/chat_ok_and_error.jsonl"), &raw).unwrap();
    analyze(&store, "vllm-offline", "gemma3-4b", &raw).success();
    let meta = read_json(&store.join(format!("metadata/{name}.json")));
    assert_eq!(meta["test_id"], name);
    assert_eq!(meta["test"]["output_file"], format!("raw/{name}.jsonl"));
    // importing it again is a second run: a new id, nothing overwritten
    analyze(&store, "vllm-offline", "gemma3-4b", &raw).success();
    assert_eq!(metadata_files(&store).len(), 2);
    bk(&store).arg("verify").assert().success();
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
fn hostile_metadata_is_skipped_and_reported_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let victim = dir.path().join("victim.jsonl");
    fs::write(&victim, "keep me\n").unwrap();
    let template = read_json(&metadata_files(&store)[0]);
    let mut escape_id = template.clone();
    escape_id["test_id"] = "../../pwned".into();
    escape_id["status"] = "running".into();
    escape_id["pid"] = 999_999_999u64.into();
    fs::write(
        store.join("metadata/pwned.json"),
        serde_json::to_vec(&escape_id).unwrap(),
    )
    .unwrap();
    let mut abs_raw = template.clone();
    abs_raw["test_id"] = "absraw".into();
    abs_raw["status"] = "running".into();
    abs_raw["pid"] = 999_999_999u64.into();
    abs_raw["test"]["output_file"] = victim.display().to_string().into();
    fs::write(
        store.join("metadata/absraw.json"),
        serde_json::to_vec(&abs_raw).unwrap(),
    )
    .unwrap();

    bk(&store)
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("unsafe test_id"))
        .stdout(predicate::str::contains("unsafe test.output_file"));
    let _ = bk(&store).arg("recover").assert();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(!dir.path().join("pwned.json").exists());
    assert!(!store.join("pwned.json").exists());
    let entries: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}"); // the store and the victim only
}

#[test]
fn verify_on_a_missing_store_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    bk(&dir.path().join("typo"))
        .arg("verify")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no store at"));
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

#[test]
fn verify_reports_a_corrupt_line_inside_a_run_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let log = dir.path().join("run.jsonl");
    let rec = |seq: u64| {
        format!(
            "{{\"seq\":{seq},\"ok\":true,\"prompt_tokens\":4,\"completion_tokens\":8,\"scheduled_s\":{}.0,\"end_s\":{}.5,\"ttft_ms\":10.0,\"e2e_ms\":500.0}}\n",
            seq, seq
        )
    };
    fs::write(&log, format!("{}{}garbage\n{}", rec(1), rec(2), rec(3))).unwrap();
    analyze_cmd(&store, "vllm", "m")
        .arg("--input")
        .arg(&log)
        .assert()
        .success();
    bk(&store)
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("corrupt run log at line 3"));
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
fn an_oversized_metadata_file_is_skipped_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // 17 MB of holes: over the 16 MB cap, costs no disk.
    let huge = store.join("metadata/huge.json");
    fs::File::create(&huge).unwrap().set_len(17 << 20).unwrap();
    bk(&store)
        .arg("compare")
        .assert()
        .success()
        .stderr(predicate::str::contains("huge.json"))
        .stderr(predicate::str::contains("too large"));
    bk(&store)
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("too large for a metadata file"));
    assert_eq!(fs::metadata(&huge).unwrap().len(), 17 << 20);
}
