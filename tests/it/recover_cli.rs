//! `benchkeep recover`: after `kill -9`, a run is finished from its raw log without losing
//! a request the server finished (except those in flight); a torn tail is moved aside,
//! never deleted; corruption in the middle is reported, not cut.

use std::process::Stdio;
use std::time::Duration;

use crate::support::api::schema::{Metadata, Status};
use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{fast_exact, start_blocking, timed};
use crate::support::store::{find_raw, line_count, only_run, raw_path, records};
use crate::support::{bk_std, out, wait_until};

fn write_meta(path: &std::path::Path, m: &Metadata) {
    std::fs::write(path, serde_json::to_vec_pretty(m).unwrap()).unwrap();
}

#[test]
fn kill_9_then_recover_keeps_every_finished_request() {
    let concurrency = 4u64;
    let sim = start_blocking(timed(Profile::Vllm, 5.0, 15.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "8")
        .args(["--num-requests", "1000", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "12 finished requests", || {
        find_raw(&store).is_some_and(|p| line_count(&p) >= 12)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server notices the dropped connections; then nothing changes any more.
    std::thread::sleep(Duration::from_millis(200));
    let finished_by_server = sim.stats().completed;

    let (meta_path, m) = only_run(&store);
    assert_eq!(
        m.status,
        Status::Running,
        "kill -9 leaves the run marked running"
    );
    assert!(m.pid.is_some());
    let raw = raw_path(&store, &m);
    let good = std::fs::read(&raw).unwrap();
    // What a crash in the middle of a write leaves behind.
    let torn = br#"{"seq":99999,"ok":true,"completion_tok"#;
    let mut with_tail = good.clone();
    with_tail.extend_from_slice(torn);
    std::fs::write(&raw, &with_tail).unwrap();

    // verify sees the dead run and names the fix
    let (code, vout, _) = out(bk_std(&store).arg("verify"));
    assert_ne!(code, 0);
    assert!(vout.contains("benchkeep recover"), "{vout}");

    let (code, stdout, err) = out(bk_std(&store).arg("recover"));
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("Recovered:") && stdout.contains("Torn tail:"),
        "{stdout}"
    );
    let m: Metadata = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(m.status, Status::Interrupted);
    assert_eq!(m.pid, None);
    assert_eq!(
        std::fs::read(&raw).unwrap(),
        good,
        "the raw log is the good prefix again"
    );
    let aside = raw.with_file_name(format!(
        "{}.torn-{}",
        raw.file_name().unwrap().to_string_lossy(),
        good.len()
    ));
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        torn,
        "the torn tail is kept aside"
    );
    let recs = records(&raw);
    assert_eq!(m.results.success_count, recs.len() as u64);
    assert_eq!(m.test.num_requests, recs.len() as u64);
    assert!(
        recs.len() as u64 + concurrency >= finished_by_server,
        "kept {} of {finished_by_server} finished by the server",
        recs.len()
    );
    assert!(store.join("reports/COMPARISON.md").is_file());

    // the store is clean now, and a second recover has nothing to do
    let (code, vout, verr) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vout}{verr}");
    let (code, stdout, _) = out(bk_std(&store).arg("recover"));
    assert_eq!(code, 0);
    assert!(stdout.contains("Nothing to recover"), "{stdout}");
    let (code, _, err) = out(bk_std(&store).args(["recover", &m.test_id]));
    assert_eq!(code, 2);
    assert!(err.contains("already finished"), "{err}");
}

#[test]
fn corruption_in_the_middle_is_reported_not_cut_and_live_runs_are_left_alone() {
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, _, err) = out(
        run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "4")
            .args(["--num-requests", "5"]),
    );
    assert_eq!(code, 0, "{err}");
    let (meta_path, mut m) = only_run(&store);
    let raw = raw_path(&store, &m);

    // A run whose process is alive (this test's own pid) is not touched.
    m.status = Status::Running;
    m.pid = Some(std::process::id());
    write_meta(&meta_path, &m);
    let (code, stdout, _) = out(bk_std(&store).arg("recover"));
    assert_eq!(code, 0);
    assert!(stdout.contains("Nothing to recover"), "{stdout}");
    let (code, _, err) = out(bk_std(&store).args(["recover", &m.test_id]));
    assert_eq!(code, 2);
    assert!(err.contains("still running"), "{err}");

    // Its process gone, with line 3 damaged: finished, the line reported and kept.
    m.pid = None;
    write_meta(&meta_path, &m);
    let text = std::fs::read_to_string(&raw).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = "#### damaged ####".into();
    let damaged = format!("{}\n", lines.join("\n"));
    std::fs::write(&raw, &damaged).unwrap();
    let (code, stdout, err) = out(bk_std(&store).args(["recover", &m.test_id[..12]]));
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(
        err.contains(":3 (byte") && err.contains("left in place"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&raw).unwrap(),
        damaged,
        "nothing is cut"
    );
    let m: Metadata = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(m.status, Status::Interrupted);
    assert_eq!(m.results.success_count, 4);
    assert_eq!(m.results.unparseable_lines, 1);
}
