//! `record --matrix`: one recorded run per combination, linked as one matrix; a
//! combination whose command prints a CUDA out-of-memory message is recorded as `oom`,
//! one that fails otherwise as `failed`, and the others as normal runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::cmd::{python, record_cmd};
use crate::support::fixture as fixture_path;
use crate::support::store::{all_metadata, assert_no_temp_files};

/// A stand-in for `vllm run-batch` with tuning flags: `GMU LEN OUT`. 0.95 runs out of GPU
/// memory (PyTorch's message), 0.99 fails another way, the rest write 4 results.
fn engine(dir: &Path) -> PathBuf {
    let script = dir.join("engine.sh");
    std::fs::write(
        &script,
        format!(
            "case \"$1\" in\n\
             0.95) echo 'INFO loading the model' >&2\n\
                   echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB' >&2\n\
                   exit 1;;\n\
             0.99) echo 'ValueError: unsupported setting' >&2; exit 3;;\n\
             esac\n\
             exec {} {} -o \"$3\" --requests 4 --errors 0 --sleep 0.01 --load-after 0.01\n",
            python(),
            fixture_path("record/fake_run_batch.py").display()
        ),
    )
    .unwrap();
    script
}

fn matrix_cmd(store: &Path, dir: &Path, gmu: &str) -> assert_cmd::Command {
    let out = dir.join("out-{gpu_memory_utilization}-{max_model_len}.jsonl");
    let mut cmd = record_cmd(store, "vllm-offline", "gemma3-4b");
    cmd.args(["--gpu", "off", "--output", out.to_str().unwrap()]);
    cmd.args(["--matrix", &format!("gpu_memory_utilization={gmu}")]);
    cmd.args(["--matrix", "max_model_len=2048,4096", "--", "sh"]);
    cmd.arg(engine(dir));
    cmd.args([
        "{gpu_memory_utilization}",
        "{max_model_len}",
        out.to_str().unwrap(),
    ]);
    cmd
}

fn by_index(store: &Path) -> Vec<Value> {
    let mut runs = all_metadata(store);
    runs.sort_by_key(|m| m["sweep"]["index"].as_u64());
    runs
}

#[test]
fn one_oom_combination_is_recorded_as_oom_and_the_others_as_normal_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let done = matrix_cmd(&store, dir.path(), "0.85,0.95,0.99")
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&done.get_output().stdout).to_string();
    let runs = by_index(&store);
    assert_eq!(runs.len(), 6, "{runs:#?}");
    let id = runs[0]["sweep"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("matrix-vllm-offline-gemma3-4b-"), "{id}");
    for (i, m) in runs.iter().enumerate() {
        let s = &m["sweep"];
        assert_eq!(s["id"], id.as_str());
        assert_eq!(s["index"], i);
        assert_eq!(s["axis"], "matrix");
        assert_eq!(s["role"], "combination");
        assert_eq!(s["value"], i as f64);
        let gmu = ["0.85", "0.95", "0.99"][i / 2];
        let len = ["2048", "4096"][i % 2];
        assert_eq!(s["settings"]["gpu_memory_utilization"], gmu);
        assert_eq!(s["settings"]["max_model_len"], len);
        // config holds the values as numbers; the stored command is the filled one.
        assert_eq!(
            m["config"]["gpu_memory_utilization"],
            gmu.parse::<f64>().unwrap()
        );
        assert_eq!(m["config"]["max_model_len"], len.parse::<u64>().unwrap());
        let command = m["source"]["command"].as_str().unwrap();
        assert!(command.contains(&format!(" {gmu} {len} ")), "{command}");
        assert!(!command.contains('{'), "{command}");
        match gmu {
            "0.85" => {
                assert_eq!(m["status"], "completed", "{m:#}");
                assert_eq!(m["results"]["success_count"], 4);
                assert_eq!(m["results"]["errors_by_kind"], serde_json::json!({}));
                assert!(m["command"].get("failure_kind").is_none());
            }
            "0.95" => {
                assert_eq!(m["status"], "failed");
                assert_eq!(m["results"]["errors_by_kind"]["oom"], 1, "{m:#}");
                assert_eq!(m["command"]["failure_kind"], "oom");
                let reason = m["command"]["failure_reason"].as_str().unwrap();
                assert!(
                    reason.starts_with("torch.OutOfMemoryError: CUDA out of memory"),
                    "{reason}"
                );
            }
            _ => {
                assert_eq!(m["status"], "failed");
                assert_eq!(m["command"]["exit_code"], 3);
                assert!(m["results"]["errors_by_kind"].get("oom").is_none(), "{m:#}");
            }
        }
    }
    // The terminal table, then COMPARISON.md and index.html.
    assert!(stdout.contains(&format!("Matrix {id}")), "{stdout}");
    assert!(stdout.contains("fit, fastest"), "{stdout}");
    assert!(stdout.contains("oom (torch.OutOfMemoryError"), "{stdout}");
    assert!(stdout.contains("failed: exit code 3"), "{stdout}");
    let md = std::fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains("## Tuning matrices"), "{md}");
    assert!(md.contains(&format!("### {id}")), "{md}");
    assert_eq!(
        md.matches("| oom (torch.OutOfMemoryError").count(),
        2,
        "{md}"
    );
    assert_no_temp_files(&store);

    // A second matrix gets its own id.
    matrix_cmd(&store, dir.path(), "0.85").assert().code(0);
    let ids: std::collections::BTreeSet<String> = all_metadata(&store)
        .iter()
        .map(|m| m["sweep"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&format!("{id}-2")), "{ids:?}");
}

#[test]
fn bad_matrices_are_usage_errors_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("o.jsonl");
    let cases: [(&[&str], &[&str], &str); 5] = [
        (&["a=1,2"], &["echo", "{a}", "{b}"], "{b}"),
        (&["a=1,2", "b=3"], &["echo", "{a}"], "--matrix b"),
        (&["a"], &["echo", "{a}"], "--matrix \"a\""),
        (&["a=1,,2"], &["echo", "{a}"], "an empty value"),
        (
            &[
                "a=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
                "b=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
            ],
            &["echo", "{a}", "{b}"],
            "more than 256 combinations",
        ),
    ];
    for (specs, command, says) in cases {
        let mut cmd = record_cmd(&store, "p", "m");
        cmd.args(["--gpu", "off", "--output", out.to_str().unwrap()]);
        for s in specs {
            cmd.args(["--matrix", s]);
        }
        cmd.arg("--").args(command);
        cmd.assert().code(2).stderr(predicates::str::contains(says));
    }
    assert!(all_metadata(&store).is_empty());
}

#[test]
fn sigterm_stops_the_matrix_after_recording_the_current_combination() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let started = dir.path().join("started");
    let script = format!(
        "touch {}; exec sleep 30; echo x > {}/o$0.jsonl",
        started.display(),
        dir.path().display()
    );
    let mut child = crate::support::bk_std(&store)
        .args(["record", "--platform", "p", "--model", "m", "--gpu", "off"])
        .args(["--matrix", "n=1,2,3", "--output"])
        .arg(dir.path().join("o{n}.jsonl"))
        .args(["--", "sh", "-c", &script, "{n}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until(Duration::from_secs(60), "the first combination", || {
        started.exists()
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let runs = all_metadata(&store);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "interrupted");
    assert_eq!(runs[0]["sweep"]["index"], 0);
}
