//! `guidellm`: GuideLLM's `benchmarks.json` (report `metadata.version` 2; PEERS.md 1b).
//!
//! One run per `benchmarks[]` entry. Per-request records come from `requests.successful`
//! and `requests.errored` when the file kept every request (the default); when it kept a
//! sample (`sample_size`), the tool's totals and summaries are used instead and a warning
//! says so. `requests.incomplete` (requests cut off when the benchmark ended) are not
//! counted, as GuideLLM does not count them; their number is kept in the notes.
//!
//! * Times: `request_latency` is in **s**, `*_ms` in ms, timestamps epoch s.
//! * `time_per_output_token_ms` is latency / output tokens with the first token included:
//!   not benchkeep's TPOT; kept under its own name. `inter_token_latency_ms`
//!   ((last - first token) / (output tokens - 1)) is benchkeep's TPOT.
//! * Load and sweep: `strategy.type_` (`synchronous`, `throughput`, `concurrent` with
//!   `streams`, `constant`/`poisson` with `rate`); the benchmarks of one report share its
//!   `run_id`, which names the sweep.
//! * `conclusions` (knee and goodput profiles) are kept in the notes of every run.

use serde_json::{Map, Value};

use super::common::{count, define, num, summary, synthetic, text};
use super::{DocumentRun, Load, SweepPoint, Totals};
use crate::schema::{ErrorKind, Latencies, MAX_ERROR_MESSAGE, RequestRecord, truncate};

pub(super) fn claims(value: &Value) -> bool {
    value.pointer("/metadata/version").and_then(Value::as_u64) == Some(2)
        && value.get("benchmarks").is_some_and(Value::is_array)
}

/// The distributions kept as figures (their `successful` statistics).
const METRICS: [&str; 12] = [
    "requests_per_second",
    "request_concurrency",
    "request_latency",
    "prompt_token_count",
    "output_token_count",
    "time_to_first_token_ms",
    "time_to_first_output_token_ms",
    "inter_token_latency_ms",
    "time_per_output_token_ms",
    "prompt_tokens_per_second",
    "output_tokens_per_second",
    "tokens_per_second",
];

fn definitions() -> Map<String, Value> {
    let mut d = Map::new();
    define(
        &mut d,
        "request_latency",
        "seconds, request start to last token",
    );
    define(
        &mut d,
        "time_per_output_token_ms",
        "ms, request latency / output tokens, TTFT included (not benchkeep's tpot)",
    );
    define(
        &mut d,
        "inter_token_latency_ms",
        "ms, (last token - first token) / (output tokens - 1): benchkeep's tpot",
    );
    define(
        &mut d,
        "requests_per_second",
        "successful requests / measurement window",
    );
    define(
        &mut d,
        "request_concurrency",
        "requests in flight, time-weighted",
    );
    d
}

/// The `successful` statistics of one distribution, without the heavy parts.
fn successful(metrics: &Value, name: &str) -> Option<Value> {
    let mut s = metrics.get(name)?.get("successful")?.as_object()?.clone();
    for heavy in ["pdf", "percentile_cis", "cumulative_distribution_function"] {
        s.remove(heavy);
    }
    Some(Value::Object(s))
}

fn stats_summary(s: Option<&Value>, to_ms: f64) -> Option<crate::schema::LatencySummary> {
    let s = s?;
    let p = |k: &str| num(s.pointer(&format!("/percentiles/{k}")));
    summary(
        count(s.get("count")),
        num(s.get("mean")),
        num(s.get("median")).or(p("p50")),
        p("p90"),
        p("p95"),
        p("p99"),
        num(s.get("max")),
        to_ms,
    )
}

