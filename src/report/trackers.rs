//! Runs as the input of existing trackers: Bencher's Metric Format (BMF), the custom JSON
//! of github-action-benchmark, and the params/metrics/tags of an MLflow run. Pure: runs in,
//! bytes or values out; `cli/push.rs` and `client/mlflow.rs` do the sending.
//!
//! A tracker keeps a history per *benchmark name*, so a name must stay the same from one
//! run to the next of the same workload: it is `platform/model/input/load` (the
//! head-to-head's like-for-like key). Each export holds one value per name and metric: the
//! latest finished run that has a successful request (a tracker point is one moment).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::client::mlflow::MlflowRun;
use crate::report::h2h::{
    Better, InputKey, METRICS, MetricDef, input_key, load_key, unusable_reason,
};
use crate::schema::{Metadata, Status};

/// Longest benchmark name (trackers index names; a 10 KB model name must not make one).
const MAX_NAME: usize = 200;

/// The unit of a head-to-head figure, from its key.
pub fn unit(key: &str) -> &'static str {
    match key {
        "output_tokens_per_sec" | "throughput_tokens_per_sec" => "tokens/s",
        "throughput_requests_per_sec" => "requests/s",
        "success_percent" => "%",
        "peak_vram_gb" => "GB",
        "output_tokens_per_joule" => "tokens/J",
        k if k.ends_with("_ms") => "ms",
        _ => "",
    }
}

/// The benchmark name of a run: `platform/model/input/load`.
pub fn bench_name(m: &Metadata) -> String {
    let input = match input_key(m) {
        Some(InputKey::Label(v)) => v,
        Some(InputKey::Sha256(h)) => format!("sha256-{}", &h[..h.len().min(12)]),
        Some(InputKey::Synthetic(s)) => format!("synthetic-{}", super::h2h::short_hash(&s)),
        None => "input-unknown".into(),
    };
    let load = load_key(m).unwrap_or_else(|| "load-unknown".into());
    let name = format!("{}/{}/{}/{}", m.platform, m.model, input, load);
    super::h2h::truncate(&name, MAX_NAME)
}

/// One benchmark: its name, the run that speaks for it, and that run's figures.
#[derive(Debug, Clone)]
pub struct Bench<'a> {
    pub name: String,
    pub run: &'a Metadata,
    pub values: Vec<(&'static MetricDef, f64)>,
}

/// The benchmarks of a set of runs (oldest first, as the store loads them): per name, the
/// latest run that finished with at least one success; interrupted runs only where a name
/// has nothing better. Sorted by name.
pub fn benches(runs: &[Metadata]) -> Vec<Bench<'_>> {
    let mut chosen: BTreeMap<String, &Metadata> = BTreeMap::new();
    for m in runs {
        if unusable_reason(m).is_some() {
            continue;
        }
        let name = bench_name(m);
        match chosen.get(&name) {
            Some(prev) if m.status == Status::Interrupted && prev.status != Status::Interrupted => {
            }
            _ => {
                chosen.insert(name, m);
            }
        }
    }
    chosen
        .into_iter()
        .map(|(name, run)| Bench {
            name,
            run,
            values: METRICS
                .iter()
                .filter_map(|d| (d.get)(run).filter(|v| v.is_finite()).map(|v| (d, v)))
                .collect(),
        })
        .collect()
}

/// A BMF measure slug: the figure's key in kebab case (`ttft-p50-ms`).
fn measure(key: &str) -> String {
    key.replace('_', "-")
}

/// Bencher Metric Format: `{benchmark: {measure: {value}}}`, for `bencher run --adapter json`.
pub fn bmf(runs: &[Metadata]) -> String {
    let mut doc = Map::new();
    for b in benches(runs) {
        let mut measures = Map::new();
        for (d, v) in &b.values {
            measures.insert(measure(d.key), json!({ "value": v }));
        }
        doc.insert(b.name, Value::Object(measures));
    }
    let mut out = serde_json::to_string_pretty(&Value::Object(doc)).expect("json");
    out.push('\n');
    out
}

/// Which of github-action-benchmark's two custom tools a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GabTool {
    /// `customBiggerIsBetter`: throughputs, success rate, tokens per joule.
    Bigger,
    /// `customSmallerIsBetter`: latencies, memory.
    Smaller,
}

