//! `benchkeep import` writes by group commit (a batch of files, one sync, the copies before
//! the metadata that names them). A crash at each step of it leaves whole runs or nothing
//! (every stored run's copy is there and whole), and importing again finishes the job: the
//! store then holds exactly the runs of a clean import, each once, and `verify` is clean.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::import::{import, import_fixture};
use crate::support::store::all_metadata;
use crate::support::{bk_std, out};

/// (source sha256, locator) of every run, and the number of runs.
fn runs(store: &Path) -> (BTreeSet<(String, String)>, usize) {
    let all = all_metadata(store);
    let set = all
        .iter()
        .map(|m| {
            (
                m["source"]["sha256"].as_str().unwrap().to_string(),
                m["source"]["locator"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (set, all.len())
}

/// Every run's copy in `raw/` is there with the size and sha256 its metadata records.
fn copies_whole(store: &Path, what: &str) {
    for m in all_metadata(store) {
        let rel = m["test"]["output_file"].as_str().unwrap();
        let bytes = std::fs::read(store.join(rel))
            .unwrap_or_else(|e| panic!("{what}: {} names {rel}, not there: {e}", m["test_id"]));
        assert_eq!(
            Value::from(bytes.len() as u64),
            m["test"]["raw_bytes"],
            "{what}: {rel}"
        );
        let sha = crate::support::api::digest::sha256_hex(&bytes);
        assert_eq!(m["test"]["raw_sha256"], Value::from(sha), "{what}: {rel}");
    }
}

#[test]
fn a_crash_at_any_step_leaves_whole_runs_and_a_second_import_finishes() {
    // Several files, several runs each (GuideLLM: 5 benchmarks; vLLM JSON Lines: 2).
    let inputs = [
        import_fixture("guidellm/benchmarks.json"),
        import_fixture("vllm_serve"),
        import_fixture("inference_benchmarker"),
        import_fixture("aiperf"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    let (code, o, e) = import(&clean, &[], &inputs);
    assert_eq!(code, 0, "{o}{e}");
    let (want, n) = runs(&clean);
    assert!(n >= 8, "{n} runs: the test needs several per file");
    for step in ["temp-written", "before-publish", "after-publish"] {
        let store = dir.path().join(step);
        let mut c = bk_std(&store);
        c.arg("import")
            .args(&inputs)
            .env("BENCHKEEP_CRASH_AT", step);
        let (code, o, e) = out(&mut c);
        assert_ne!(code, 0, "{step}: no crash\n{o}{e}");
        let (got, _) = runs(&store);
        if step == "after-publish" {
            assert_eq!(
                got.len(),
                1,
                "{step}: one run got its name before the crash"
            );
        } else {
            assert!(
                got.is_empty(),
                "{step}: runs visible before the copies were synced"
            );
        }
        copies_whole(&store, step);
        let (code, o, e) = import(&store, &[], &inputs);
        assert_eq!(code, 0, "{step}: the second import: {o}{e}");
        let (got, count) = runs(&store);
        assert_eq!(got, want, "{step}: the runs after the second import");
        assert_eq!(count, n, "{step}: a run imported twice");
        copies_whole(&store, step);
        // A third import adds nothing.
        let (_, again, _) = import(&store, &[], &inputs);
        assert!(again.contains("Imported 0 runs"), "{step}: {again}");
        let (code, o, e) = out(bk_std(&store).arg("recover"));
        assert_eq!(code, 0, "{step}: {o}{e}");
        let (code, v, _) = out(bk_std(&store).arg("verify"));
        assert_eq!(code, 0, "{step}: verify:\n{v}");
    }
}