/// The synthetic lengths of a `--data` spec like `prompt_tokens=64,output_tokens=32`.
fn data_identity(data: &Value, seed: Option<&Value>) -> Map<String, Value> {
    let spec = match data {
        Value::Array(a) if a.len() == 1 => a[0].clone(),
        other => other.clone(),
    };
    let mut pairs = Map::new();
    match &spec {
        Value::String(s) => {
            for part in s.split([',', ' ']) {
                if let Some((k, v)) = part.split_once('=') {
                    pairs.insert(k.trim().into(), Value::String(v.trim().into()));
                }
            }
        }
        Value::Object(o) => pairs = o.clone(),
        _ => {}
    }
    let ident = synthetic(
        num(pairs.get("prompt_tokens")),
        num(pairs.get("output_tokens")),
        seed,
    );
    if !ident.is_empty() {
        return ident;
    }
    let mut m = Map::new();
    if !spec.is_null() {
        m.insert("kind".into(), "dataset".into());
        m.insert("data".into(), spec);
    }
    m
}

fn record(seq: u64, r: &Value, origin: f64, ok: bool) -> RequestRecord {
    let start = num(r.get("request_start_time"));
    let end = num(r.get("request_end_time"));
    let mut rec = RequestRecord {
        seq,
        ok,
        id: text(r.get("request_id")),
        prompt_tokens: count(r.get("prompt_tokens")),
        completion_tokens: count(r.get("output_tokens")),
        ttft_ms: num(r.get("time_to_first_token_ms")),
        e2e_ms: num(r.get("request_latency")).map(|s| s * 1000.0),
        sent_s: start.map(|s| s - origin),
        end_s: end.map(|e| e - origin),
        ..Default::default()
    };
    if let (Some(s), Some(t)) = (rec.sent_s, rec.ttft_ms) {
        rec.first_token_s = Some(s + t / 1000.0);
    }
    if !ok {
        let msg = text(r.pointer("/info/error")).unwrap_or_else(|| "errored".into());
        rec.error_kind = Some(ErrorKind::Other);
        rec.error = Some(truncate(&msg, MAX_ERROR_MESSAGE));
    }
    rec
}

fn load_and_point(strategy: &Value, rps: Option<f64>) -> (Load, Option<SweepPoint>) {
    let kind = strategy.get("type_").and_then(Value::as_str).unwrap_or("");
    let mut load = Load::default();
    let point = |axis, value: Option<f64>, role| {
        value.map(|value| SweepPoint {
            group: None,
            axis,
            value,
            role,
        })
    };
    let p = match kind {
        "synchronous" => {
            load.max_concurrency = Some(1);
            point("rate", rps, "synchronous")
        }
        "throughput" => {
            load.request_rate = Some(f64::INFINITY);
            load.max_concurrency = count(strategy.get("max_concurrency"));
            point("rate", rps, "throughput")
        }
        "concurrent" => {
            load.max_concurrency = count(strategy.get("streams"));
            point("concurrency", num(strategy.get("streams")), "point")
        }
        "constant" | "poisson" => {
            load.request_rate = num(strategy.get("rate"));
            if kind == "poisson" {
                load.burstiness = Some(1.0);
            }
            point("rate", num(strategy.get("rate")), "point")
        }
        _ => None,
    };
    (load, p)
}

