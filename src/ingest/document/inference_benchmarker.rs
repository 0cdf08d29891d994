//! `inference-benchmarker`: huggingface/inference-benchmarker's result JSON (PEERS.md 1d).
//!
//! One run per `results[]` entry; the `warmup` entry is imported and marked as warm-up
//! (never a sweep point). Latency blocks are `{p50..p99, avg}` in ms, without max or count,
//! so benchkeep's latency summaries are not filled from them (nothing is made up); they
//! stay under their own names. `total_tokens` counts generated tokens only,
//! `total_tokens_sent` prompt tokens. The entries of one file share `config.run_id`.

use serde_json::{Map, Value};

use super::common::{count, define, num, synthetic, text};
use super::{DocumentRun, Load, SweepPoint, Totals};

pub(super) fn claims(value: &Value) -> bool {
    value.pointer("/config/benchmark_kind").is_some()
        && value
            .get("results")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().all(|e| e.get("executor_type").is_some()))
}

fn definitions() -> Map<String, Value> {
    let mut d = Map::new();
    define(
        &mut d,
        "inter_token_latency_ms",
        "ms, per request the mean gap after the first token, then percentiles over requests (benchkeep's tpot, without max/count)",
    );
    define(&mut d, "time_to_first_token_ms", "ms");
    define(&mut d, "e2e_latency_ms", "ms");
    define(&mut d, "total_tokens", "generated (output) tokens only");
    define(
        &mut d,
        "total_tokens_sent",
        "prompt tokens of successful requests",
    );
    define(&mut d, "token_throughput_secs", "output tokens per second");
    define(
        &mut d,
        "request_rate",
        "successful requests per second reached",
    );
    d
}

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let config = value.get("config").cloned().unwrap_or_default();
    let results = value
        .get("results")
        .and_then(Value::as_array)
        .ok_or("no `results` array")?;
    let tokens = |k: &str| num(config.pointer(&format!("/{k}/num_tokens")));
    let workload = synthetic(tokens("prompt_options"), tokens("decode_options"), None);
    let run_id = text(config.get("run_id"));
    let mut runs = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let id = text(r.get("id")).unwrap_or_default();
        let warmup = id == "warmup";
        let mut run = DocumentRun {
            locator: format!("{locator}: results[{i}] ({id})"),
            duration_s: num(r.get("duration_ms"))
                .map(|ms| ms / 1000.0)
                .filter(|d| *d > 0.0),
            started: text(value.get("start_time")),
            model: text(config.get("model_name")),
            totals: Totals {
                completed: count(r.get("successful_requests")),
                failed: count(r.get("failed_requests")),
                input_tokens: count(r.get("total_tokens_sent")),
                output_tokens: count(r.get("total_tokens")),
            },
            definitions: definitions(),
            workload: workload.clone(),
            warmup,
            ..Default::default()
        };
        let executor = text(r.get("executor_type")).unwrap_or_default();
        let rate = num(r.pointer("/config/rate"));
        let vus = count(r.pointer("/config/max_vus"));
        run.load = Load {
            max_concurrency: vus,
            request_rate: rate.or((executor == "ConstantVUs").then_some(f64::INFINITY)),
            burstiness: None,
        };
        if !warmup {
            let (value, role) = match rate {
                Some(r) => (Some(r), "point"),
                None => (num(r.get("request_rate")), "throughput"),
            };
            run.sweep = value.map(|value| SweepPoint {
                group: run_id.clone(),
                axis: "rate",
                value,
                role,
            });
        }
        if let Some(obj) = r.as_object() {
            for (k, v) in obj {
                if k != "config" {
                    run.figures.insert(k.clone(), v.clone());
                }
            }
        }
        run.notes.insert("step".into(), id.clone().into());
        run.notes.insert("executor_type".into(), executor.into());
        if let Some(k) = text(config.get("benchmark_kind")) {
            run.notes.insert("benchmark_kind".into(), k.into());
        }
        runs.push(run);
    }
    Ok(runs)
}
