//! A sweep killed with SIGKILL mid-point, then `--resume`: every finished point is kept,
//! the cut-off point is recovered (not rerun), only the missing points run, and the store
//! verifies. SIGINT stops a sweep resumably with exit 130.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::api::sim::Profile;
use crate::support::sim::{start_blocking, timed};
use crate::support::store::line_count;
use crate::support::sweeps::{points, sweep_synthetic};
use crate::support::{bk_std, out, wait_until};

fn args(c: &mut Command) -> &mut Command {
    c.args([
        "--num-requests",
        "20",
        "--concurrency",
        "1,2,3,4",
        "--no-early-stop",
    ])
}

/// The raw log of the point with `index`, once its metadata exists.
fn point_lines(store: &std::path::Path, index: u64) -> usize {
    points(store)
        .iter()
        .find(|m| m["sweep"]["index"] == index)
        .map_or(0, |m| {
            let raw = store.join(m["test"]["output_file"].as_str().unwrap());
            if raw.exists() { line_count(&raw) } else { 0 }
        })
}

#[test]
fn kill_9_then_resume_runs_only_the_missing_points() {
    let sim = start_blocking(timed(Profile::Vllm, 2.0, 8.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = args(&mut sweep_synthetic(&store, "vllm", &sim.base_url(), "10"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "point 1 half done", || {
        point_lines(&store, 1) >= 3
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = points(&store);
    assert_eq!(before.len(), 2);
    assert_eq!(before[0]["status"], "completed");
    assert_eq!(before[1]["status"], "running");
    let id = before[0]["sweep"]["id"].as_str().unwrap().to_string();

    // Other flags: refused, nothing changed.
    let (code, _, e) = out(sweep_synthetic(&store, "vllm", &sim.base_url(), "10")
        .args([
            "--num-requests",
            "20",
            "--concurrency",
            "1,2,3,8",
            "--no-early-stop",
        ])
        .args(["--resume", &id]));
    assert_eq!(code, 2, "{e}");
    assert!(
        e.contains("different sweep") && e.contains("--resume"),
        "{e}"
    );
    assert_eq!(points(&store)[1]["status"], "running");
    let (code, _, e) = out(
        args(&mut sweep_synthetic(&store, "vllm", &sim.base_url(), "10"))
            .args(["--resume", "sweep-nope"]),
    );
    assert_eq!(code, 3, "{e}");

    let (code, o, e) = out(
        args(&mut sweep_synthetic(&store, "vllm", &sim.base_url(), "10")).args(["--resume", &id]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let after = points(&store);
    let mut by_index: BTreeMap<u64, usize> = BTreeMap::new();
    for m in &after {
        assert_eq!(m["sweep"]["id"], id.as_str());
        *by_index
            .entry(m["sweep"]["index"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        by_index,
        BTreeMap::from([(0, 1), (1, 1), (2, 1), (3, 1)]),
        "no point twice"
    );
    assert_eq!(after[0]["test_id"], before[0]["test_id"]);
    assert_eq!(
        after[0]["results"], before[0]["results"],
        "a finished point is not touched"
    );
    assert_eq!(after[1]["test_id"], before[1]["test_id"]);
    assert_eq!(after[1]["status"], "interrupted");
    assert!(after[1]["test"]["recovered"].is_object());
    assert_eq!(after[2]["status"], "completed");
    assert_eq!(after[3]["status"], "completed");
    assert!(o.contains("stored, recovered"), "{o}");
    assert!(e.contains("Recovered point"), "{e}");
    let (code, vo, ve) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vo}{ve}");

    // Resuming a finished sweep runs nothing.
    let (code, o, e) = out(
        args(&mut sweep_synthetic(&store, "vllm", &sim.base_url(), "10")).args(["--resume", &id]),
    );
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(points(&store).len(), 4);
}

#[test]
fn sigint_stops_the_sweep_resumably() {
    let sim = start_blocking(timed(Profile::Vllm, 2.0, 8.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let child = args(&mut sweep_synthetic(&store, "vllm", &sim.base_url(), "10"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "point 1 started", || {
        point_lines(&store, 1) >= 2
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume sweep-vllm-sim-model-"), "{err}");
    let p = points(&store);
    assert_eq!(p.len(), 2);
    assert_eq!(p[1]["status"], "interrupted");
}
