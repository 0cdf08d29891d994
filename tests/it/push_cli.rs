//! `push mlflow` without a server: an unreachable tracking URI, `--dry-run`, nothing to
//! push, and bad URIs; credentials never printed.

use crate::support::api::store::Store;
use crate::support::bk;
use crate::support::report::{Spec, publish};

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    store.ensure_layout().unwrap();
    publish(&store, &Spec::new("vllm", "m", "2026-01-02T10:00:00Z", 1.0));
    dir
}

#[test]
fn an_unreachable_server_is_exit_5_naming_it() {
    let dir = store();
    let port = crate::support::free_port();
    let out = bk(dir.path())
        .args([
            "push",
            "mlflow",
            "--tracking-uri",
            &format!("http://u:pw-secret@127.0.0.1:{port}"),
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot be reached"),
        "{err}"
    );
    assert!(!err.contains("pw-secret"), "{err}");
}

#[test]
fn dry_run_lists_and_sends_nothing_and_bad_uris_are_usage_errors() {
    let dir = store();
    let port = crate::support::free_port();
    let out = bk(dir.path())
        .args([
            "push",
            "mlflow",
            "--dry-run",
            "--tracking-uri",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("would push vllm-m-"));
    let out = bk(dir.path())
        .args(["push", "mlflow", "--tracking-uri", "file:///tmp/mlruns"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http:// and https://"));
    let out = bk(dir.path())
        .args([
            "push",
            "mlflow",
            "--platform",
            "nothing-like-this",
            "--tracking-uri",
            "http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
