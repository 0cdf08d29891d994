//! A FIFO where the user names a file never blocks a command (src/userfile.rs): each
//! input flag given a named pipe with no writer stops at once with exit 2, naming the file
//! and saying it is a FIFO. Without the non-blocking open, each of these would wait for a
//! writer forever (the timeout turns that into a failure).

use std::path::Path;
use std::time::Duration;

use crate::support::bk;

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn every_input_flag_refuses_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("named-input");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let store = dir.path().join("s");
    // Nothing listens on port 9: a command that got past its inputs would fail with 5.
    let run = [
        "run",
        "--platform",
        "vllm",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [&run[..], &["--input", f]]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "--input",
        ),
        (
            [&run[..], &["--sharegpt", f]]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "--sharegpt",
        ),
        (
            [
                &run[..],
                &["--synthetic", "--input-tokens", &format!("@{f}")],
            ]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "--input-tokens",
        ),
        (
            [
                &run[..],
                &[
                    "--synthetic",
                    "--input-tokens",
                    "8",
                    "--output-tokens",
                    "8",
                    "--config",
                    &format!("@{f}"),
                ],
            ]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "--config",
        ),
        (
            [
                "analyze",
                "--platform",
                "vllm",
                "--model",
                "m",
                "--input",
                f,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "analyze --input",
        ),
    ];
    for (args, what) in cases {
        let out = bk(&store)
            .args(&args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("FIFO"), "{what} says what it is: {err}");
        assert!(err.contains("named-input"), "{what} names the file: {err}");
    }
    assert!(
        !store.join("metadata").exists()
            || std::fs::read_dir(store.join("metadata")).unwrap().count() == 0,
        "nothing stored"
    );
}
