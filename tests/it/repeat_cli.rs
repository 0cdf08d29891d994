//! `run --repeat N` against the built-in simulator: N normal runs linked as one group, the
//! group's mean and t-interval printed and in COMPARISON.md with an error-bar chart; the
//! percentiles' intervals in `show`, the report and `query --json`; bad counts and a group
//! where every request failed.

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{start_blocking, timed};
use crate::support::store::all_metadata;
use crate::support::{bk_std, out};

fn validator() -> jsonschema::Validator {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/metadata.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn repeat_runs_a_linked_group_and_reports_its_mean_and_interval() {
    // 20 ms prefill, 2 ms per token, no jitter: a firm lower bound for every latency
    let sim = start_blocking(timed(Profile::Vllm, 20.0, 2.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, stdout, err) =
        out(
            run_synthetic(&store, "vllm", "sim-model", &sim.base_url(), "16", "8").args([
                "--num-requests",
                "40",
                "--concurrency",
                "4",
                "--repeat",
                "3",
            ]),
        );
    assert_eq!(code, 0, "{err}");
    assert_eq!(sim.stats().requests, 120, "3 repeats of 40 requests");

    // three normal runs, linked by one group
    let metas = all_metadata(&store);
    assert_eq!(metas.len(), 3, "{metas:?}");
    let schema = validator();
    let group = metas[0]["repeat"]["group"].as_str().unwrap().to_string();
    assert!(group.starts_with("repeat-vllm-"), "{group}");
    let mut indexes: Vec<u64> = metas
        .iter()
        .map(|m| {
            assert_eq!(m["status"], "completed");
            assert_eq!(m["repeat"]["group"], group.as_str());
            assert_eq!(m["repeat"]["count"], 3);
            assert!(m.get("sweep").is_none(), "a repeat is not a sweep point");
            let errors: Vec<String> = schema.iter_errors(m).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}");
            m["repeat"]["index"].as_u64().unwrap()
        })
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);

    // each run's percentiles carry an order-statistic interval that holds the value and
    // respects the simulated floor
    for m in &metas {
        let ttft = &m["results"]["latency_ms"]["ttft"];
        let ci = &ttft["ci"];
        assert_eq!(ci["level"], 0.95);
        assert_eq!(ci["method"], "order-statistic");
        let (lo, hi) = (f(&ci["p50"][0]), f(&ci["p50"][1]));
        assert!(
            lo >= 20.0 && lo <= f(&ttft["p50"]) && f(&ttft["p50"]) <= hi,
            "{ttft}"
        );
        assert!(hi < 2000.0, "{ttft}");
        // 40 values cannot bound p99 from above at 95 %
        assert!(ci["p99"][1].is_null(), "{ci}");
        assert!(ci["p99"][0].is_number(), "{ci}");
    }

    // the group's figures: the mean of the three runs with a t-interval around it
    let tok: Vec<f64> = metas
        .iter()
        .map(|m| f(&m["results"]["output_tokens_per_sec"]))
        .collect();
    let mean = tok.iter().sum::<f64>() / 3.0;
    assert!(
        stdout.contains(&format!("Repeat group {group} (3 of 3 repeat(s)")),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("output tok/s"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("{mean:.1} [")),
        "{line} vs mean {mean}"
    );
    let bounds: Vec<f64> = line
        .split(['[', ']', ','])
        .skip(1)
        .take(2)
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert!(bounds[0] <= mean && mean <= bounds[1], "{line}");

    // COMPARISON.md: the group's table and the chart with error bars; the latency table
    // shows intervals
    let md = std::fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains("## Repeat groups"), "{md}");
    assert!(
        md.contains(&format!("| {group} | vllm | sim-model | 3/3 |")),
        "{md}"
    );
    assert!(md.contains("![Repeat groups](charts/repeats.svg)"), "{md}");
    let latency = md.split("## Latency percentiles").nth(1).unwrap();
    assert!(
        latency.contains(" [") && latency.contains(", -] |"),
        "{latency}"
    );
    let svg = std::fs::read_to_string(store.join("reports/charts/repeats.svg")).unwrap();
    assert!(svg.contains("Repeat groups"), "{svg}");

    // show and query --json
    let id = metas[0]["test_id"].as_str().unwrap();
    let (code, show, err) = out(bk_std(&store).args(["show", id]));
    assert_eq!(code, 0, "{err}");
    let ttft_line = show
        .lines()
        .skip_while(|l| !l.contains("Latency intervals (95% confidence, order-statistic"))
        .nth(1)
        .unwrap_or_else(|| panic!("{show}"));
    assert!(
        ttft_line.trim_start().starts_with("TTFT  p50 "),
        "{ttft_line}"
    );
    assert!(
        ttft_line.contains(" ms [") && ttft_line.contains("p99 "),
        "{ttft_line}"
    );
    let (code, q, err) = out(bk_std(&store).args(["query", "--json"]));
    assert_eq!(code, 0, "{err}");
    let q: Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q["ci_level"], 0.95, "{q}");
    let ci = q["ttft.p50_ci"].as_array().unwrap_or_else(|| panic!("{q}"));
    assert!(
        f(&ci[0]) <= f(&q["ttft.p50"]) && f(&q["ttft.p50"]) <= f(&ci[1]),
        "{q}"
    );
    let (code, q, err) = out(bk_std(&store).args(["query", "--metric", "e2e.p99", "--json"]));
    assert_eq!(code, 0, "{err}");
    let q: Value = serde_json::from_str(&q).unwrap();
    assert!(q["ci"][0].is_number() && q["ci"][1].is_null(), "{q}");
}

#[test]
fn bad_repeat_counts_exit_2_and_write_nothing() {
    let sim = start_blocking(timed(Profile::Vllm, 1.0, 1.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    for bad in ["0", "1001"] {
        let (code, _, err) = out(
            run_synthetic(&store, "vllm", "m", &sim.base_url(), "4", "4").args([
                "--num-requests",
                "2",
                "--repeat",
                bad,
            ]),
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("--repeat {bad}")), "{err}");
    }
    let (code, _, err) = out(
        run_synthetic(&store, "vllm", "m", &sim.base_url(), "4", "4").args(["--repeat", "many"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(!store.join("metadata").exists() || all_metadata(&store).is_empty());
    assert_eq!(sim.stats().requests, 0);
}

#[test]
fn a_group_where_every_request_failed_never_reports_success() {
    let mut c = timed(Profile::Vllm, 1.0, 1.0);
    c.faults.error_rate = 1.0;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, stdout, err) = out(run_synthetic(
        &store,
        "vllm",
        "sim-model",
        &sim.base_url(),
        "4",
        "4",
    )
    .args(["--num-requests", "3", "--repeat", "2"]));
    assert_eq!(code, 1, "{stdout}\n{err}");
    assert!(err.contains("every request failed"), "{err}");
    let metas = all_metadata(&store);
    assert_eq!(metas.len(), 2, "both repeats are kept");
    for m in &metas {
        assert_eq!(m["status"], "failed");
        assert_eq!(m["repeat"]["count"], 2);
    }
    // no group figures from runs without a success
    assert!(!stdout.contains("Repeat group"), "{stdout}");
}
