//! Significance-aware gating through the binary: `compare --baseline` and `gate` on runs
//! made under the simulator's timing law (tests/support/gate.rs, no clock involved):
//! other seeds never fail, a 10 % slower decode step always does, too little data exits
//! 6 and says which metric, and the flags are checked.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::bk;
use crate::support::gate::{Law, store_run};

fn json_of(out: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&out.get_output().stdout).expect("json on stdout")
}

fn verdict<'a>(doc: &'a Value, metric: &str) -> &'a Value {
    doc["runs"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("{metric} in {doc}"))
}

#[test]
fn other_seeds_never_fail_and_a_slower_step_always_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    for pair in 0..5u64 {
        let base = store_run(store, &Law::sim(100 + pair), &[]);
        let same = store_run(store, &Law::sim(200 + pair), &[]);
        let slower = store_run(
            store,
            &Law {
                itl_ms: 22.0,
                ..Law::sim(300 + pair)
            },
            &[],
        );
        let out = bk(store)
            .args([
                "compare",
                "--baseline",
                &base,
                &same,
                "--fail-on-regression",
            ])
            .args(["--format", "json"])
            .assert()
            .code(0);
        let doc = json_of(&out);
        assert_eq!(doc["regressions"], 0, "{doc}");
        assert_eq!(doc["not_enough_data"], 0, "{doc}");
        let out = bk(store)
            .args([
                "compare",
                "--baseline",
                &base,
                &slower,
                "--fail-on-regression",
            ])
            .args(["--format", "json"])
            .assert()
            .code(1);
        let doc = json_of(&out);
        for metric in ["tpot_p50_ms", "e2e_p50_ms"] {
            let v = verdict(&doc, metric);
            assert_eq!(v["verdict"], "regression", "{v}");
            assert!(v["p_value"].as_f64().unwrap() < 0.01, "{v}");
            let pct = v["effect_percent"].as_f64().unwrap();
            assert!((5.0..15.0).contains(&pct), "{v}");
            let ci = v["interval_95"].as_array().unwrap();
            assert!(ci[0].as_f64().unwrap() > 0.0, "{v}");
        }
    }
}

