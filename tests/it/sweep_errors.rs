//! `benchkeep sweep` refusing bad input (exit 2, the flag named), an unreachable server
//! (exit 5, nothing written), and stopping on errors (`--max-error-rate`).

use crate::support::api::sim::Profile;
use crate::support::out;
use crate::support::sim::{start_blocking, timed};
use crate::support::sweeps::{assert_schema, points, sweep_synthetic};

#[test]
fn bad_flags_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = "http://127.0.0.1:9";
    for (extra, needle) in [
        (vec![], "give the load axis"),
        (vec!["--concurrency", "4,2"], "rise strictly"),
        (vec!["--concurrency", "1..8"], "needs a step"),
        (vec!["--rate", "0,1"], "must be > 0"),
        (vec!["--concurrency", "1,2", "--target", "90%"], "--target"),
        (vec!["--slo", "ttft_pxx=1s"], "_p"),
        (vec!["--slo", "ttft=1s", "--target", "150%"], "--target"),
        (
            vec!["--concurrency", "1,2", "--arrival", "constant"],
            "--rate",
        ),
    ] {
        let (code, o, e) = out(sweep_synthetic(&store, "vllm", url, "4").args(&extra));
        assert_eq!(code, 2, "{extra:?}: {o}{e}");
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    assert!(!store.exists(), "nothing written for bad flags");
}

#[test]
fn unreachable_server_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) =
        out(sweep_synthetic(&store, "vllm", "http://127.0.0.1:9", "4")
            .args(["--concurrency", "1,2"]));
    assert_eq!(code, 5, "{o}{e}");
    assert!(points(&store).is_empty());
}

#[test]
fn too_many_errors_stop_the_sweep() {
    let mut c = timed(Profile::Vllm, 1.0, 1.0);
    c.faults.error_rate = 0.8;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(sweep_synthetic(&store, "vllm", &sim.base_url(), "4").args([
        "--num-requests",
        "40",
        "--rate",
        "50,100",
        "--max-error-rate",
        "0.3",
    ]));
    let p = points(&store);
    assert_eq!(p.len(), 1, "{o}{e}");
    assert_eq!(p[0]["sweep"]["stop"]["rule"], "error_rate");
    assert_schema(&p[0]);
    assert!(e.contains("--max-error-rate"), "{e}");
    // Some requests succeeded: a stop is a finding, not a failure.
    assert_eq!(code, 0, "{o}{e}");
}
