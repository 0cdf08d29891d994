//! `benchkeep analyze` as a user runs it (the seed's Step 3 command line): what lands in
//! the metadata, the raw copy and the derived files; ids that never collide, even with
//! eight at once; bad input that exits 2 and writes nothing; hostile model names.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::cmd::{SEED_CONFIG, analyze, analyze_cmd};
use crate::support::store::{metadata_files, read_json, today};
use crate::support::{bk, bk_std, fixture};

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
