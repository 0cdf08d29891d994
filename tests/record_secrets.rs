//! Secrets in the recorded command line (and in the environment the command prints) never
//! reach the store, and benchkeep never prints them itself (RELIABILITY.md P9).

#[path = "fixtures/record/support.rs"]
mod support;

use support::*;

#[test]
fn canaries_never_reach_the_store_or_benchkeeps_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let mut cmd = benchkeep(&store);
    cmd.env("BENCH_API_KEY", "CANARY-env-only-0000")
        .args([
            "record",
            "--platform",
            "p",
            "--model",
            "m",
            "--gpu",
            "off",
            "--output",
            out.to_str().unwrap(),
            "--",
            "env",
            "HF_TOKEN=CANARY-assign-1111",
        ])
        .args(fake_batch(&[
            "--api-key",
            "CANARY-flag-2222",
            "--url",
            "http://user:CANARY-url-3333@127.0.0.1:9/v1",
            "--echo-secrets",
            "--no-output",
            "--exit",
            "4",
            "--sleep",
            "0.05",
        ]));
    let assert = cmd.assert().code(4);
    let output = assert.get_output();
    // Only the command's own passthrough lines (marked CHILD:) may carry the canaries.
    for stream in [&output.stdout, &output.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            if line.contains("CANARY") {
                assert!(
                    line.starts_with("CHILD:"),
                    "benchkeep printed a secret: {line}"
                );
            }
        }
    }
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("CHILD: argv"),
        "the command's output is passed through"
    );

    let files = files_under(&store);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            memchr::memmem::find(&bytes, b"CANARY").is_none(),
            "{} holds a secret:\n{}",
            f.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
    let m = only_metadata(&store);
    let command = m["source"]["command"].as_str().unwrap();
    assert!(command.contains("HF_TOKEN=***"), "{command}");
    assert!(command.contains("--api-key ***"), "{command}");
    assert!(command.contains("http://***@127.0.0.1:9/v1"), "{command}");
    let id = m["test_id"].as_str().unwrap();
    let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
    assert!(log.contains("CHILD: env HF_TOKEN=***"), "{log}");
    assert!(log.contains("CHILD: env BENCH_API_KEY=***"), "{log}");
    assert!(log.contains("'api_key': '***'"), "{log}");
}