#[test]
fn the_table_prints_effect_interval_p_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let base = store_run(store, &Law::sim(1), &[]);
    let slower = store_run(
        store,
        &Law {
            itl_ms: 22.0,
            ..Law::sim(2)
        },
        &[],
    );
    bk(store)
        .args(["compare", "--baseline", &base, &slower])
        .assert()
        .success()
        .stdout(predicate::str::contains("95% interval"))
        .stdout(predicate::str::contains(
            "REGRESSION (Mann-Whitney U (500 vs 500 requests))",
        ))
        .stdout(predicate::str::contains("Welch t, batch means (10 vs 10)"))
        .stdout(predicate::str::contains(
            "regression(s) beyond 5% at alpha 0.01",
        ));
    // A threshold wider than the change: no regression, whatever the p-value.
    bk(store)
        .args([
            "compare",
            "--baseline",
            &base,
            &slower,
            "--fail-on-regression",
        ])
        .args(["--threshold", "25"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "No significant regression beyond 25%",
        ));
    // CSV and Markdown carry the same verdicts.
    bk(store)
        .args(["compare", "--baseline", &base, &slower, "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(",tpot_p50_ms,"))
        .stdout(predicate::str::contains(",regression\n"));
    bk(store)
        .args([
            "compare",
            "--baseline",
            &base,
            &slower,
            "--format",
            "markdown",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("| TPOT p50 ms |"));
}

#[test]
fn too_little_data_exits_6_and_names_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let small = |seed| Law {
        requests: 15,
        ..Law::sim(seed)
    };
    let a = store_run(store, &small(1), &[]);
    let b = store_run(store, &small(2), &[]);
    bk(store)
        .args(["compare", "--baseline", &a, &b, "--fail-on-regression"])
        .assert()
        .code(6)
        .stdout(predicate::str::contains(
            "not enough data: 15 vs 15 successful requests",
        ))
        .stderr(predicate::str::contains("tpot_p50_ms"));
    // Without --fail-on-regression it is only shown.
    bk(store)
        .args(["compare", "--baseline", &a, &b])
        .assert()
        .success()
        .stdout(predicate::str::contains("Not enough data for: "));
    // 100 requests: medians are judged, p99 is not (it needs 500 a side).
    let c = store_run(
        store,
        &Law {
            requests: 100,
            ..Law::sim(3)
        },
        &[],
    );
    let d = store_run(
        store,
        &Law {
            requests: 100,
            ..Law::sim(4)
        },
        &[],
    );
    let out = bk(store)
        .args(["compare", "--baseline", &c, &d, "--format", "json"])
        .assert()
        .success();
    let doc = json_of(&out);
    assert_eq!(
        verdict(&doc, "e2e_p50_ms")["verdict"],
        "no_significant_change"
    );
    assert_eq!(verdict(&doc, "e2e_p99_ms")["verdict"], "not_enough_data");
    // A raw log that is gone: not enough data, never a guess, and the store is untouched.
    let raw = dir.path().join("raw").join(format!("{d}.jsonl"));
    assert!(raw.is_file(), "{}", raw.display());
    std::fs::remove_file(&raw).unwrap();
    let before = std::fs::read(dir.path().join("metadata").join(format!("{d}.json"))).unwrap();
    bk(store)
        .args(["compare", "--baseline", &c, &d, "--fail-on-regression"])
        .assert()
        .code(6)
        .stdout(predicate::str::contains("no raw log"));
    let after = std::fs::read(dir.path().join("metadata").join(format!("{d}.json"))).unwrap();
    assert_eq!(before, after);
    // The same runs judged by the threshold alone (the figures in the metadata).
    bk(store)
        .args([
            "compare",
            "--baseline",
            &c,
            &d,
            "--threshold-only",
            "--fail-on-regression",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("No regression beyond 5%"));
}

#[test]
fn gate_judges_the_latest_run_against_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    // No history yet: not enough data.
    store_run(store, &Law::sim(1), &[]);
    bk(store)
        .arg("gate")
        .assert()
        .code(6)
        .stderr(predicate::str::contains("no earlier finished run"));
    for seed in 2..=5 {
        store_run(store, &Law::sim(seed), &[]);
    }
    // Four earlier runs: throughput by the t prediction, latency pooled.
    let out = bk(store)
        .args(["gate", "--format", "json"])
        .assert()
        .code(0);
    let doc = json_of(&out);
    assert_eq!(doc["baseline"].as_array().unwrap().len(), 4, "{doc}");
    let v = verdict(&doc, "output_tokens_per_sec");
    assert!(
        v["test"].as_str().unwrap().starts_with("t prediction vs 4"),
        "{v}"
    );
    assert!(
        verdict(&doc, "tpot_p50_ms")["test"]
            .as_str()
            .unwrap()
            .contains("2000 vs 500 requests")
    );
    // --last keeps the most recent ones.
    let out = bk(store)
        .args(["gate", "--last", "2", "--format", "json"])
        .assert()
        .code(0);
    assert_eq!(json_of(&out)["baseline"].as_array().unwrap().len(), 2);
    // A slower run now fails the gate.
    let slow = store_run(
        store,
        &Law {
            itl_ms: 22.0,
            ..Law::sim(6)
        },
        &[],
    );
    bk(store)
        .args(["gate", "--metric", "tpot_p50_ms", "--metric", "e2e_p50_ms"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(slow.as_str()))
        .stdout(predicate::str::contains("REGRESSION"))
        .stderr(predicate::str::contains("2 metric(s) got worse"));
    // Another input is another history.
    bk(store)
        .args(["gate", "--input", "other"])
        .assert()
        .code(3);
}

#[test]
fn gate_flag_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    store_run(
        store,
        &Law {
            requests: 30,
            ..Law::sim(1)
        },
        &[],
    );
    for (args, needle) in [
        (vec!["gate", "--alpha", "0"], "--alpha 0"),
        (vec!["gate", "--alpha", "1.5"], "--alpha 1.5"),
        (vec!["gate", "--threshold=-2"], "--threshold -2"),
        (
            vec!["gate", "--metric", "speed"],
            "--metric speed: not a gated metric",
        ),
        (vec!["gate", "--last", "0"], "--last 0"),
    ] {
        bk(store)
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
    bk(store)
        .args(["compare", "--alpha", "0.05"])
        .assert()
        .code(2);
}