static NULL: Value = Value::Null;

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let benchmarks = value
        .get("benchmarks")
        .and_then(Value::as_array)
        .ok_or("no `benchmarks` array")?;
    // Borrowed, never cloned: a report holds every request (hundreds of thousands of values).
    let spec = value.pointer("/config/spec").unwrap_or(&NULL);
    let model = text(spec.pointer("/backend/model"));
    let workload = data_identity(
        spec.get("data").unwrap_or(&Value::Null),
        spec.get("seed").or(spec.get("random_seed")),
    );
    let conclusions = value
        .get("conclusions")
        .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        .cloned();
    let mut runs = Vec::with_capacity(benchmarks.len());
    for (i, b) in benchmarks.iter().enumerate() {
        let metrics = b.get("metrics").unwrap_or(&NULL);
        let totals_of = |k: &str| count(metrics.pointer(&format!("/request_totals/{k}")));
        let tool_tokens = |name: &str| {
            num(metrics.pointer(&format!("/{name}/successful/total_sum"))).map(|x| x as u64)
        };
        let mut run = DocumentRun {
            locator: format!("{locator}: benchmarks[{i}]"),
            duration_s: num(b.get("duration"))
                .or_else(|| Some(num(b.get("end_time"))? - num(b.get("start_time"))?))
                .filter(|d| *d > 0.0),
            started: num(b.get("start_time"))
                .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            model: model.clone(),
            totals: Totals {
                completed: totals_of("successful"),
                failed: totals_of("errored"),
                input_tokens: tool_tokens("prompt_token_count"),
                output_tokens: tool_tokens("output_token_count"),
            },
            definitions: definitions(),
            workload: workload.clone(),
            ..Default::default()
        };
        let strategy = b.pointer("/config/strategy").unwrap_or(&NULL);
        let rps = num(metrics.pointer("/requests_per_second/successful/mean"));
        (run.load, run.sweep) = load_and_point(strategy, rps);
        if let Some(p) = run.sweep.as_mut() {
            p.group = text(b.pointer("/config/run_id"));
        }
        for name in METRICS {
            if let Some(s) = successful(metrics, name) {
                run.figures.insert(name.to_string(), s);
            }
        }
        for k in ["successful", "errored", "incomplete", "total"] {
            if let Some(c) = totals_of(k) {
                run.figures.insert(format!("requests_{k}"), c.into());
            }
        }
        if let Some(id) = text(b.pointer("/config/id_")) {
            run.notes.insert("benchmark_id".into(), id.into());
        }
        if let Some(kind) = strategy.get("type_").and_then(Value::as_str) {
            run.notes.insert("strategy".into(), kind.into());
        }
        if let Some(c) = &conclusions {
            run.notes.insert("conclusions".into(), c.clone());
        }
        let reqs = |k: &str| {
            b.pointer(&format!("/requests/{k}"))
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let (ok, errored, incomplete) = (reqs("successful"), reqs("errored"), reqs("incomplete"));
        if !incomplete.is_empty() {
            run.notes
                .insert("incomplete_requests".into(), incomplete.len().into());
        }
        let expected = run.totals.completed.unwrap_or(0) + run.totals.failed.unwrap_or(0);
        let have = (ok.len() + errored.len()) as u64;
        if have > 0 && have == expected {
            let origin = ok
                .iter()
                .chain(errored.iter())
                .filter_map(|r| num(r.get("request_start_time")))
                .fold(f64::INFINITY, f64::min);
            let origin = if origin.is_finite() { origin } else { 0.0 };
            let mut seq = 0;
            for (list, good) in [(ok, true), (errored, false)] {
                for r in list {
                    seq += 1;
                    run.records.push(record(seq, r, origin, good));
                }
            }
            run.records
                .sort_by(|a, b| a.sent_s.unwrap_or(0.0).total_cmp(&b.sent_s.unwrap_or(0.0)));
            for (i, r) in run.records.iter_mut().enumerate() {
                r.seq = i as u64 + 1;
            }
            run.records_have_tokens = run.records.iter().any(|r| r.prompt_tokens.is_some());
        } else {
            if have > 0 {
                run.warnings.push(format!(
                    "the file keeps {have} of {expected} requests (sampled): benchkeep's figures come from GuideLLM's own summaries"
                ));
            }
            let lat = Latencies {
                ttft: stats_summary(run.figures.get("time_to_first_token_ms"), 1.0),
                tpot: stats_summary(run.figures.get("inter_token_latency_ms"), 1.0),
                e2e: stats_summary(run.figures.get("request_latency"), 1000.0),
                ..Default::default()
            };
            run.latency = (!lat.is_empty()).then_some(lat);
        }
        runs.push(run);
    }
    Ok(runs)
}
