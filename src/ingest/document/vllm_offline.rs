//! `vllm-bench-throughput` and `vllm-bench-latency`: the `--output-json` files of the
//! offline `vllm bench throughput` and `vllm bench latency` (PEERS.md 1a.2).
//!
//! * throughput: `{model_id, elapsed_time (s), num_requests, total_num_tokens,
//!   requests_per_second, tokens_per_second}`. `tokens_per_second` and `total_num_tokens`
//!   count prompt **and** output tokens (benchkeep's `throughput_tokens_per_sec` is the
//!   same definition; output tok/s is not in the file). No per-request data.
//! * latency: `{avg_latency (s), latencies[] (s per batch iteration), percentiles{"10",..}}`:
//!   each "request" is one whole batch, timed end to end; the run's duration is the sum of
//!   the iterations.

use serde_json::Value;

use super::DocumentRun;
use super::common::{count, define, num, scalars, text};
use crate::schema::RequestRecord;

pub(super) fn claims_throughput(value: &Value) -> bool {
    [
        "elapsed_time",
        "num_requests",
        "tokens_per_second",
        "requests_per_second",
    ]
    .iter()
    .all(|k| value.get(*k).is_some())
}

pub(super) fn claims_latency(value: &Value) -> bool {
    value.get("avg_latency").is_some()
        && value.get("latencies").is_some_and(Value::is_array)
        && value.get("percentiles").is_some_and(Value::is_object)
}

pub(super) fn read_throughput(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let n = count(value.get("num_requests")).ok_or("`num_requests` is not a count")?;
    let mut run = DocumentRun {
        locator: locator.into(),
        duration_s: num(value.get("elapsed_time")).filter(|d| *d > 0.0),
        model: text(value.get("model_id")),
        ..Default::default()
    };
    run.totals.completed = Some(n);
    run.totals.failed = Some(0);
    let obj = value.as_object().ok_or("not a JSON object")?;
    run.figures = scalars(obj, &["model_id"]);
    define(
        &mut run.definitions,
        "tokens_per_second",
        "prompt + output tokens per second (benchkeep's throughput_tokens_per_sec), not output tok/s",
    );
    define(
        &mut run.definitions,
        "total_num_tokens",
        "prompt + output tokens (HF/MII backends: the dataset's expected lengths)",
    );
    define(&mut run.definitions, "elapsed_time", "seconds");
    Ok(vec![run])
}

pub(super) fn read_latency(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let lat = value
        .get("latencies")
        .and_then(Value::as_array)
        .ok_or("no `latencies` array")?;
    let mut run = DocumentRun {
        locator: locator.into(),
        model: text(value.get("model_id")),
        ..Default::default()
    };
    let mut t = 0.0;
    for (i, v) in lat.iter().enumerate() {
        let s = num(Some(v)).ok_or(format!("latencies[{i}] is not a number"))?;
        run.records.push(RequestRecord {
            seq: i as u64 + 1,
            ok: true,
            e2e_ms: Some(s * 1000.0),
            sent_s: Some(t),
            end_s: Some(t + s),
            ..Default::default()
        });
        t += s;
    }
    run.duration_s = (t > 0.0).then_some(t);
    if let Some(a) = value.get("avg_latency") {
        run.figures.insert("avg_latency".into(), a.clone());
    }
    if let Some(p) = value.get("percentiles") {
        run.figures.insert("percentiles".into(), p.clone());
    }
    define(
        &mut run.definitions,
        "avg_latency",
        "seconds per batch iteration (one whole batch, not one request)",
    );
    define(
        &mut run.definitions,
        "percentiles",
        "seconds per batch iteration, keyed by percentile",
    );
    run.notes
        .insert("requests_are".into(), "batch iterations".into());
    Ok(vec![run])
}
