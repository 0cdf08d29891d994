//! Ctrl-C and SIGTERM sent to `benchkeep record` reach the command, and the run is recorded
//! as `interrupted` with what the command saved.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cmd::fake_batch;
use crate::support::store::{all_files, assert_no_temp_files, only_metadata, raw_names};
use crate::support::{bk, bk_std, fixture};

fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("benchkeep did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `benchkeep record` around the fake command in signal-waiting mode, wait until the
/// command is ready, send `sig` to benchkeep (not to the command), and return benchkeep's
/// exit status and the marker directory.
fn interrupt(sig: libc::c_int, store: &Path, markers: &Path, out: &Path) -> i32 {
    let mut child = bk_std(store)
        .args([
            "record",
            "--platform",
            "vllm-offline",
            "--model",
            "gemma3-4b",
            "--gpu",
            "off",
            "--output",
            out.to_str().unwrap(),
            "--",
        ])
        .args(fake_batch(&[
            "-o",
            out.to_str().unwrap(),
            "--wait-signal",
            markers.to_str().unwrap(),
            "--errors",
            "0",
            "--load-after",
            "0",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&markers.join("ready"), Duration::from_secs(20));
    // SAFETY: sending a signal to a child process we started.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    status.code().expect("benchkeep itself was not killed")
}

#[test]
fn sigint_reaches_the_command_and_the_run_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, markers, out) = (
        dir.path().join("store"),
        dir.path().join("markers"),
        dir.path().join("out.jsonl"),
    );
    std::fs::create_dir(&markers).unwrap();
    let code = interrupt(libc::SIGINT, &store, &markers, &out);
    assert_eq!(code, 130);
    // The command got exactly one SIGINT.
    assert_eq!(
        std::fs::read_to_string(markers.join("got-SIGINT")).unwrap(),
        "1"
    );
    let m = only_metadata(&store);
    assert_eq!(m["status"], "interrupted");
    assert_eq!(m["command"]["interrupted_by"], "SIGINT");
    assert_eq!(m["command"]["exit_code"], 130);
    // What it saved on the way out is kept.
    assert_eq!(m["results"]["success_count"], 2);
    let id = m["test_id"].as_str().unwrap();
    // No request file: 0 requests planned (the id keeps the plan), 2 recorded.
    assert!(id.starts_with("vllm-offline-gemma3-4b-0-"), "{id}");
    assert_eq!(m["test"]["num_requests"], 2);
    let tail: Vec<&str> = m["command"]["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(tail.iter().any(|l| l.contains("got SIGINT")), "{tail:?}");
    assert_no_temp_files(&store);
}

#[test]
fn sigterm_reaches_the_command_and_the_run_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, markers, out) = (
        dir.path().join("store"),
        dir.path().join("markers"),
        dir.path().join("out.jsonl"),
    );
    std::fs::create_dir(&markers).unwrap();
    let code = interrupt(libc::SIGTERM, &store, &markers, &out);
    assert_eq!(code, 128 + libc::SIGTERM);
    assert!(markers.join("got-SIGTERM").exists());
    let m = only_metadata(&store);
    assert_eq!(m["status"], "interrupted");
    assert_eq!(m["command"]["interrupted_by"], "SIGTERM");
    assert_eq!(m["results"]["success_count"], 2);
}

