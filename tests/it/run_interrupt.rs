//! `benchkeep run` stopped halfway: Ctrl-C (requests in flight finish, or are recorded as
//! aborted once `--grace` expires), a file-size limit, and a final metadata write that
//! fails. Every request sent keeps its record, and the store stays consistent.

use std::process::Stdio;
use std::time::Duration;

use crate::support::api::schema::{ErrorKind, Status};
use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{fast_exact, start_blocking, timed};
use crate::support::store::{find_raw, line_count, only_run, raw_path, records};
use crate::support::{bk_std, out, wait_until};

/// SIGINT: stop scheduling, let requests in flight finish, save everything, exit 130.
#[test]
fn sigint_finishes_as_interrupted_with_every_request_kept() {
    let sim = start_blocking(timed(Profile::Vllm, 5.0, 20.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "10")
        .args(["--num-requests", "1000", "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "8 finished requests", || {
        find_raw(&store).is_some_and(|p| line_count(&p) >= 8)
    });
    // SAFETY: sending SIGINT to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("Interrupted"), "{err}");
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Interrupted);
    assert_eq!(m.pid, None);
    let recs = records(&raw_path(&store, &m));
    assert!(recs.len() >= 8 && recs.len() < 1000, "{}", recs.len());
    assert_eq!(m.results.success_count, recs.len() as u64);
    assert_eq!(
        m.test.raw_bytes,
        Some(std::fs::metadata(raw_path(&store, &m)).unwrap().len())
    );
    // The requests in flight were allowed to finish: the server finished exactly those kept.
    assert_eq!(sim.stats().completed, recs.len() as u64);
    assert!(store.join("reports/COMPARISON.md").is_file());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Status: interrupted"), "{stdout}");
    // verify finds nothing wrong
    let (code, vout, verr) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vout}{verr}");
}

/// A file-size limit (`ulimit -f`) hit mid-run: not killed by SIGXFSZ, a store error
/// (exit 4), and the raw log is a clean prefix that its metadata describes exactly.
#[test]
fn file_size_limit_stops_the_run_with_a_clean_prefix() {
    use std::os::unix::process::CommandExt;
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut cmd = bk_std(&store);
    cmd.args([
        "run",
        "--platform",
        "vllm",
        "--model",
        "sim-model",
        "--base-url",
        &sim.base_url(),
        "--synthetic",
        "--input-tokens",
        "4",
        "--output-tokens",
        "16",
        "--num-requests",
        "2000",
        "--concurrency",
        "4",
    ]);
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let (code, stdout, err) = out(&mut cmd);
    assert_eq!(code, 4, "{stdout}{err}");
    assert!(err.contains("file size limit"), "{err}");
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Interrupted);
    let raw = raw_path(&store, &m);
    let recs = records(&raw);
    assert!(!recs.is_empty() && recs.len() < 2000);
    assert_eq!(m.results.success_count, recs.len() as u64);
    assert_eq!(
        m.test.raw_bytes,
        Some(std::fs::metadata(&raw).unwrap().len())
    );
    let (code, vout, verr) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vout}{verr}");
}

/// The final metadata cannot be written (here: `metadata/` replaced by a file mid-run, as
/// root ignores permissions): no "Saved metadata", a clear error naming `recover`, exit 4;
/// the raw log keeps every request and `recover` finishes the run afterwards.
#[test]
fn failed_final_metadata_write_is_not_reported_as_saved() {
    let sim = start_blocking(timed(Profile::Vllm, 1.0, 20.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "10")
        .args(["--num-requests", "6", "--concurrency", "1", "--gpu", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "a finished request", || {
        find_raw(&store).is_some_and(|p| line_count(&p) >= 1)
    });
    let meta_dir = store.join("metadata");
    let moved = store.join("metadata.moved");
    std::fs::rename(&meta_dir, &moved).unwrap();
    std::fs::write(&meta_dir, "not a directory").unwrap();
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stdout}{err}");
    assert!(!stdout.contains("Saved metadata"), "{stdout}");
    assert!(!stdout.contains("Status:"), "{stdout}");
    std::fs::remove_file(&meta_dir).unwrap();
    std::fs::rename(&moved, &meta_dir).unwrap();
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Running, "the file on disk");
    assert!(err.contains("could not be finalized"), "{err}");
    assert!(err.contains("keeps the 6 finished requests"), "{err}");
    assert!(
        err.contains(&format!("`benchkeep recover {}`", m.test_id)),
        "{err}"
    );
    assert_eq!(records(&raw_path(&store, &m)).len(), 6);
    let (code, rout, rerr) = out(bk_std(&store).args(["recover", &m.test_id]));
    assert_eq!(code, 0, "{rout}{rerr}");
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Interrupted);
    assert_eq!(m.test.num_requests, 6);
}

/// Requests still in flight when `--grace` expires are recorded as `aborted` with the
/// timing known so far: every request sent has its record.
#[test]
fn requests_in_flight_after_grace_are_recorded_as_aborted() {
    let sim = start_blocking(timed(Profile::Vllm, 5.0, 50.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let child = run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "400")
        .args([
            "--num-requests",
            "50",
            "--concurrency",
            "3",
            "--grace",
            "100ms",
            "--gpu",
            "off",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "3 requests in flight", || {
        sim.stats().requests >= 3
    });
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sending SIGINT to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Interrupted);
    let recs = records(&raw_path(&store, &m));
    assert_eq!(recs.len(), 3, "one record per request sent: {recs:?}");
    assert_eq!(sim.stats().requests, 3);
    assert_eq!(m.test.num_requests, 3);
    assert_eq!(m.results.failure_count, 3);
    assert_eq!(m.results.errors_by_kind.get("aborted"), Some(&3));
    for r in &recs {
        assert!(!r.ok);
        assert_eq!(r.error_kind, Some(ErrorKind::Aborted));
        assert_eq!(
            r.error.as_deref(),
            Some("stopped by signal before it finished")
        );
        assert!(r.sent_s.is_some() && r.end_s.is_some(), "{r:?}");
        assert!(r.first_token_s.is_some(), "tokens had arrived: {r:?}");
        assert!(r.chunks.unwrap_or(0) > 0, "{r:?}");
    }
    let (code, vout, verr) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vout}{verr}");
}