impl GabTool {
    pub fn name(self) -> &'static str {
        match self {
            GabTool::Bigger => "customBiggerIsBetter",
            GabTool::Smaller => "customSmallerIsBetter",
        }
    }

    fn wants(self, better: Better) -> bool {
        matches!(
            (self, better),
            (GabTool::Bigger, Better::Higher) | (GabTool::Smaller, Better::Lower)
        )
    }
}

/// github-action-benchmark's custom JSON: `[{name, unit, value, extra}]`, only the figures
/// whose direction matches the tool (the action takes one direction per file).
pub fn github_action_benchmark(runs: &[Metadata], tool: GabTool) -> String {
    let mut items = Vec::new();
    for b in benches(runs) {
        for (d, v) in &b.values {
            if !tool.wants(d.better) {
                continue;
            }
            items.push(json!({
                "name": format!("{} - {}", b.name, d.label),
                "unit": unit(d.key),
                "value": v,
                "extra": format!("run {} at {} ({})", b.run.test_id, b.run.timestamp, b.run.status),
            }));
        }
    }
    let mut out = serde_json::to_string_pretty(&Value::Array(items)).expect("json");
    out.push('\n');
    out
}

/// MLflow caps a param value at 6000 characters (older servers: 500); longer values are cut.
const MAX_PARAM: usize = 500;

