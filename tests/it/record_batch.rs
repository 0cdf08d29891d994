//! `benchkeep record` around a command that writes OpenAI Batch output, as `vllm run-batch`
//! does: metadata, measured time, load time, log, raw copy, defaults from the command line.

use crate::support::bk;
use crate::support::cmd::{fake_batch, record_cmd};
use crate::support::store::{
    all_metadata, assert_no_temp_files, only_metadata, raw_names, read_rel,
};

#[test]
fn records_a_batch_run_with_its_time_log_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    // The request file: 4 requests (blank lines do not count).
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(&batch, "{\"custom_id\":\"1\"}\n{}\n\n{}\n{}\n").unwrap();
    let batch = batch.to_str().unwrap();
    let mut cmd = record_cmd(&store, "vllm-offline", "gemma3-4b");
    cmd.args([
        "--output",
        out.to_str().unwrap(),
        "--config",
        r#"{"max_model_len": 4096}"#,
        "--label",
        "gpu=test",
        "--gpu",
        "off",
        "--",
    ]);
    cmd.args(fake_batch(&[
        "-o",
        out.to_str().unwrap(),
        "-i",
        batch,
        "--requests",
        "4",
        "--errors",
        "1",
        "--sleep",
        "0.3",
        "--load-after",
        "0.15",
    ]));
    let assert = cmd.assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    // The command's own output still reaches the terminal.
    assert!(
        stdout.contains("fake run-batch: wrote 4 results"),
        "{stdout}"
    );
    assert!(stderr.contains("init engine"), "{stderr}");
    assert!(stdout.contains("Saved metadata"), "{stdout}");

    let m = only_metadata(&store);
    let id = m["test_id"].as_str().unwrap();
    assert!(id.starts_with("vllm-offline-gemma3-4b-4-"), "{id}");
    assert_eq!(m["platform"], "vllm-offline");
    assert_eq!(m["model"], "gemma3-4b");
    assert_eq!(m["status"], "partial");
    assert_eq!(m["source"]["kind"], "record");
    assert_eq!(m["source"]["format"], "openai-batch");
    let command = m["source"]["command"].as_str().unwrap();
    assert!(command.contains("fake_run_batch.py"), "{command}");
    assert_eq!(m["config"]["max_model_len"], 4096);
    assert_eq!(m["labels"]["gpu"], "test");
    assert_eq!(m["gpu"], serde_json::Value::Null);
    assert_eq!(m["test"]["num_requests"], 4);
    assert_eq!(m["test"]["input_file"], batch);
    assert_eq!(m["test"]["input_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["test"]["output_file"], format!("raw/{id}.jsonl"));
    // Finished: no pid, no results_file (the command block names the results file).
    assert!(m.get("pid").is_none(), "{m:#}");
    assert!(m["test"].get("results_file").is_none(), "{m:#}");

    let r = &m["results"];
    assert_eq!(r["success_count"], 3);
    assert_eq!(r["failure_count"], 1);
    assert_eq!(r["avg_prompt_tokens"], 10.0);
    assert_eq!(r["avg_completion_tokens"], 20.0);
    let total = r["total_time_seconds"].as_f64().unwrap();
    assert!((0.3..30.0).contains(&total), "total_time_seconds {total}");
    let load = r["model_load_time_seconds"].as_f64().unwrap();
    assert!(load >= 0.15 && load <= total, "load {load} total {total}");
    let tput = r["throughput_tokens_per_sec"].as_f64().unwrap();
    assert!(
        (tput - 90.0 / total).abs() < 0.5,
        "{tput} vs {}",
        90.0 / total
    );

    let c = &m["command"];
    assert_eq!(c["exit_code"], 0);
    assert_eq!(c["signal"], serde_json::Value::Null);
    assert_eq!(c["output"], "imported");
    assert_eq!(c["load_time_source"], "vllm-log");
    assert!(c["load_line"].as_str().unwrap().contains("init engine"));
    assert_eq!(c["log_file"], format!("raw/{id}.log"));
    assert!(c.get("log_tail").is_none(), "no tail for a good run");

    // raw/<id>.jsonl is a byte-exact copy; raw/<id>.log holds both streams, the progress
    // bar only in its last state.
    assert_eq!(
        read_rel(&store, &format!("raw/{id}.jsonl")),
        std::fs::read(&out).unwrap()
    );
    assert_eq!(
        m["test"]["raw_sha256"].as_str().unwrap().len(),
        64,
        "{}",
        m["test"]
    );
    let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
    assert!(log.contains("fake run-batch: wrote 4 results\n"), "{log}");
    assert!(log.contains("Loading weights took"), "{log}");
    assert!(log.contains("Processed prompts: 100%\n"), "{log}");
    assert!(!log.contains("Processed prompts: 10%"), "{log}");
    assert_eq!(c["log_bytes"].as_u64().unwrap(), log.len() as u64);
    assert_eq!(
        raw_names(&store),
        [format!("{id}.jsonl"), format!("{id}.log")]
    );
    assert_no_temp_files(&store);
    assert!(store.join("analysis/summary.json").is_file());
    assert!(store.join("reports/COMPARISON.md").is_file());
}

#[test]
fn takes_output_model_platform_and_engine_flags_from_a_run_batch_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    // 5 requests planned; the fake writes 4 results: the id keeps the plan, the metadata
    // the actual count.
    let batch = dir.path().join("batch_5k.jsonl");
    std::fs::write(&batch, "{}\n{}\n{}\n{}\n{}").unwrap();
    let mut cmd = bk(&store);
    cmd.current_dir(dir.path());
    cmd.args(["record", "--gpu", "off", "--"]);
    // `run-batch` in the command line marks it as vLLM's (the fake ignores the word).
    cmd.args(fake_batch(&[
        "run-batch",
        "-i",
        "batch_5k.jsonl",
        "-o",
        out.to_str().unwrap(),
        "--model",
        "google/gemma-3-4b-it",
        "--max-model-len",
        "4096",
        "--gpu-memory-utilization",
        "0.9",
        "--enable-prefix-caching",
        "--errors",
        "0",
        "--sleep",
        "0.1",
    ]));
    cmd.assert().success();
    let m = only_metadata(&store);
    let id = m["test_id"].as_str().unwrap();
    assert!(
        id.starts_with("vllm-offline-google-gemma-3-4b-it-5-"),
        "{id}"
    );
    assert_eq!(m["test"]["num_requests"], 4);
    assert_eq!(m["model"], "google/gemma-3-4b-it");
    assert_eq!(m["status"], "completed");
    assert_eq!(m["test"]["input_file"], "batch_5k.jsonl");
    assert_eq!(m["config"]["max_model_len"], 4096);
    assert_eq!(m["config"]["gpu_memory_utilization"], 0.9);
    assert_eq!(m["config"]["enable_prefix_caching"], true);
    assert_eq!(m["command"]["output_file"], out.to_str().unwrap());
}

