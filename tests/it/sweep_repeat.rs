//! `sweep --repeat N` against the simulator: every point run N times as a linked repeat
//! group, the sweep analysis on the means with their t-intervals, and the report's table
//! and chart with error bars; bad counts refused before anything runs.

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::sim::{start_blocking, timed};
use crate::support::store::{read_json, read_rel};
use crate::support::sweeps::{assert_schema, points, sweep_synthetic};
use crate::support::{bk_std, out};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The Student-t quantile t(0.975, 2).
const T_975_2: f64 = 4.302652729911275;

#[test]
fn three_points_three_repeats_give_means_with_intervals_and_error_bars() {
    let mut c = timed(Profile::Vllm, 2.0, 5.0);
    c.max_num_seqs = 4;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(sweep_synthetic(&store, "vllm", &sim.base_url(), "8").args([
        "--num-requests",
        "12",
        "--concurrency",
        "1,2,4",
        "--repeat",
        "3",
        "--no-early-stop",
    ]));
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(
        sim.stats().requests,
        3 * 3 * 12,
        "3 points x 3 repeats x 12"
    );
    assert!(o.contains("mean of 3 repeats"), "{o}");

    // nine normal runs: each a sweep point and one repeat of its point's group
    let p = points(&store);
    assert_eq!(p.len(), 9, "{p:?}");
    let id = p[0]["sweep"]["id"].as_str().unwrap().to_string();
    for (i, m) in p.iter().enumerate() {
        let index = (i / 3) as u64;
        assert_schema(m);
        assert_eq!(m["status"], "completed");
        assert_eq!(m["sweep"]["id"], id.as_str());
        assert_eq!(m["sweep"]["index"], index);
        assert_eq!(m["test"]["load"]["concurrency"], [1, 2, 4][i / 3]);
        assert_eq!(m["repeat"]["group"], format!("{id}-p{index}").as_str());
        assert_eq!(m["repeat"]["count"], 3);
    }
    for index in 0..3u64 {
        let mut r: Vec<u64> = p
            .iter()
            .filter(|m| m["sweep"]["index"] == index)
            .map(|m| m["repeat"]["index"].as_u64().unwrap())
            .collect();
        r.sort();
        assert_eq!(r, vec![0, 1, 2], "point {index}");
    }

    // the analysis: one point per load, the mean of its repeats and its t-interval
    let doc = read_json(&store.join(format!("analysis/sweeps/{id}.json")));
    let schema: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/sweep.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let pts = doc["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3, "{doc:#}");
    for (k, pt) in pts.iter().enumerate() {
        assert_eq!(pt["repeats"], 3);
        let ids: Vec<&str> = pt["repeat_test_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let runs: Vec<&Value> = ids
            .iter()
            .map(|t| {
                p.iter()
                    .find(|m| m["test_id"] == *t)
                    .expect("a stored repeat")
            })
            .collect();
        assert!(runs.iter().all(|m| m["sweep"]["index"] == k as u64));
        let vals: Vec<f64> = runs
            .iter()
            .map(|m| f(&m["results"]["output_tokens_per_sec"]))
            .collect();
        let mean = vals.iter().sum::<f64>() / 3.0;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let half = T_975_2 * sd / 3f64.sqrt();
        assert!(
            (f(&pt["output_tokens_per_sec"]) - mean).abs() < 1e-6,
            "{pt:#}"
        );
        let ci = &pt["intervals"]["output_tokens_per_sec"];
        assert!((f(&ci[0]) - (mean - half)).abs() < 1e-6, "{pt:#} {vals:?}");
        assert!((f(&ci[1]) - (mean + half)).abs() < 1e-6, "{pt:#} {vals:?}");
        for key in ["achieved_rate", "ttft_p50_ms", "ttft_p99_ms"] {
            let ci = &pt["intervals"][key];
            assert!(
                f(&ci[0]) <= f(&pt[key]) && f(&pt[key]) <= f(&ci[1]),
                "{key}: {pt:#}"
            );
        }
        assert_eq!(f(&pt["success_count"]), 36.0);
    }
    // the knee is found on the means: throughput still rising from 1 to 4 users
    let tps: Vec<f64> = pts.iter().map(|p| f(&p["output_tokens_per_sec"])).collect();
    assert!(tps[1] > 1.3 * tps[0] && tps[2] > 1.3 * tps[1], "{tps:?}");

    // the report: the table's cells carry the interval, the chart draws error bars
    let (code, _, e) = out(bk_std(&store).arg("report"));
    assert_eq!(code, 0, "{e}");
    let md = String::from_utf8(read_rel(&store, "reports/COMPARISON.md")).unwrap();
    assert!(md.contains("point (mean of 3)"), "{md}");
    assert!(md.contains("95% Student-t interval"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| 4 | point (mean of 3)"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.matches(" \\[").count() >= 4,
        "figures with intervals: {row}"
    );
    let file = md
        .lines()
        .find(|l| l.starts_with("![") && l.contains("charts/sweep-"))
        .and_then(|l| l.split("charts/").nth(1))
        .map(|f| f.trim_end_matches(')').to_string())
        .expect("a sweep chart");
    let svg = String::from_utf8(read_rel(&store, &format!("reports/charts/{file}"))).unwrap();
    assert!(svg.contains("95% CI, 3 repeats"), "no error-bar title");
    let html = String::from_utf8(read_rel(&store, "reports/index.html")).unwrap();
    assert!(html.contains("class=\"repeats\""), "no repeats note");
    assert!(
        html.contains("95% CI, 3 repeats"),
        "no chart with error bars"
    );
}

#[test]
fn bad_repeat_counts_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    for (extra, want) in [
        (vec!["--concurrency", "1,2", "--repeat", "0"], "--repeat 0"),
        (
            vec!["--concurrency", "1,2", "--repeat", "101"],
            "--repeat 101",
        ),
        (
            vec!["--slo", "ttft_p90=1s", "--repeat", "2"],
            "max-goodput search",
        ),
    ] {
        let (code, _, e) = out(sweep_synthetic(&store, "vllm", "http://127.0.0.1:9", "8")
            .args(["--num-requests", "4"])
            .args(&extra));
        assert_eq!(code, 2, "{extra:?}: {e}");
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    assert!(!store.join("metadata").exists() || points(&store).is_empty());
}

#[test]
fn resume_runs_only_the_missing_repeats() {
    let sim = start_blocking(timed(Profile::Vllm, 1.0, 1.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let sweep = |extra: &[&str]| {
        let mut c = sweep_synthetic(&store, "vllm", &sim.base_url(), "4");
        c.args([
            "--num-requests",
            "6",
            "--concurrency",
            "1,2",
            "--no-early-stop",
        ])
        .args(extra);
        out(&mut c)
    };
    let (code, o, e) = sweep(&["--repeat", "2", "--json"]);
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(sim.stats().requests, 2 * 2 * 6);
    // --json: each point's means, its repeats and their t-intervals
    let doc: Value = serde_json::from_str(&o).unwrap_or_else(|_| panic!("{o}"));
    for pt in doc["points"].as_array().unwrap() {
        assert_eq!(pt["repeats"], 2, "{pt}");
        assert_eq!(pt["repeat_test_ids"].as_array().unwrap().len(), 2, "{pt}");
        let ci = &pt["intervals"]["output_tokens_per_sec"];
        let mean = f(&pt["output_tokens_per_sec"]);
        assert!(f(&ci[0]) <= mean && mean <= f(&ci[1]), "{pt}");
        assert_eq!(pt["requests"], 12, "requests summed over the repeats: {pt}");
    }
    let p = points(&store);
    assert_eq!(p.len(), 4);
    let id = p[0]["sweep"]["id"].as_str().unwrap().to_string();

    // every repeat stored: the resume runs nothing
    let (code, o, e) = sweep(&["--repeat", "2", "--resume", &id]);
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(sim.stats().requests, 24, "{o}");
    assert_eq!(o.matches("stored").count(), 2, "{o}");

    // another repeat count plans another sweep
    let (code, _, e) = sweep(&["--repeat", "3", "--resume", &id]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("plan a different sweep"), "{e}");

    // a repeat lost (its files gone, as if the process died before it was written): only
    // that repeat runs again, under its own repeat index
    let lost = p
        .iter()
        .find(|m| m["sweep"]["index"] == 1 && m["repeat"]["index"] == 0)
        .unwrap();
    let lost_id = lost["test_id"].as_str().unwrap();
    std::fs::remove_file(store.join(format!("metadata/{lost_id}.json"))).unwrap();
    std::fs::remove_file(store.join(format!("raw/{lost_id}.jsonl"))).unwrap();
    let (code, o, e) = sweep(&["--repeat", "2", "--resume", &id]);
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(
        sim.stats().requests,
        24 + 6,
        "one repeat of 6 requests: {o}"
    );
    let p = points(&store);
    assert_eq!(p.len(), 4);
    let again: Vec<&Value> = p
        .iter()
        .filter(|m| m["sweep"]["index"] == 1 && m["repeat"]["index"] == 0)
        .collect();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["test_id"], lost_id);
    assert_eq!(again[0]["repeat"]["group"], format!("{id}-p1").as_str());
}