/// The store's one metadata file, once it exists and parses.
fn wait_metadata(store: &Path, limit: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let files: Vec<_> = std::fs::read_dir(store.join("metadata"))
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        let json: Vec<_> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        // A file listed may be renamed over before it is read (an atomic replace).
        if let [one] = json.as_slice()
            && let Ok(bytes) = std::fs::read(one)
            && let Ok(m) = serde_json::from_slice(&bytes)
        {
            return m;
        }
        assert!(start.elapsed() < limit, "no metadata within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// RELIABILITY.md P4: `record` publishes its run as `running` before the command starts and
/// writes the log and GPU series under the run's id, so `kill -9` of benchkeep leaves a run
/// that `verify` finds (process gone, `benchkeep recover <id>`), not garbage temp files.
#[test]
fn kill_9_of_benchkeep_leaves_a_running_run_that_verify_reports() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, markers, out, input) = (
        dir.path().join("store"),
        dir.path().join("markers"),
        dir.path().join("out.jsonl"),
        dir.path().join("batch.jsonl"),
    );
    std::fs::create_dir(&markers).unwrap();
    std::fs::write(&input, "{}\n{}\n\n{}\n").unwrap();
    // A fake nvidia-smi first on PATH, so that a GPU series is written too.
    let fakebin = dir.path().join("fakebin");
    std::fs::create_dir(&fakebin).unwrap();
    std::fs::copy(fixture("record/nvidia-smi"), fakebin.join("nvidia-smi")).unwrap();
    std::fs::set_permissions(
        fakebin.join("nvidia-smi"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        fakebin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut bk_child = bk_std(&store)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .env("PATH", path)
        .args([
            "record",
            "--platform",
            "p",
            "--model",
            "m",
            "--label",
            "case=kill9",
            "--config",
            r#"{"max_model_len": 1024}"#,
            "--gpu",
            "nvidia-smi",
            "--gpu-interval",
            "50ms",
            "--output",
            out.to_str().unwrap(),
            "--",
        ])
        .args(fake_batch(&[
            "-i",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--api-key",
            "CANARY-kill9",
            // Waits (up to 30 s) for a signal that never comes: the command is still
            // running when benchkeep is killed.
            "--wait-signal",
            markers.to_str().unwrap(),
            "--load-after",
            "0",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bk_pid = bk_child.id();

    // The run is published as `running` before the command starts.
    let m = wait_metadata(&store, Duration::from_secs(20));
    assert_eq!(m["status"], "running", "{m:#}");
    let id = m["test_id"].as_str().unwrap().to_string();
    let log = store.join(format!("raw/{id}.log"));
    let series = store.join(format!("raw/{id}.gpu.jsonl"));
    wait_for(&markers.join("ready"), Duration::from_secs(20));
    let start = Instant::now();
    while std::fs::metadata(&series).map_or(true, |m| m.len() == 0)
        || !std::fs::read_to_string(&log)
            .unwrap()
            .contains("init engine")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "log or GPU series not written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let command_pid: i32 = std::fs::read_to_string(markers.join("ready"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // kill -9 benchkeep, then the command it left behind.
    bk_child.kill().unwrap();
    let status = bk_child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // SAFETY: the pid of the command our benchkeep started (its child; not reaped by us).
    unsafe {
        libc::kill(command_pid, libc::SIGKILL);
    }

    // What the store holds: the running metadata, and the log and series under the id.
    let m = only_metadata(&store);
    assert_eq!(m["status"], "running");
    assert_eq!(m["pid"], bk_pid);
    assert!(id.starts_with("p-m-3-"), "planned requests in the id: {id}");
    assert_eq!(m["test"]["num_requests"], 3);
    assert_eq!(m["platform"], "p");
    assert_eq!(m["model"], "m");
    assert_eq!(m["labels"]["case"], "kill9");
    assert_eq!(m["config"]["max_model_len"], 1024);
    assert_eq!(m["source"]["kind"], "record");
    let command = m["source"]["command"].as_str().unwrap();
    assert!(command.contains("fake_run_batch.py"), "{command}");
    assert!(command.contains("--api-key ***"), "{command}");
    assert_eq!(m["test"]["input_file"], input.to_str().unwrap());
    assert_eq!(m["test"]["results_file"], out.to_str().unwrap());
    assert_eq!(m["test"]["output_file"], format!("raw/{id}.log"));
    assert_eq!(m["command"]["log_file"], format!("raw/{id}.log"));
    assert_eq!(m["command"]["pid"], command_pid, "the command's pid");
    assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        raw_names(&store),
        [format!("{id}.gpu.jsonl"), format!("{id}.log")]
    );
    assert_no_temp_files(&store);
    for f in all_files(&store) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            memchr::memmem::find(&bytes, b"CANARY").is_none(),
            "{} holds a secret",
            f.display()
        );
    }

    // verify: one problem, the dead running run, fixed by `benchkeep recover <id>`.
    let assert = bk(&store).arg("verify").assert().code(1);
    let report = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        report.contains(&format!(
            "run {id} is marked running but its process ({bk_pid}) is gone"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("fix: benchkeep recover {id}\n")),
        "{report}"
    );
    assert!(report.contains(": 1 problem\n"), "{report}");

    // recover: what the command wrote before it died is imported, the log is kept as is.
    let chat = |i: u32| {
        format!(
            "{{\"id\":\"c{i}\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"x\"}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}}}\n"
        )
    };
    std::fs::write(&out, format!("{}{}", chat(1), chat(2))).unwrap();
    let log_before = std::fs::read(&log).unwrap();
    bk(&store).args(["recover", &id]).assert().success();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join(format!("metadata/{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(m["status"], "interrupted", "{m:#}");
    assert_eq!(m["test"]["num_requests"], 2);
    assert_eq!(m["results"]["success_count"], 2);
    assert_eq!(m["results"]["total_completion_tokens"], 14);
    assert_eq!(m["test"]["output_file"], format!("raw/{id}.jsonl"));
    assert_eq!(m["command"]["output"], "imported");
    assert_eq!(
        std::fs::read(store.join(format!("raw/{id}.jsonl"))).unwrap(),
        std::fs::read(&out).unwrap()
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        log_before,
        "the log is never cut"
    );
    bk(&store).arg("verify").assert().success();
}
