//! A command that fails, is killed, or leaves no results is still recorded: status
//! `failed`, its exit code or signal, the tail of its log, and whatever it wrote.

use serde_json::Value;

use crate::support::bk;
use crate::support::cmd::{fake_batch, record_cmd};
use crate::support::store::{
    all_metadata, assert_no_temp_files, only_metadata, raw_names, read_rel,
};

fn record(store: &std::path::Path, out: &std::path::Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = record_cmd(store, "vllm-offline", "gemma3-4b");
    cmd.args(["--gpu", "off", "--output", out.to_str().unwrap(), "--"]);
    cmd.args(fake_batch(&["-o", out.to_str().unwrap()]));
    cmd.args(args);
    cmd
}

fn tail(m: &Value) -> String {
    m["command"]["log_tail"]
        .as_array()
        .unwrap_or_else(|| panic!("no log_tail: {m:#}"))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn failing_command_keeps_what_it_wrote_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    record(
        &store,
        &out,
        &[
            "--write", "3", "--errors", "0", "--exit", "3", "--sleep", "0.05",
        ],
    )
    .assert()
    .code(3)
    .stderr(predicates::str::contains("exit code 3"));
    let m = only_metadata(&store);
    let id = m["test_id"].as_str().unwrap();
    assert_eq!(m["status"], "failed");
    assert_eq!(m["command"]["exit_code"], 3);
    assert_eq!(m["command"]["signal"], Value::Null);
    assert_eq!(m["command"]["output"], "imported");
    assert_eq!(m["results"]["success_count"], 3);
    assert!(
        tail(&m).contains("fatal: engine died (exit 3)"),
        "{}",
        tail(&m)
    );
    assert_eq!(
        read_rel(&store, &format!("raw/{id}.jsonl")),
        std::fs::read(&out).unwrap()
    );
    let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
    assert!(log.contains("fatal: engine died"), "{log}");
    assert_no_temp_files(&store);
}

#[test]
fn killed_command_without_output_is_recorded_with_its_signal() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    record(
        &store,
        &out,
        &["--no-output", "--kill", "KILL", "--sleep", "0.05"],
    )
    .assert()
    .code(128 + 9)
    .stderr(predicates::str::contains("killed by SIGKILL"));
    let m = only_metadata(&store);
    let id = m["test_id"].as_str().unwrap();
    assert!(id.starts_with("vllm-offline-gemma3-4b-0-"), "{id}");
    assert_eq!(m["status"], "failed");
    assert_eq!(m["command"]["exit_code"], Value::Null);
    assert_eq!(m["command"]["signal"], 9);
    assert_eq!(m["command"]["signal_name"], "SIGKILL");
    assert_eq!(m["command"]["output"], "missing");
    assert!(tail(&m).contains("sending myself SIGKILL"), "{}", tail(&m));
    // With no results, the run's raw file is its log.
    assert_eq!(m["test"]["output_file"], format!("raw/{id}.log"));
    assert_eq!(m["results"]["success_count"], 0);
    assert!(m["results"]["total_time_seconds"].as_f64().unwrap() >= 0.05);
    assert!(store.join(format!("raw/{id}.log")).is_file());
    assert_eq!(raw_names(&store), [format!("{id}.log")]);
    assert_no_temp_files(&store);
}

#[test]
fn command_that_succeeds_without_output_is_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    record(&store, &out, &["--no-output", "--sleep", "0.05"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("wrote no results file"));
    let m = only_metadata(&store);
    assert_eq!(m["status"], "failed");
    assert_eq!(m["command"]["exit_code"], 0);
    assert_eq!(m["command"]["output"], "missing");
    assert!(tail(&m).contains("wrote 4 results"), "{}", tail(&m));
}

#[test]
fn a_results_file_left_from_before_is_not_taken_for_this_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "{\"old\": true}\n").unwrap();
    record(&store, &out, &["--no-output", "--sleep", "0.05"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("already exists"));
    let m = only_metadata(&store);
    assert_eq!(m["status"], "failed");
    assert_eq!(m["command"]["output"], "unchanged");
    assert_eq!(m["command"]["output_existed_before"], true);
    let id = m["test_id"].as_str().unwrap();
    assert_eq!(raw_names(&store), [format!("{id}.log")]);
}

#[test]
fn an_unreadable_results_file_is_kept_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    record(&store, &out, &["--garbage", "--sleep", "0.05"])
        .assert()
        .code(1);
    let m = only_metadata(&store);
    assert_eq!(m["status"], "failed");
    let id = m["test_id"].as_str().unwrap();
    // Whether the parser rejects the file or counts its lines as unparseable, the bytes are
    // kept in raw/ and nothing succeeded.
    assert_eq!(m["results"]["success_count"], 0);
    let rel = m["test"]["output_file"].as_str().unwrap();
    assert_eq!(rel, format!("raw/{id}.jsonl"));
    assert_eq!(read_rel(&store, rel), std::fs::read(&out).unwrap());
}

#[test]
fn a_command_that_cannot_start_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_cmd(&store, "p", "m")
        .args([
            "--gpu",
            "off",
            "--output",
            "o.jsonl",
            "--",
            "benchkeep-no-such-program-xyz",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not found"));
    assert!(all_metadata(&store).is_empty());
    assert!(raw_names(&store).is_empty(), "{:?}", raw_names(&store));
}

/// The command's exit code is passed through even when it is one of benchkeep's own (4:
/// store error); benchkeep's own failures are told apart by their `error:` line.
#[test]
fn exit_codes_of_the_command_and_of_benchkeep_are_told_apart_by_the_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let assert = record(&store, &out, &["--exit", "4", "--sleep", "0.05"])
        .assert()
        .code(4);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("the command failed with exit code 4"),
        "{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("error:")),
        "the command's own code is no benchkeep error: {stderr}"
    );
    let m = only_metadata(&store);
    assert_eq!(m["command"]["exit_code"], 4);
    assert_eq!(m["status"], "failed");

    // A store that cannot be written: exit 4 too, but with an `error:` line, and the
    // command never runs.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let marker = dir.path().join("ran");
    let assert = record_cmd(&not_a_dir, "p", "m")
        .args([
            "--gpu",
            "off",
            "--output",
            out.to_str().unwrap(),
            "--",
            "touch",
            marker.to_str().unwrap(),
        ])
        .assert()
        .code(4);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.lines().any(|l| l.starts_with("error:")), "{stderr}");
    assert!(!marker.exists(), "the command ran against a broken store");

    // Both are documented in --help.
    let assert = bk(&store).args(["record", "--help"]).assert().success();
    let help = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        help.contains("Exit status: the command's own exit code is passed through"),
        "{help}"
    );
    assert!(help.contains("`error:`"), "{help}");
}
