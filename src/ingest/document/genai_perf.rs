//! `genai-perf` and `genai-perf-raw`: genai-perf's summary `profile_export_genai_perf.json`
//! and perf_analyzer's `profile_export.json` (PEERS.md 1c).
//!
//! * Summary: one key per metric, `{unit, avg, min, max, std, p25..p99}`. genai-perf writes
//!   `"unit": "requests/sec"` on every non-time metric (a bug), so units come from the
//!   metric's name, never from `unit`: ms for `time_to_*`, `inter_token_latency`,
//!   `request_latency`; tokens for `*_sequence_length`; tokens/s for token throughputs;
//!   requests/s for `request_throughput`/`request_goodput`. The summary has no request
//!   count or duration: the raw export beside it (`profile_export.json`) gives the
//!   per-request records ([`records_from_raw`]).
//! * Raw: `experiments[]`, one run each, `{experiment{mode,value}, requests[{timestamp,
//!   response_timestamps[]}], window_boundaries}` in **ns** of the client's clock. E2E is
//!   the last response minus `timestamp`, TTFT the first; token counts are not recorded.

use serde_json::{Map, Value};

use super::common::{define, num, synthetic, text};
use super::{DocumentRun, Load, SweepPoint};
use crate::schema::{ErrorKind, RequestRecord};

pub(super) fn claims(value: &Value) -> bool {
    value.get("input_config").is_some_and(Value::is_object)
        && value.pointer("/request_throughput/avg").is_some()
        && value.get("aiperf_version").is_none()
}

pub(super) fn claims_raw(value: &Value) -> bool {
    value.get("experiments").is_some_and(Value::is_array)
        && (value.get("service_kind").is_some() || value.get("endpoint").is_some())
}

/// The unit of a genai-perf metric, from its name.
fn unit_of(name: &str) -> &'static str {
    if name.starts_with("time_to_") || name == "inter_token_latency" || name == "request_latency" {
        "ms"
    } else if name.ends_with("_sequence_length") {
        "tokens"
    } else if name == "request_throughput" || name == "request_goodput" {
        "requests/sec"
    } else if name.ends_with("_throughput") || name.ends_with("_throughput_per_user") {
        "tokens/sec"
    } else {
        "unknown (genai-perf's `unit` is not trusted)"
    }
}

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    let cfg = value.get("input_config").cloned().unwrap_or_default();
    let mut run = DocumentRun {
        locator: locator.into(),
        model: text(cfg.pointer("/model/0")).or_else(|| text(cfg.get("model"))),
        ..Default::default()
    };
    let mut defs = Map::new();
    for (k, v) in obj {
        if k == "input_config" || !v.is_object() {
            continue;
        }
        let mut fig = v.as_object().cloned().unwrap_or_default();
        if let Some(u) = fig.remove("unit") {
            fig.insert("unit_as_written".into(), u);
        }
        fig.insert("unit".into(), unit_of(k).into());
        run.figures.insert(k.clone(), Value::Object(fig));
    }
    define(
        &mut defs,
        "unit",
        "from the metric's name; genai-perf's own `unit` (kept as unit_as_written) is wrong for non-time metrics",
    );
    define(
        &mut defs,
        "inter_token_latency",
        "ms, per request (latency - ttft) / (output tokens - 1): benchkeep's tpot",
    );
    define(&mut defs, "std", "population standard deviation");
    run.definitions = defs;
    let conc = num(cfg.get("concurrency"));
    let rate = num(cfg.get("request_rate"));
    run.load = Load {
        max_concurrency: conc.map(|c| c as u64),
        request_rate: rate,
        burstiness: None,
    };
    run.workload = synthetic(
        num(cfg.get("synthetic_input_tokens_mean")),
        num(cfg.get("output_tokens_mean")),
        cfg.get("random_seed"),
    );
    Ok(vec![run])
}

/// The per-request records of one perf_analyzer experiment, with its duration (s).
fn experiment_records(exp: &Value) -> (Vec<RequestRecord>, Option<f64>) {
    let reqs = exp.get("requests").and_then(Value::as_array);
    let ns = |v: &Value| v.as_i64().map(i128::from);
    let origin = reqs
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("timestamp").and_then(ns))
        .min();
    let mut out = Vec::new();
    for r in reqs.into_iter().flatten() {
        let Some(t0) = r.get("timestamp").and_then(ns) else {
            continue;
        };
        let o = origin.unwrap_or(t0);
        let resp: Vec<i128> = r
            .get("response_timestamps")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(ns).collect())
            .unwrap_or_default();
        let ms = |a: i128, b: i128| (b - a) as f64 / 1e6;
        let mut rec = RequestRecord {
            seq: out.len() as u64 + 1,
            ok: !resp.is_empty(),
            sent_s: Some((t0 - o) as f64 / 1e9),
            ..Default::default()
        };
        if let (Some(first), Some(last)) = (resp.first(), resp.last()) {
            rec.ttft_ms = Some(ms(t0, *first));
            rec.e2e_ms = Some(ms(t0, *last));
            rec.first_token_s = Some((first - o) as f64 / 1e9);
            rec.end_s = Some((last - o) as f64 / 1e9);
            rec.itl_ms = resp.windows(2).map(|w| ms(w[0], w[1])).collect();
        } else {
            rec.error_kind = Some(ErrorKind::Other);
            rec.error = Some("no response recorded".into());
        }
        out.push(rec);
    }
    let window = exp
        .get("window_boundaries")
        .and_then(Value::as_array)
        .and_then(|w| Some((ns(w.first()?)?, ns(w.last()?)?)))
        .map(|(a, b)| (b - a) as f64 / 1e9)
        .filter(|d| *d > 0.0);
    (out, window)
}

/// The records of the first experiment of a raw `profile_export.json` (for the summary
/// beside it), with the experiment's duration in seconds when it has window boundaries.
pub fn records_from_raw(raw: &Value) -> (Vec<RequestRecord>, Option<f64>) {
    raw.pointer("/experiments/0")
        .map(experiment_records)
        .unwrap_or_default()
}

pub(super) fn read_raw(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let exps = value
        .get("experiments")
        .and_then(Value::as_array)
        .ok_or("no `experiments` array")?;
    let mut runs = Vec::new();
    for (i, exp) in exps.iter().enumerate() {
        let (records, window) = experiment_records(exp);
        let mode = text(exp.pointer("/experiment/mode")).unwrap_or_default();
        let v = num(exp.pointer("/experiment/value"));
        let (axis, load) = if mode == "request_rate" {
            (
                "rate",
                Load {
                    request_rate: v,
                    ..Default::default()
                },
            )
        } else {
            (
                "concurrency",
                Load {
                    max_concurrency: v.map(|c| c as u64),
                    ..Default::default()
                },
            )
        };
        let mut run = DocumentRun {
            locator: format!("{locator}: experiments[{i}]"),
            records,
            duration_s: window,
            load,
            ..Default::default()
        };
        if exps.len() > 1 {
            run.sweep = v.map(|value| SweepPoint {
                group: None,
                axis,
                value,
                role: "point",
            });
        }
        if let Some(k) = text(value.get("service_kind")) {
            run.notes.insert("service_kind".into(), k.into());
        }
        if let Some(e) = text(value.get("endpoint")) {
            run.notes.insert("endpoint".into(), e.into());
        }
        runs.push(run);
    }
    Ok(runs)
}