/// A run as an MLflow run: params from the config and the load, metrics from the results,
/// tags for the host, platform, sweep and benchkeep's own id.
pub fn mlflow_run(m: &Metadata) -> MlflowRun {
    let mut params = BTreeMap::new();
    let mut put = |k: String, v: &Value| {
        let text = match v {
            Value::Null => return,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        params.insert(k, super::h2h::truncate(&text, MAX_PARAM));
    };
    put("platform".into(), &json!(m.platform));
    put("model".into(), &json!(m.model));
    for (k, v) in &m.config {
        put(format!("config.{k}"), v);
    }
    if let Some(load) = m.test.extra.get("load").and_then(Value::as_object) {
        for (k, v) in load {
            put(format!("load.{k}"), v);
        }
    }
    if let Some(input) = input_key(m) {
        put("input".into(), &json!(input.display()));
    }
    let mut metrics: BTreeMap<String, f64> = METRICS
        .iter()
        .filter_map(|d| {
            (d.get)(m)
                .filter(|v| v.is_finite())
                .map(|v| (d.key.to_string(), v))
        })
        .collect();
    let r = &m.results;
    metrics.insert("success_count".into(), r.success_count as f64);
    metrics.insert("failure_count".into(), r.failure_count as f64);
    metrics.insert("total_time_seconds".into(), r.total_time_seconds);
    if let Some(g) = &r.goodput {
        metrics.insert("goodput_requests_per_sec".into(), g.requests_per_sec);
        metrics.insert("goodput_percent".into(), g.percent);
    }
    let mut tags = BTreeMap::new();
    tags.insert("benchkeep.test_id".to_string(), m.test_id.clone());
    tags.insert("benchkeep.benchmark".to_string(), bench_name(m));
    tags.insert("mlflow.runName".to_string(), m.test_id.clone());
    tags.insert("host".to_string(), m.host.hostname.clone());
    tags.insert("platform".to_string(), m.platform.clone());
    tags.insert("status".to_string(), m.status.to_string());
    if let Some(s) = &m.sweep {
        tags.insert("sweep.id".to_string(), s.id.clone());
        tags.insert("sweep.axis".to_string(), s.axis.clone());
        tags.insert("sweep.value".to_string(), s.value.to_string());
    }
    for (k, v) in &m.labels {
        tags.insert(format!("label.{k}"), super::h2h::truncate(v, MAX_PARAM));
    }
    let start_ms = crate::catalog::run_instant(m).map(|t| t.timestamp_millis());
    MlflowRun {
        name: m.test_id.clone(),
        start_ms,
        end_ms: start_ms.map(|s| s + (r.total_time_seconds.max(0.0) * 1000.0) as i64),
        finished: m.status.is_final(),
        failed: matches!(m.status, Status::Failed),
        params,
        metrics,
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Metadata;

    fn run(id: &str, platform: &str, ts: &str, tok_s: f64) -> Metadata {
        let mut m: Metadata = serde_json::from_value(json!({
            "schema_version": 1, "test_id": id, "timestamp": ts, "platform": platform,
            "model": "m", "config": {"max_num_seqs": 8}, "status": "completed",
            "test": {"num_requests": 10, "output_file": "raw/x.jsonl",
                     "load": {"concurrency": 4, "max_tokens": 64}},
            "results": {"success_count": 10, "failure_count": 0, "total_time_seconds": 2.0,
                "throughput_tokens_per_sec": tok_s * 2.0, "throughput_requests_per_sec": 5.0,
                "avg_prompt_tokens": 10.0, "avg_completion_tokens": 20.0,
                "output_tokens_per_sec": tok_s,
                "latency_ms": {"ttft": {"count": 10, "mean": 40.0, "p50": 40.0, "p90": 41.0,
                    "p95": 42.0, "p99": 43.0, "max": 44.0}}},
            "tool": {"name": "benchkeep", "version": "0"},
            "host": {"hostname": "gpu-a", "os": "linux", "cpus": 2},
            "labels": {"input": "chat"},
            "source": {"kind": "run", "format": "openai"}
        }))
        .expect("fixture");
        m.labels.insert("input".into(), "chat".into());
        m
    }

    #[test]
    fn bmf_has_one_value_per_benchmark_and_measure_from_the_latest_run() {
        let runs = vec![
            run("a-1", "vllm", "2026-01-01T00:00:00Z", 100.0),
            run("a-2", "vllm", "2026-01-02T00:00:00Z", 120.0),
            run("b-1", "ollama", "2026-01-01T00:00:00Z", 50.0),
        ];
        let doc: Value = serde_json::from_str(&bmf(&runs)).unwrap();
        let obj = doc.as_object().unwrap();
        assert_eq!(obj.len(), 2, "{doc}");
        let v = &doc["vllm/m/chat/concurrency 4, max_tokens 64"];
        assert_eq!(v["output-tokens-per-sec"]["value"], json!(120.0));
        assert_eq!(v["ttft-p50-ms"]["value"], json!(40.0));
        assert_eq!(
            doc["ollama/m/chat/concurrency 4, max_tokens 64"]["output-tokens-per-sec"]["value"],
            json!(50.0)
        );
    }

    #[test]
    fn gab_splits_by_direction() {
        let runs = vec![run("a-1", "vllm", "2026-01-01T00:00:00Z", 100.0)];
        let big: Vec<Value> =
            serde_json::from_str(&github_action_benchmark(&runs, GabTool::Bigger)).unwrap();
        let small: Vec<Value> =
            serde_json::from_str(&github_action_benchmark(&runs, GabTool::Smaller)).unwrap();
        assert!(
            big.iter()
                .any(|i| i["name"].as_str().unwrap().ends_with("Output tok/s")
                    && i["unit"] == "tokens/s"
                    && i["value"] == json!(100.0))
        );
        assert!(big.iter().all(|i| i["unit"] != "ms"));
        assert!(
            small.iter().any(
                |i| i["name"].as_str().unwrap().ends_with("TTFT p50 (ms)") && i["unit"] == "ms"
            )
        );
        assert!(small.iter().all(|i| i["unit"] == "ms" || i["unit"] == "GB"));
    }

    #[test]
    fn failed_and_running_runs_are_left_out_and_interrupted_only_as_a_last_resort() {
        let mut bad = run("a-3", "vllm", "2026-01-03T00:00:00Z", 1.0);
        bad.results.success_count = 0;
        let mut cut = run("a-4", "vllm", "2026-01-04T00:00:00Z", 2.0);
        cut.status = Status::Interrupted;
        let runs = vec![
            run("a-1", "vllm", "2026-01-01T00:00:00Z", 100.0),
            bad,
            cut.clone(),
        ];
        let b = benches(&runs);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].run.test_id, "a-1");
        let only = vec![cut];
        assert_eq!(benches(&only)[0].run.test_id, "a-4");
    }

    #[test]
    fn mlflow_run_has_params_metrics_and_tags() {
        let m = run("a-1", "vllm", "2026-01-01T00:00:00Z", 100.0);
        let r = mlflow_run(&m);
        assert_eq!(r.params["config.max_num_seqs"], "8");
        assert_eq!(r.params["load.concurrency"], "4");
        assert_eq!(r.metrics["output_tokens_per_sec"], 100.0);
        assert_eq!(r.tags["benchkeep.test_id"], "a-1");
        assert_eq!(r.tags["host"], "gpu-a");
        assert_eq!(r.start_ms, Some(1_767_225_600_000));
        assert_eq!(r.end_ms, Some(1_767_225_602_000));
    }
}
