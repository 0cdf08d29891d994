//! The sweep section of the reports: COMPARISON.md, index.html (with its chart, the knee
//! marked), the decision summary's sentence, `compare --sweep`, and an end-to-end sweep
//! of `benchkeep run --concurrency N` runs against the simulator, linked into one sweep.

use predicates::prelude::*;

use crate::support::api::sim::Profile;
use crate::support::bk;
use crate::support::cmd::{refs, synthetic_args};
use crate::support::sim::{start_blocking, timed};
use crate::support::store::{read_json, read_rel};
use crate::support::sweepstore::{Point, link, publish_sweep, two_platform_store};

const SENTENCE: &str =
    "within TTFT p99 <= 1 s: ollama 4 users (140 tok/s), vllm 48 users (1,600 tok/s)";

/// The sentence as Markdown and HTML write it (`<` escaped).
fn escaped() -> String {
    SENTENCE.replace('<', "&lt;")
}

#[test]
fn reports_get_the_sweep_section() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    two_platform_store(store);
    bk(store).arg("report").assert().success();
    let md = String::from_utf8(read_rel(store, "reports/COMPARISON.md")).unwrap();
    assert!(md.contains("## Sweeps"), "{md}");
    assert!(md.contains(&escaped()), "{md}");
    assert!(md.contains("- vllm: knee at 1"), "{md}");
    assert!(md.contains("### Sweep sweep-vllm-1 (vllm, gemma3:4b, concurrency axis)"));
    let chart_link = md
        .lines()
        .find(|l| l.starts_with("![") && l.contains("charts/sweep-"))
        .expect("a sweep chart linked");
    let file = chart_link
        .split("charts/")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let svg = String::from_utf8(read_rel(store, &format!("reports/charts/{file}"))).unwrap();
    assert!(svg.starts_with("<svg"));
    for text in [
        "vllm knee",
        "ollama knee",
        "Per-user tok/s",
        "TTFT p50 against",
        "TTFT p99 against",
    ] {
        assert!(svg.contains(text), "chart lacks {text:?}");
    }
    // The decision summary says the sentence.
    assert!(md.contains("- Sweeps: gemma34b on sha256:"), "{md}");
    assert!(md.contains(&format!("{}.", escaped())));
    let html = String::from_utf8(read_rel(store, "reports/index.html")).unwrap();
    assert!(html.contains("<section id=\"sweeps\">"));
    assert!(html.contains("href=\"#sweeps\""));
    assert!(html.contains(&escaped()));
    assert!(html.contains("aria-label=\"Sweep: gemma34b"));
    let summary = read_json(&store.join("analysis/summary.json"));
    assert_eq!(summary["sweeps"].as_array().unwrap().len(), 2);
    assert_eq!(
        summary["sweeps"][1]["file"],
        "analysis/sweeps/sweep-vllm-1.json"
    );
    bk(store)
        .arg("decide")
        .assert()
        .success()
        .stdout(predicate::str::contains(SENTENCE));
}

#[test]
fn compare_selects_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let s = two_platform_store(store);
    bk(store)
        .args([
            "compare",
            "--sweep",
            "sweep-vllm-1",
            "--sweep",
            "sweep-ollama-1",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("Sweep sweep-vllm-1 (vllm"))
        .stdout(predicate::str::contains("Sweep sweep-ollama-1 (ollama"))
        .stdout(predicate::str::contains(
            "within TTFT p99 <= 1 s: vllm 48 users (1,600 tok/s), ollama 4 users (140 tok/s)",
        ));
    let o = bk(store)
        .args(["compare", "--sweep", "sweep-vllm-1", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sweeps"][0]["sweep_id"], "sweep-vllm-1");
    // A sweep on another axis is not like for like.
    let pts: Vec<Point> = [1.0, 2.0]
        .iter()
        .map(|&r| Point::new(r, 100.0, 50.0))
        .collect();
    publish_sweep(&s, "sweep-rate", "sglang", "rate", &pts, None);
    bk(store)
        .args([
            "compare",
            "--sweep",
            "sweep-vllm-1",
            "--sweep",
            "sweep-rate",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("not like for like"));
    bk(store)
        .args(["compare", "--sweep", "sweep-vllm-1", "--format", "csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--format csv"));
    bk(store)
        .args(["compare", "--sweep", "missing"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no sweep \"missing\""));
}

#[test]
fn runs_against_the_simulator_linked_into_a_sweep() {
    let sim = start_blocking(timed(Profile::Vllm, 40.0, 2.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let mut ids = Vec::new();
    for (i, c) in [1u32, 2, 4, 8, 16].iter().enumerate() {
        let mut args = vec!["run".to_string()];
        args.extend(synthetic_args(
            &sim.base_url(),
            "vllm",
            "sim-model",
            "16",
            "8",
        ));
        args.extend(["--concurrency".to_string(), c.to_string()]);
        args.extend(["--slo".to_string(), "ttft=5s".to_string()]);
        bk(store).args(refs(&args)).assert().success();
        let newest = crate::support::store::all_metadata(store)
            .into_iter()
            .map(|m| m["test_id"].as_str().unwrap().to_string())
            .find(|id| !ids.contains(id))
            .expect("a new run");
        link(
            store,
            &newest,
            "sweep-sim",
            "concurrency",
            i as u32,
            *c as f64,
        );
        ids.push(newest);
    }
    bk(store).arg("compare").assert().success();
    let v = read_json(&store.join("analysis/sweeps/sweep-sim.json"));
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 5);
    for p in pts {
        assert_eq!(p["success_count"], 16);
        // The simulator's prefill is 40 ms: a firm lower bound on every TTFT.
        assert!(p["ttft_p50_ms"].as_f64().unwrap() >= 40.0, "{p}");
        assert!(p["per_user_tokens_per_sec"].as_f64().unwrap() > 0.0);
        assert_eq!(p["attainment_high"], 1.0);
    }
    // Higher concurrency sends more at once: output tok/s grows from 1 to 16 users.
    let tps = |i: usize| pts[i]["output_tokens_per_sec"].as_f64().unwrap();
    assert!(tps(4) > tps(0), "{} vs {}", tps(4), tps(0));
    let g = &v["max_goodput"];
    assert_eq!(g["slo_ms"]["ttft"], 5000.0);
    bk(store)
        .args([
            "query",
            "--sweep",
            "sweep-sim",
            "--metric",
            "max_goodput.status",
        ])
        .assert()
        .success();
    bk(store)
        .args(["compare", "--sweep", "sweep-sim"])
        .assert()
        .success()
        .stdout(predicate::str::contains("SLO attainment [95% interval]"));
}
