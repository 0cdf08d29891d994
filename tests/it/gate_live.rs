//! The significance gate end to end on LIVE simulator runs (wall-clock latencies, on a
//! machine other work loads): per seed, three simulators (the baseline, the same workload
//! with another seed, and one with a 10 % longer decode step) and three `benchkeep run`s
//! started together, so the machine's noise hits all three alike; the same workload never
//! fails `compare --baseline --fail-on-regression`, the slower one always does (exit 1).
//! Why this is robust (open loop, 40 ms steps, the run noise floor): docs/gating.md.

use std::process::{Child, Stdio};

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{start_blocking, timed};
use crate::support::store::all_metadata;
use crate::support::{bk_std, out};

/// 500 requests, Poisson arrivals at 60/s (about 25 in flight), 8 output tokens.
fn start_run(store: &std::path::Path, url: &str, side: &str) -> Child {
    run_synthetic(store, "vllm", "sim-model", url, "16", "8")
        .args([
            "--num-requests",
            "500",
            "--rate",
            "60",
            "--concurrency",
            "100",
        ])
        .args(["--gpu", "off", "-q", "--label", &format!("side={side}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("benchkeep run starts")
}

fn id_of(metas: &[Value], side: &str) -> String {
    metas
        .iter()
        .find(|m| m["labels"]["side"] == side)
        .and_then(|m| m["test_id"].as_str())
        .unwrap_or_else(|| panic!("no run of side {side}"))
        .to_string()
}

#[test]
fn same_workload_passes_and_a_ten_percent_slower_decode_fails_on_live_runs() {
    for seed in [1u64, 2, 3] {
        let sim = |step_ms: f64, s: u64| {
            // 1 ms prefill and 40 ms decode steps (±10 %): a step long against the
            // scheduling delays of a busy machine
            let mut c = timed(Profile::Vllm, 1.0, step_ms);
            c.timing.jitter = 0.1;
            c.seed = s;
            start_blocking(c)
        };
        let (a, b, slow) = (
            sim(40.0, seed),
            sim(40.0, seed + 100),
            sim(44.0, seed + 200),
        );
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        let runs = [
            start_run(&store, &a.base_url(), "base"),
            start_run(&store, &b.base_url(), "same"),
            start_run(&store, &slow.base_url(), "slower"),
        ];
        for r in runs {
            let o = r.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let metas = all_metadata(&store);
        let (base, same, slower) = (
            id_of(&metas, "base"),
            id_of(&metas, "same"),
            id_of(&metas, "slower"),
        );
        let compare = |cand: &str| {
            out(bk_std(&store)
                .args(["compare", "--baseline", &base, cand, "--fail-on-regression"])
                .args(["--format", "json"]))
        };
        let (code, o, e) = compare(&same);
        let doc: Value = serde_json::from_str(&o).unwrap_or_else(|_| panic!("{o}{e}"));
        assert_eq!(
            code, 0,
            "seed {seed}: the same workload failed the gate: {doc:#}"
        );
        assert_eq!(doc["regressions"], 0, "{doc:#}");
        let (code, o, e) = compare(&slower);
        let doc: Value = serde_json::from_str(&o).unwrap_or_else(|_| panic!("{o}{e}"));
        assert_eq!(
            code, 1,
            "seed {seed}: the slower server passed the gate: {doc:#}"
        );
        let tpot = doc["runs"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "tpot_p50_ms")
            .unwrap();
        assert_eq!(tpot["verdict"], "regression", "seed {seed}: {doc:#}");
        assert_eq!(tpot["noise_floor_percent"], 2.0, "{tpot}");
    }
}
