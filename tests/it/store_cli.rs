//! The store itself: where it is (`--store`, `$BENCHKEEP_STORE`, ./benchmarks), what
//! `verify` finds (and never changes), and metadata that is hostile, oversized or corrupt.

use std::fs;
use std::path::PathBuf;

use predicates::prelude::*;

use crate::support::cmd::{analyze_cmd, populated_store};
use crate::support::store::{metadata_files, read_json, today};
use crate::support::{bk, bk_no_store, fixture};

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
