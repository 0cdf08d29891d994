//! A crash at every step of every whole-file write (RELIABILITY P3, P4): id reservation
//! (`analyze` publishing a new run), a run's metadata (`recover` replacing it) and the
//! derived files (`report`). The file is byte-identical to its old or its new version, a
//! run left `running` is finished by `recover`, and `verify` is clean afterwards.

use std::fs;
use std::path::Path;

use crate::support::cmd::analyze_cmd;
use crate::support::store::{crashed_run, dead_pid, read_json};
use crate::support::{bk, bk_std, fixture, out};

const STEPS: [&str; 3] = ["temp-written", "before-publish", "after-publish"];

fn assert_verify_clean_after_recover(store: &Path, what: &str) {
    let (code, stdout, err) = out(bk_std(store).arg("recover"));
    assert_eq!(code, 0, "{what}: {stdout}{err}");
    let (code, vout, _) = out(bk_std(store).arg("verify"));
    assert_eq!(code, 0, "{what}: verify after recover:\n{vout}");
}

#[test]
fn crash_while_reserving_an_id() {
    for step in STEPS {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        let mut c = analyze_cmd(&store, "p", "m");
        c.args(["--total-time", "5", "--input"])
            .arg(fixture("foundation/chat_ok_and_error.jsonl"))
            .env("BENCHKEEP_CRASH_AT", step);
        assert!(!c.output().unwrap().status.success(), "{step}: no crash");
        // The metadata is there whole (after-publish) or not at all.
        for p in crate::support::store::metadata_json_files(&store) {
            serde_json::from_slice::<serde_json::Value>(&fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{step}: {} is partial: {e}", p.display()));
        }
        let (code, _, _) = out(bk_std(&store).arg("verify"));
        let _ = code; // a raw file copied before the crash may be reported; recover sweeps temps
        let (code, stdout, err) = out(bk_std(&store).arg("recover"));
        assert_eq!(code, 0, "{step}: {stdout}{err}");
        let (_, vout, _) = out(bk_std(&store).arg("verify"));
        assert!(!vout.contains(".tmp-"), "{step}: temp files left:\n{vout}");
    }
}

#[test]
fn crash_while_replacing_a_runs_metadata() {
    for step in STEPS {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        let (id, _) = crashed_run(&store, 4, dead_pid());
        let meta = store.join(format!("metadata/{id}.json"));
        let old = fs::read(&meta).unwrap();
        let o = bk(&store)
            .arg("recover")
            .env("BENCHKEEP_CRASH_AT", step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{step}: no crash");
        let now = fs::read(&meta).unwrap();
        let v = read_json(&meta);
        match step {
            "after-publish" => assert_eq!(v["status"], "interrupted", "{step}: the new version"),
            _ => assert_eq!(now, old, "{step}: the old version, byte for byte"),
        }
        assert_verify_clean_after_recover(&store, step);
        assert_eq!(read_json(&meta)["status"], "interrupted");
    }
}

#[test]
fn crash_while_writing_derived_files() {
    for step in STEPS {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::support::cmd::populated_store(dir.path());
        bk(&store).arg("report").assert().success();
        let summary = store.join("analysis/summary.json");
        let old = fs::read(&summary).unwrap();
        // a new run makes every derived file stale
        analyze_cmd(&store, "p2", "m")
            .args(["--total-time", "5", "--input"])
            .arg(fixture("foundation/chat_ok_and_error.jsonl"))
            .env("BENCHKEEP_CRASH_AT", "never")
            .assert()
            .success();
        let new_before = fs::read(&summary).unwrap();
        let o = bk(&store)
            .arg("report")
            .env("BENCHKEEP_CRASH_AT", step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{step}: no crash");
        let now = fs::read(&summary).unwrap();
        assert!(
            now == old || now == new_before,
            "{step}: summary.json is partial"
        );
        serde_json::from_slice::<serde_json::Value>(&now).unwrap();
        assert_verify_clean_after_recover(&store, step);
        bk(&store).arg("report").assert().success();
    }
}