#[test]
fn a_second_run_gets_a_fresh_id_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    for _ in 0..2 {
        let mut cmd = record_cmd(&store, "p", "m");
        cmd.args(["--gpu", "off", "--load-pattern", "Loading weights", "--"]);
        cmd.args(fake_batch(&[
            "-o",
            out.to_str().unwrap(),
            "--sleep",
            "0.05",
        ]));
        cmd.assert().success();
    }
    let all = all_metadata(&store);
    assert_eq!(all.len(), 2);
    let ids: Vec<&str> = all.iter().map(|m| m["test_id"].as_str().unwrap()).collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().any(|id| id.ends_with("-2")), "{ids:?}");
    for m in &all {
        let id = m["test_id"].as_str().unwrap();
        assert_eq!(m["command"]["log_file"], format!("raw/{id}.log"));
        assert_eq!(m["command"]["load_time_source"], "pattern");
        assert!(store.join(format!("raw/{id}.log")).is_file());
        assert!(store.join(format!("raw/{id}.jsonl")).is_file());
    }
    assert_eq!(raw_names(&store).len(), 4);
    assert_no_temp_files(&store);
}

#[test]
fn model_load_time_flag_overrides_and_bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let mut cmd = record_cmd(&store, "p", "m");
    cmd.args([
        "--gpu",
        "off",
        "--model-load-time",
        "25.8",
        "--output",
        out.to_str().unwrap(),
        "--",
    ]);
    cmd.args(fake_batch(&[
        "-o",
        out.to_str().unwrap(),
        "--sleep",
        "0.05",
    ]));
    cmd.assert().success();
    let m = only_metadata(&store);
    assert_eq!(m["results"]["model_load_time_seconds"], 25.8);
    assert_eq!(m["command"]["load_time_source"], "flag");

    let empty = dir.path().join("empty-store");
    // No output anywhere: a usage error before anything runs.
    record_cmd(&empty, "p", "m")
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--output"));
    bk(&empty)
        .args(["record", "--model", "m", "--output", "o", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--platform"));
    record_cmd(&empty, "p", "m")
        .args(["--output", "o"])
        .assert()
        .code(2);
    record_cmd(&empty, "p", "m")
        .args(["--output", "o", "--load-pattern", "(", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--load-pattern"));
    record_cmd(&empty, "p", "m")
        .args(["--output", "o", "--gpu-interval", "1ms", "--", "true"])
        .assert()
        .code(2);
    assert!(!empty.join("metadata").exists());
}

#[test]
fn results_written_straight_into_raw_keep_their_name_and_are_never_overwritten() {
    // The seed's Step 3 writes to benchmarks/raw/<platform>-<model>-<n>-<date>.jsonl itself.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("raw")).unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let rel = format!("raw/p-m-4-{today}.jsonl");
    let out = store.join(&rel);
    let run = || {
        let mut cmd = record_cmd(&store, "p", "m");
        cmd.args(["--gpu", "off", "--"]);
        cmd.args(fake_batch(&[
            "-o",
            out.to_str().unwrap(),
            "--sleep",
            "0.05",
        ]));
        cmd
    };
    run().assert().success();
    let m = only_metadata(&store);
    assert_eq!(m["test"]["output_file"], rel.as_str());
    let id = m["test_id"].as_str().unwrap();
    if id.ends_with(&today) {
        assert_eq!(format!("raw/{id}.jsonl"), rel);
    }
    assert!(store.join(format!("raw/{id}.log")).is_file());
    let before = std::fs::read(&out).unwrap();

    // A second run pointed at the same file would overwrite a recorded run's raw data.
    run()
        .assert()
        .code(2)
        .stderr(predicates::str::contains("would overwrite"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(all_metadata(&store).len(), 1);
    assert_no_temp_files(&store);
}
