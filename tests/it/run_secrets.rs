//! `benchkeep run` never writes or prints a secret: keys from the environment, headers,
//! the URL's user:password (also when a server echoes it back) and query strings.

use crate::support::api::client::base64;
use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::hostile::{Hostile, hostile};
use crate::support::sim::{fast_exact, start_blocking};
use crate::support::store::{all_files, only_run, records};
use crate::support::{bk_std, out};

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
