//! Process identity (RELIABILITY P4, P12): a run's writer is recorded as pid + start time +
//! boot id + host, and a crashed run whose pid now belongs to another process is still
//! found by `verify` and finished by `recover`. Old metadata without the identity keeps the
//! pid-only check.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::store::{crashed_run, read_json};
use crate::support::{bk_std, out};

/// A live process unrelated to benchkeep, killed when dropped.
struct Sleeper(std::process::Child);
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn sleeper() -> Sleeper {
    Sleeper(
        Command::new("sleep")
            .arg("60")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn set(path: &std::path::Path, f: impl FnOnce(&mut Value)) {
    let mut v = read_json(path);
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_reused_pid_does_not_hide_a_dead_run() {
    let live = sleeper();
    let pid = live.0.id();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (id, _) = crashed_run(&store, 4, pid);
    let meta = store.join(format!("metadata/{id}.json"));
    // The run's writer started long before the process that now has its pid.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    set(&meta, |v| {
        v["process"] = json!({"pid": pid, "start_time": 1, "boot_id": boot.trim(), "host": v["host"]["hostname"]});
    });
    let (code, vout, _) = out(bk_std(&store).arg("verify"));
    assert_ne!(code, 0, "{vout}");
    assert!(
        vout.contains("is gone") && vout.contains("benchkeep recover"),
        "{vout}"
    );
    let (code, stdout, err) = out(bk_std(&store).arg("recover"));
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("Recovered: 4"), "{stdout}");
    let v = read_json(&meta);
    assert_eq!(v["status"], "interrupted");
    assert!(v.get("process").is_none() && v.get("pid").is_none(), "{v}");

    // Another boot: gone too, even with the same start time.
    let (id, _) = crashed_run(&dir.path().join("t"), 2, pid);
    let meta = dir.path().join(format!("t/metadata/{id}.json"));
    let start: u64 = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    set(&meta, |v| {
        v["process"] =
            json!({"pid": pid, "start_time": start, "boot_id": "an-earlier-boot", "host": "h"});
    });
    let (code, vout, _) = out(bk_std(&dir.path().join("t")).arg("verify"));
    assert_ne!(code, 0, "{vout}");
    assert!(vout.contains("is gone"), "{vout}");
}

#[test]
fn old_metadata_without_identity_keeps_the_pid_check() {
    let live = sleeper();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (id, _) = crashed_run(&store, 2, live.0.id());
    let (_, vout, _) = out(bk_std(&store).arg("verify"));
    assert!(!vout.contains("is gone"), "the pid is alive: {vout}");
    let (code, stdout, err) = out(bk_std(&store).args(["recover", &id]));
    assert_eq!(code, 2, "{stdout}{err}");
    assert!(err.contains("still running"), "{err}");
}

#[test]
fn a_run_records_its_identity_while_running() {
    use crate::support::api::sim::Profile;
    use crate::support::cmd::run_synthetic;
    use crate::support::sim::{start_blocking, timed};
    let sim = start_blocking(timed(Profile::Vllm, 5.0, 15.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "8")
        .args(["--num-requests", "1000", "--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = None;
    crate::support::wait_until(
        std::time::Duration::from_secs(20),
        "running metadata",
        || {
            seen = crate::support::store::metadata_json_files(&store)
                .first()
                .map(|p| read_json(p))
                .filter(|v| v["status"] == "running");
            seen.is_some()
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let v = seen.unwrap();
    let p = &v["process"];
    assert_eq!(p["pid"], json!(pid), "{v}");
    assert!(
        p["start_time"].is_u64() && p["boot_id"].is_string() && p["host"].is_string(),
        "{p}"
    );
    // And kill -9 then recover still works with it.
    let (code, stdout, err) = out(bk_std(&store).arg("recover"));
    assert_eq!(code, 0, "{stdout}{err}");
}
