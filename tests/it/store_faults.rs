//! Faults while writing the store (RELIABILITY.md P3, P6): a crash at each step of an
//! atomic write, a file-size limit, an unwritable store location.

use std::fs;
use std::path::Path;
use std::process::Command;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::cmd::analyze_cmd;
use crate::support::{BIN, bk, clean_env, fixture};

/// `analyze` of the foundation's chat results (5 requests) into `store`; no crash hook
/// unless the test sets `BENCHKEEP_CRASH_AT`.
fn analyze(store: &Path) -> assert_cmd::Command {
    let mut c = analyze_cmd(store, "vllm-serve", "m");
    c.args(["--total-time", "5", "--input"])
        .arg(fixture("foundation/chat_ok_and_error.jsonl"));
    c
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for sub in ["metadata", "raw", "analysis", "reports"] {
        if let Ok(entries) = fs::read_dir(dir.join(sub)) {
            for e in entries {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    v.push((format!("{sub}/{name}"), fs::read(e.path()).unwrap()));
                }
            }
        }
    }
    v.sort();
    v
}

#[test]
fn crash_at_every_step_leaves_old_or_new_files_never_a_part() {
    for step in ["temp-written", "before-publish", "after-publish"] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        analyze(&store).assert().success();
        let before = snapshot(&store);

        let out = analyze(&store)
            .env("BENCHKEEP_CRASH_AT", step)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{step}: the crash hook did not fire");

        // Every file that existed is unchanged; every metadata file present parses whole.
        let after = snapshot(&store);
        for (name, bytes) in &before {
            let now = after.iter().find(|(n, _)| n == name);
            if name.starts_with("metadata/") || name.starts_with("raw/") {
                assert_eq!(now.map(|(_, b)| b), Some(bytes), "{step}: {name} changed");
            }
        }
        for (name, bytes) in &after {
            if name.starts_with("metadata/") {
                serde_json::from_slice::<Value>(bytes)
                    .unwrap_or_else(|e| panic!("{step}: {name} is partial: {e}"));
            }
        }
        // The store still works, and verify names any leftover of the crash.
        analyze(&store).assert().success();
        let verify = bk(&store).arg("verify").output().unwrap();
        let text = String::from_utf8_lossy(&verify.stdout);
        if !verify.status.success() {
            assert!(
                text.lines()
                    .filter(|l| l.starts_with("problem:"))
                    .all(|l| l.contains(".tmp-") || l.contains("is missing")),
                "{step}: unexpected problems:\n{text}"
            );
        }
    }
}

#[test]
fn file_size_limit_is_a_store_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    fs::create_dir_all(&store).unwrap();
    // 1 KiB limit: the 2 KB input cannot be copied into raw/.
    let out = clean_env(&mut Command::new("bash"))
        .arg("-c")
        .arg(format!(
            "ulimit -f 1; exec '{}' --store '{}' analyze --platform p --model m --total-time 1 --input '{}'",
            BIN,
            store.display(),
            fixture("foundation/chat_ok_and_error.jsonl").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert!(stderr.contains("file size limit"), "{stderr}");
    assert!(
        fs::read_dir(store.join("metadata"))
            .unwrap()
            .next()
            .is_none()
    );
    let leftovers: Vec<_> = fs::read_dir(store.join("raw")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unwritable_store_fails_before_writing_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    analyze(&file.join("store"))
        .assert()
        .code(4)
        .stderr(predicate::str::contains("cannot create directory"));
    assert_eq!(fs::read(&file).unwrap(), b"x");
}
