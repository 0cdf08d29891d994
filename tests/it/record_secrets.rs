//! Secrets in the recorded command line (and in the environment the command prints) never
//! reach the store, and benchkeep never prints them itself (RELIABILITY.md P9).

use crate::support::cmd::{fake_batch, python};
use crate::support::store::{all_files, all_metadata, only_metadata, read_rel};
use crate::support::{bk, fixture};

#[test]
fn canaries_never_reach_the_store_or_benchkeeps_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let mut cmd = bk(&store);
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

    let files = all_files(&store);
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

/// Secrets inside a shell command string (`sh -c "... --api-key X ..."`) are cut from the
/// stored command line and from the log, word by word, the rest of the string kept.
#[test]
fn canaries_inside_shell_command_strings_never_reach_the_store() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // A `curl` that only echoes its arguments (as a verbose tool would print them).
    let fakebin = dir.path().join("fakebin");
    std::fs::create_dir(&fakebin).unwrap();
    std::fs::write(fakebin.join("curl"), "#!/bin/sh\necho \"CHILD: curl $*\"\n").unwrap();
    std::fs::set_permissions(fakebin.join("curl"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fakebin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fake = format!(
        "'{}' '{}'",
        python(),
        fixture("record/fake_run_batch.py").display()
    );
    let out = |n: u32| dir.path().join(format!("out{n}.jsonl"));
    let o = |n: u32| out(n).display().to_string();
    let runs: [(&str, String, &str); 3] = [
        (
            "sh",
            format!(
                "{fake} -o '{}' --api-key CANARY1 --echo-secrets --sleep 0.05",
                o(1)
            ),
            "--api-key ***",
        ),
        (
            "bash",
            format!(
                "OPENAI_API_KEY=CANARY2 {fake} -o '{}' --echo-secrets --sleep 0.05",
                o(2)
            ),
            "OPENAI_API_KEY=*** ",
        ),
        (
            "sh",
            format!(
                "curl -H 'Authorization: Bearer CANARY3' http://u:CANARY4@h/ && {fake} -o '{}' --sleep 0.05",
                o(3)
            ),
            "curl -H '\\''Authorization: Bearer ***'\\'' http://***@h/ && ",
        ),
    ];
    for (n, (shell, script, kept)) in runs.iter().enumerate() {
        let assert = bk(&store)
            .env("PATH", &path)
            .args([
                "record",
                "--platform",
                "p",
                "--model",
                "m",
                "--gpu",
                "off",
                "--output",
                &o(n as u32 + 1),
                "--",
                shell,
                "-c",
                script,
            ])
            .assert()
            .success();
        let output = assert.get_output();
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
        let all = all_metadata(&store);
        let m = all
            .iter()
            .find(|m| m["command"]["output_file"] == o(n as u32 + 1))
            .unwrap();
        let command = m["source"]["command"].as_str().unwrap();
        assert!(command.contains(kept), "{kept:?} not in {command}");
        assert!(command.starts_with(&format!("{shell} -c '")), "{command}");
        let id = m["test_id"].as_str().unwrap();
        let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
        assert!(log.contains("CHILD:"), "{log}");
    }
    let log_of = |n: usize| {
        let all = all_metadata(&store);
        let m = all
            .iter()
            .find(|m| m["command"]["output_file"] == o(n as u32))
            .unwrap()
            .clone();
        String::from_utf8(read_rel(&store, m["command"]["log_file"].as_str().unwrap())).unwrap()
    };
    assert!(log_of(1).contains("--api-key ***"), "{}", log_of(1));
    assert!(log_of(1).contains("'api_key': '***'"), "{}", log_of(1));
    assert!(
        log_of(2).contains("CHILD: env OPENAI_API_KEY=***"),
        "{}",
        log_of(2)
    );
    assert!(
        log_of(3).contains("CHILD: curl -H Authorization: Bearer *** http://***@h/"),
        "{}",
        log_of(3)
    );

    // grep -r CANARY over the store finds nothing.
    let files = all_files(&store);
    assert!(files.len() >= 9, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            memchr::memmem::find(&bytes, b"CANARY").is_none(),
            "{} holds a secret:\n{}",
            f.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
}
