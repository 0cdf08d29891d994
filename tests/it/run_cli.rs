//! `benchkeep run` as a user runs it: exit codes and messages for bad flags, an
//! unreachable server, an unwritable store, no secret anywhere, and Ctrl-C.

use std::process::Stdio;
use std::time::Duration;

use crate::support::api::client::base64;
use crate::support::api::schema::{ErrorKind, Metadata, Status};
use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::hostile::{Hostile, hostile};
use crate::support::sim::{fast_exact, start_blocking, timed};
use crate::support::store::{all_files, find_raw, line_count, only_run, raw_path, records};
use crate::support::{bk_std, out, wait_until};

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

/// A canary key in the environment, a header and the URL: none of it reaches the store,
/// stdout or stderr.
#[test]
fn secrets_never_written() {
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = format!("http://user:CANARY-url@{}", sim.addr());
    let (code, stdout, err) = out(bk_std(&store)
        .env("OPENAI_API_KEY", "sk-CANARY-env")
        .env("BENCHKEEP_TEST_KEY", "sk-CANARY-var")
        .args([
            "run",
            "--platform",
            "vllm",
            "--model",
            "sim-model",
            "--base-url",
            &url,
            "--synthetic",
            "--input-tokens",
            "4",
            "--output-tokens",
            "4",
            "--num-requests",
            "3",
            "--header",
            "X-Api-Token: CANARY-header",
            "--header=X-Other: CANARY-header2",
            "--api-key-env",
            "BENCHKEEP_TEST_KEY",
            "--save-text",
        ]));
    assert_eq!(code, 0, "{err}");
    // a failing run prints error messages too
    let (code2, stdout2, err2) = out(bk_std(&store).env("OPENAI_API_KEY", "sk-CANARY-env").args([
        "run",
        "--platform",
        "vllm",
        "--model",
        "other-model",
        "--base-url",
        &url,
        "--synthetic",
        "--input-tokens",
        "4",
        "--output-tokens",
        "4",
        "--header",
        "Authorization: Bearer CANARY-auth",
    ]));
    assert_eq!(code2, 5, "{err2}");
    let printed = format!("{stdout}{err}{stdout2}{err2}");
    assert!(!printed.contains("CANARY"), "{printed}");
    let files = all_files(&store);
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("CANARY"),
            "{} leaks a secret",
            f.display()
        );
    }
    let (_, m) = only_run(&store);
    let cmd = m.source.command.unwrap();
    assert!(
        cmd.contains("X-Api-Token: ***") && cmd.contains("***@"),
        "{cmd}"
    );
}

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

/// Every file of `store` and everything printed: none may contain `needle`.
fn assert_nowhere(store: &std::path::Path, printed: &str, needle: &str) {
    assert!(!printed.contains(needle), "printed: {printed}");
    for f in all_files(store) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(needle),
            "{} leaks {needle}",
            f.display()
        );
    }
}

/// A server whose 400 body echoes the request headers: the `Basic <base64>` of the URL's
/// `user:password` is scrubbed like a Bearer key; with `$OPENAI_API_KEY` set as well, one
/// warning says which credentials are sent.
#[test]
fn basic_auth_echoed_in_an_error_body_is_scrubbed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(hostile(Hostile::EchoHeaders400));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = format!("http://u:CANARYPW2@{addr}");
    let args = [
        "run",
        "--platform",
        "x",
        "--model",
        "m",
        "--base-url",
        &url,
        "--synthetic",
        "--input-tokens",
        "4",
        "--output-tokens",
        "4",
        "--num-requests",
        "2",
        "--gpu",
        "off",
    ];
    let (code, stdout, err) = out(bk_std(&store).args(args));
    assert_eq!(code, 1, "every request gets a 400: {err}");
    assert!(!err.contains("warning: several credentials"), "{err}");
    let (code2, stdout2, err2) = out(bk_std(&store)
        .env("OPENAI_API_KEY", "sk-CANARYENV")
        .args(args));
    assert_eq!(code2, 1, "{err2}");
    let printed = format!("{stdout}{err}{stdout2}{err2}");
    // The echo reached the raw logs, scrubbed.
    let raws: Vec<_> = all_files(&store.join("raw"));
    assert_eq!(raws.len(), 2, "{raws:?}");
    let b64 = base64(b"u:CANARYPW2");
    assert_nowhere(&store, &printed, &b64);
    assert_nowhere(&store, &printed, "CANARY");
    for raw in &raws {
        let recs = records(raw);
        assert_eq!(recs.len(), 2);
        for r in recs {
            let e = r.error.unwrap();
            assert!(e.contains("'authorization': '***'"), "{e}");
        }
    }
    let warning = "warning: several credentials given; sending the --base-url user:password (Basic), not the API key from $OPENAI_API_KEY (Bearer)";
    assert!(err2.contains(warning), "{err2}");
}

/// A query string in `--base-url` is refused (exit 2) without echoing its values.
#[test]
fn query_secret_in_base_url_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    for url in [
        "http://127.0.0.1:44469/v1?api-key=CANARYQS1",
        "http://u:CANARYPW@127.0.0.1:44469/v1?CANARYQS2#CANARYFR",
    ] {
        let (code, stdout, err) = out(&mut run_synthetic(&store, "vllm", "m", url, "4", "4"));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("must not have a query"), "{err}");
        assert!(!format!("{stdout}{err}").contains("CANARY"), "{err}");
    }
    let (_, _, err) = out(&mut run_synthetic(
        &store,
        "vllm",
        "m",
        "http://127.0.0.1:44469/v1?api-key=CANARYQS1",
        "4",
        "4",
    ));
    assert!(
        err.contains("http://127.0.0.1:44469/v1?api-key=***"),
        "{err}"
    );
    assert!(!store.exists());
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
