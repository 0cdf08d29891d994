//! Like for like includes the load, and an interrupted run is never the head-to-head's
//! "latest" while a completed one exists (issue 14); `compare --baseline` does not judge
//! runs at different loads.

use predicates::prelude::*;
use serde_json::json;

use crate::support::api::report::Derived;
use crate::support::api::report::h2h::Settings;
use crate::support::api::schema::{Metadata, Status};
use crate::support::api::store::Store;
use crate::support::bk;
use crate::support::report::{Spec, metadata};

/// Publish a fixture run measured at `concurrency` (None: no load recorded).
fn put(store: &Store, s: &Spec, concurrency: Option<u32>, status: Option<Status>) -> String {
    let mut m: Metadata = metadata(s);
    if let Some(c) = concurrency {
        m.test.extra.insert(
            "load".into(),
            json!({"mode": "concurrency", "concurrency": c, "max_tokens": null}),
        );
    }
    if let Some(st) = status {
        m.status = st;
    }
    store.ensure_layout().unwrap();
    let base = format!("{}-{}", s.platform, &s.timestamp[..10]);
    store.publish_new(&base, &mut m).unwrap();
    m.test_id
}

#[test]
fn runs_at_different_loads_are_not_put_in_a_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let vllm = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T10:00:00Z", 1000.0),
        Some(32),
        None,
    );
    let ollama4 = put(
        &store,
        &Spec::new("ollama", "gemma3:4b", "2026-01-01T11:00:00Z", 27.0),
        Some(4),
        None,
    );
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    assert!(d.h2h.groups.is_empty(), "{:#?}", d.h2h.groups);
    for id in [&vllm, &ollama4] {
        let u = d
            .h2h
            .unpaired
            .iter()
            .find(|u| &runs.runs[u.run].test_id == id)
            .unwrap();
        assert!(u.reason.contains("at another load"), "{}", u.reason);
    }
    // An ollama run at concurrency 32 pairs with vllm's, and only that pair is in a ratio.
    put(
        &store,
        &Spec::new("ollama", "gemma3:4b", "2026-01-01T12:00:00Z", 250.0),
        Some(32),
        None,
    );
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    assert_eq!(d.h2h.groups.len(), 1);
    let g = &d.h2h.groups[0];
    assert_eq!(
        g.load.as_deref(),
        Some("concurrency 32, max_tokens default")
    );
    assert!((g.entries[1].ratios[0].unwrap() - 4.0).abs() < 1e-9);
    bk(dir.path()).arg("report").assert().success();
    let md = std::fs::read_to_string(dir.path().join("reports/COMPARISON.md")).unwrap();
    assert!(
        md.contains("at concurrency 32, max\\_tokens default"),
        "{md}"
    );
    assert!(
        !md.contains("37.04x"),
        "the concurrency-4 run is in no ratio"
    );
}

#[test]
fn an_interrupted_run_is_not_the_latest_when_a_completed_one_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    put(
        &store,
        &Spec::new("ollama", "gemma3:4b", "2026-01-01T09:00:00Z", 100.0),
        Some(4),
        None,
    );
    let done = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T10:00:00Z", 194.0),
        Some(4),
        None,
    );
    let cut = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T11:00:00Z", 111.5),
        Some(4),
        Some(Status::Interrupted),
    );
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    let g = &d.h2h.groups[0];
    let v = &g.entries[1];
    assert_eq!(runs.runs[v.latest].test_id, done);
    assert!(!v.interrupted);
    assert!(
        (v.ratios[0].unwrap() - 1.94).abs() < 1e-9,
        "{:?}",
        v.ratios[0]
    );
    assert_eq!(v.spread[0], None, "the spread is over completed runs");
    let note = g.baseline_note.as_deref().unwrap();
    assert!(note.contains(&cut) && note.contains(&done), "{note}");

    // A platform with only an interrupted run shows it, marked.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    put(
        &store,
        &Spec::new("ollama", "gemma3:4b", "2026-01-01T09:00:00Z", 100.0),
        Some(4),
        None,
    );
    let cut = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T11:00:00Z", 111.5),
        Some(4),
        Some(Status::Interrupted),
    );
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    let g = &d.h2h.groups[0];
    assert!(g.entries[1].interrupted);
    assert!(
        g.baseline_note
            .as_deref()
            .unwrap()
            .contains("was interrupted")
    );
    bk(dir.path()).arg("report").assert().success();
    let md = std::fs::read_to_string(dir.path().join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains(&format!("{cut} (interrupted)")), "{md}");
}

#[test]
fn compare_baseline_does_not_judge_a_run_at_another_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let base = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T10:00:00Z", 1000.0),
        Some(32),
        None,
    );
    let c1 = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T11:00:00Z", 52.0),
        Some(1),
        None,
    );
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &base,
            &c1,
            "--fail-on-regression",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "LOAD DIFFERS: concurrency 1, max_tokens default vs concurrency 32",
        ))
        .stdout(predicate::str::contains("other load"))
        .stdout(predicate::str::contains("REGRESSION").not());
    let same = put(
        &store,
        &Spec::new("vllm", "gemma3:4b", "2026-01-01T12:00:00Z", 52.0),
        Some(32),
        None,
    );
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &base,
            &same,
            "--fail-on-regression",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("REGRESSION"));
}
