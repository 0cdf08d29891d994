//! `benchkeep run` as a user runs it: exit codes and messages for bad flags, an
//! unreachable server, an unwritable store, a failed run, oversized input files, and
//! several runs into one store at once.

use std::process::Stdio;

use crate::support::api::schema::{Metadata, Status};
use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{fast_exact, start_blocking};
use crate::support::store::{only_run, raw_path, records};
use crate::support::{bk_std, out};

const BASE: [&str; 6] = [
    "--platform",
    "vllm",
    "--model",
    "m",
    "--base-url",
    "http://127.0.0.1:9",
];

#[test]
fn bad_flags_name_the_flag_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let syn = ["--synthetic", "--input-tokens", "8", "--output-tokens", "8"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--rate", "0"], "--rate 0: must be > 0"),
        (
            vec!["--concurrency", "0"],
            "--concurrency 0: must be at least 1",
        ),
        (vec!["--num-requests", "0"], "--num-requests 0"),
        (vec!["--burstiness", "2"], "add --rate"),
        (
            vec!["--rate", "5", "--arrival", "constant", "--burstiness", "2"],
            "--burstiness applies to --arrival poisson",
        ),
        (vec!["--slo", "ttfb=1s"], "unknown SLO"),
        (vec!["--timeout", "soon"], "not a duration"),
        (vec!["--api", "grpc"], "unknown API"),
        (
            vec!["--api-key-env", "BENCHKEEP_TEST_UNSET_VAR"],
            "$BENCHKEEP_TEST_UNSET_VAR is not set",
        ),
        (vec!["--header", "no-colon"], "expected 'Name: value'"),
        (vec!["--config", "{bad"], "--config: not valid JSON"),
    ];
    for (extra, want) in cases {
        let (code, _, err) = out(bk_std(&store).arg("run").args(BASE).args(syn).args(&extra));
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let (code, _, err) = out(bk_std(&store).arg("run").args(BASE));
    assert_eq!(code, 2);
    assert!(
        err.contains("--input FILE") && err.contains("--synthetic"),
        "{err}"
    );
    let (code, _, err) = out(bk_std(&store).arg("run").args(BASE).args(["--synthetic"]));
    assert_eq!(code, 2);
    assert!(err.contains("--input-tokens"), "{err}");
    let missing = dir.path().join("nope.jsonl");
    let (code, _, err) = out(bk_std(&store)
        .arg("run")
        .args(BASE)
        .arg("--input")
        .arg(&missing));
    assert_eq!(code, 2);
    assert!(err.contains("nope.jsonl"), "{err}");
    assert!(!store.exists(), "nothing is written for bad flags");
}

#[test]
fn unreachable_server_is_exit_5_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // A port nobody listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:CANARY-url@127.0.0.1:{port}");
    let (code, stdout, err) = out(&mut run_synthetic(&store, "vllm", "m", &url, "4", "4"));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    assert!(!format!("{stdout}{err}").contains("CANARY"), "{err}");
    assert!(!store.exists(), "nothing was written");
}

#[test]
fn unwritable_store_fails_before_any_request() {
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    // A store below a regular file can never be created (root ignores mode bits).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let store = blocker.join("store");
    let (code, _, err) = out(&mut run_synthetic(
        &store,
        "vllm",
        "sim-model",
        &sim.base_url(),
        "4",
        "4",
    ));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("cannot create directory"), "{err}");
    assert_eq!(sim.stats().requests, 0, "no generation request was sent");
}

#[test]
fn summary_and_exit_code_of_a_failed_run() {
    let mut c = fast_exact(Profile::Vllm);
    c.faults.error_rate = 1.0;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, stdout, err) =
        out(
            run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "4")
                .args(["--num-requests", "4"]),
        );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("every request failed (most often: http_status)"),
        "{err}"
    );
    assert!(
        stdout.contains("Requests: 0/4") && stdout.contains("Status: failed"),
        "{stdout}"
    );
    assert!(stdout.contains("Errors: http_status: 4"), "{stdout}");
    let (_, m) = only_run(&store);
    assert_eq!(m.status, Status::Failed);
}

/// Several runs into one store at once: distinct ids, every file whole, each run listed once.
#[test]
fn concurrent_runs_into_one_store() {
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let children: Vec<_> = (0..4)
        .map(|_| {
            run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "4", "4")
                .args(["--num-requests", "20", "--concurrency", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut ids = Vec::new();
    for f in std::fs::read_dir(store.join("metadata")).unwrap() {
        let m: Metadata =
            serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
        assert_eq!(records(&raw_path(&store, &m)).len(), 20);
        ids.push(m.test_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let (code, vout, verr) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{vout}{verr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("analysis/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["run_count"], 4);
}

/// An input file over 1 GiB, or with a line over 64 MiB, is a usage error naming the file
/// (and the line) before it is read into memory. Sparse files: no disk space used.
#[test]
fn oversized_input_files_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let big = dir.path().join("big.jsonl");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    let long = dir.path().join("long.jsonl");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&long).unwrap();
        writeln!(f, r#"{{"prompt": "ok"}}"#).unwrap();
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&long)
        .unwrap();
    f.set_len(65 << 20).unwrap();
    for (file, want) in [
        (&big, "larger than 1 GiB".to_string()),
        (&long, "line 2: longer than 64 MiB".to_string()),
    ] {
        let (code, _, err) = out(bk_std(&store)
            .arg("run")
            .args(BASE)
            .arg("--input")
            .arg(file));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(err.contains(&want), "{err}");
    }
    assert!(!store.exists());
}
