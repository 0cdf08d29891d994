//! Ctrl-C and SIGTERM sent to `benchkeep record` reach the command, and the run is recorded
//! as `interrupted` with what the command saved.

#[path = "fixtures/record/support.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

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
    let mut child = Command::new(bin())
        .env_remove("BENCHKEEP_STORE")
        .arg("--store")
        .arg(store)
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
    assert!(id.starts_with("vllm-offline-gemma3-4b-2-"), "{id}");
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
