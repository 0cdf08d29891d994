//! `aiperf`: NVIDIA AIPerf's `profile_export_aiperf.json` (PEERS.md 1c), with the
//! per-request records of `profile_export.jsonl` beside it ([`records_from_jsonl`], read a
//! line at a time).
//!
//! Every metric carries its `unit`, which is trusted (ms, s, ns converted to ms). Summary
//! figures are kept as written (`{unit, avg, p50, ...}`); the records give benchkeep's own
//! figures. Records of a warm-up phase (`benchmark_phase` other than `profiling`) are left
//! out. Load: `input_config.loadgen` (`concurrency`, `request_rate`) or
//! `run_info.variation_values`; a sweep's points share `run_info.sweep_id`.

use std::io::BufRead;
use std::path::Path;

use serde_json::{Map, Value};

use super::common::{count, define, num, summary, synthetic, text};
use super::{DocumentRun, Load, SweepPoint, Totals};
use crate::schema::{ErrorKind, Latencies, MAX_ERROR_MESSAGE, RequestRecord, truncate};

/// Keys that are not metrics.
const PROVENANCE: [&str; 12] = [
    "schema_version",
    "aiperf_version",
    "benchmark_id",
    "start_time",
    "end_time",
    "was_cancelled",
    "input_config",
    "run_info",
    "telemetry_data",
    "error_summary",
    "warmup_metrics",
    "server_metrics",
];

pub(super) fn claims(value: &Value) -> bool {
    value.get("aiperf_version").is_some()
        || (value.get("schema_version").is_some()
            && value.get("benchmark_id").is_some()
            && value.pointer("/request_throughput/unit").is_some())
}

/// A value in `unit` as ms.
fn to_ms(v: f64, unit: &str) -> f64 {
    match unit {
        "s" | "sec" | "seconds" => v * 1000.0,
        "us" => v / 1000.0,
        "ns" => v / 1e6,
        _ => v,
    }
}

fn stat(value: &Value, tag: &str, s: &str) -> Option<f64> {
    num(value.pointer(&format!("/{tag}/{s}")))
}

fn latency(value: &Value, tag: &str) -> Option<crate::schema::LatencySummary> {
    let unit = text(value.pointer(&format!("/{tag}/unit"))).unwrap_or_else(|| "ms".into());
    let s = |k: &str| stat(value, tag, k);
    summary(
        count(value.pointer(&format!("/{tag}/count"))),
        s("avg"),
        s("p50"),
        s("p90"),
        s("p95"),
        s("p99"),
        s("max"),
        to_ms(1.0, &unit),
    )
}

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    let avg = |tag: &str| stat(&value, tag, "avg");
    let duration = avg("benchmark_duration").map(|d| {
        let unit = text(value.pointer("/benchmark_duration/unit")).unwrap_or_default();
        to_ms(d, &unit) / 1000.0
    });
    let ok = avg("request_count").map(|c| c as u64);
    let failed = avg("error_request_count").map(|c| c as u64).unwrap_or(0);
    let cfg = value.get("input_config").cloned().unwrap_or_default();
    let mut run = DocumentRun {
        locator: locator.into(),
        duration_s: duration.filter(|d| *d > 0.0),
        started: text(value.get("start_time")),
        model: text(cfg.pointer("/models/items/0/name"))
            .or_else(|| text(cfg.pointer("/endpoint/model_names/0")))
            .or_else(|| text(cfg.pointer("/model_names/0"))),
        totals: Totals {
            completed: ok,
            failed: Some(failed),
            input_tokens: avg("total_isl").map(|x| x as u64),
            output_tokens: avg("total_output_tokens")
                .or(avg("total_osl"))
                .map(|x| x as u64),
        },
        ..Default::default()
    };
    for (k, v) in obj {
        if !PROVENANCE.contains(&k.as_str()) && v.get("unit").is_some() {
            run.figures.insert(k.clone(), v.clone());
        }
    }
    let mut d = Map::new();
    define(
        &mut d,
        "inter_token_latency",
        "per request (latency - ttft) / (output tokens - 1): benchkeep's tpot",
    );
    define(
        &mut d,
        "inter_chunk_latency",
        "gaps between streamed chunks",
    );
    define(
        &mut d,
        "std",
        "sample standard deviation (every figure's `std`)",
    );
    define(
        &mut d,
        "output_sequence_length",
        "tokens counted with AIPerf's tokenizer, not the server's count (usage_completion_tokens; benchkeep's token figures use the server's count when the records have it)",
    );
    run.definitions = d;
    let load = cfg.get("loadgen").cloned().unwrap_or_default();
    let variation = value.pointer("/run_info/variation_values").cloned();
    let vary = |name: &str| {
        variation
            .as_ref()
            .and_then(|v| v.as_object())
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.ends_with(name))
                    .and_then(|(_, v)| num(Some(v)))
            })
    };
    let phase = cfg.pointer("/phases/0").cloned().unwrap_or_default();
    let conc = vary("concurrency")
        .or(num(load.get("concurrency")))
        .or(num(phase.get("concurrency")));
    let rate = vary("request_rate")
        .or(num(load.get("request_rate")))
        .or(num(phase.get("request_rate")));
    run.load = Load {
        max_concurrency: conc.map(|c| c as u64),
        request_rate: rate,
        burstiness: None,
    };
    let sweep_id = text(value.pointer("/run_info/sweep_id"));
    if sweep_id.is_some() {
        let (axis, v) = match (vary("request_rate"), vary("concurrency").or(conc)) {
            (Some(r), _) => ("rate", Some(r)),
            (None, c) => ("concurrency", c),
        };
        run.sweep = v.map(|value| SweepPoint {
            group: sweep_id,
            axis,
            value,
            role: "point",
        });
    }
    let tokens = |old: &str, new: &str| {
        num(cfg.pointer(&format!("/input/prompt/{old}/mean")))
            .or(num(cfg.pointer(&format!("/datasets/0/prompts/{new}/mean"))))
    };
    run.workload = synthetic(
        tokens("input_tokens", "isl"),
        tokens("output_tokens", "osl"),
        cfg.pointer("/input/random_seed")
            .or(value.pointer("/run_info/random_seed")),
    );
    let lat = Latencies {
        ttft: latency(&value, "time_to_first_token"),
        tpot: latency(&value, "inter_token_latency"),
        e2e: latency(&value, "request_latency"),
        ..Default::default()
    };
    run.latency = (!lat.is_empty()).then_some(lat);
    Ok(vec![run])
}

/// The metric `tag` of a record as ms (or as a plain value for counts).
fn metric(m: &Value, tag: &str) -> Option<f64> {
    let e = m.get(tag)?;
    let v = num(e.get("value"))?;
    Some(to_ms(
        v,
        e.get("unit").and_then(Value::as_str).unwrap_or("ms"),
    ))
}

/// Per-request records from an AIPerf `profile_export.jsonl`, read a line at a time.
/// Returns the records (in request start order) and the number of unusable lines.
pub fn records_from_jsonl(path: &Path) -> std::io::Result<(Vec<RequestRecord>, u64)> {
    let file = std::io::BufReader::new(crate::userfile::open_nofollow(path)?);
    let (mut out, mut bad) = (Vec::new(), 0u64);
    let mut starts: Vec<Option<i128>> = Vec::new();
    for line in file.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            bad += 1;
            continue;
        };
        let meta = v.get("metadata").cloned().unwrap_or_default();
        if text(meta.get("benchmark_phase")).is_some_and(|p| p != "profiling") {
            continue;
        }
        let m = v.get("metrics").cloned().unwrap_or_default();
        let err = v.get("error").filter(|e| !e.is_null());
        let mut r = RequestRecord {
            seq: out.len() as u64 + 1,
            ok: err.is_none(),
            id: text(meta.get("x_request_id")),
            ttft_ms: metric(&m, "time_to_first_token"),
            e2e_ms: metric(&m, "request_latency"),
            // The server's counts (benchkeep's definition) where AIPerf kept them; its own
            // ISL/OSL are counted with AIPerf's tokenizer.
            prompt_tokens: metric(&m, "usage_prompt_tokens")
                .or(metric(&m, "input_sequence_length"))
                .map(|x| x as u64),
            completion_tokens: metric(&m, "usage_completion_tokens")
                .or(metric(&m, "output_sequence_length"))
                .map(|x| x as u64),
            ..Default::default()
        };
        if let Some(Value::Array(gaps)) = m.pointer("/inter_chunk_latency/value") {
            let unit = text(m.pointer("/inter_chunk_latency/unit")).unwrap_or_else(|| "ms".into());
            r.itl_ms = gaps
                .iter()
                .filter_map(|g| num(Some(g)))
                .map(|g| to_ms(g, &unit))
                .collect();
        }
        if let Some(e) = err {
            let msg = text(e.get("message")).unwrap_or_else(|| e.to_string());
            r.error_kind = Some(if count(e.get("code")).is_some_and(|c| c >= 400) {
                ErrorKind::HttpStatus
            } else {
                ErrorKind::Other
            });
            r.http_status = count(e.get("code")).and_then(|c| u16::try_from(c).ok());
            r.error = Some(truncate(&msg, MAX_ERROR_MESSAGE));
        }
        starts.push(
            meta.get("request_start_ns")
                .and_then(Value::as_i64)
                .map(i128::from),
        );
        let end = meta
            .get("request_end_ns")
            .and_then(Value::as_i64)
            .map(i128::from);
        r.end_s = end.map(|e| e as f64); // made relative below
        out.push(r);
    }
    let origin = starts.iter().flatten().min().copied();
    if let Some(o) = origin {
        for (r, s) in out.iter_mut().zip(&starts) {
            r.sent_s = s.map(|s| (s - o) as f64 / 1e9);
            r.end_s = r.end_s.map(|e| (e as i128 - o) as f64 / 1e9);
            if let (Some(s), Some(t)) = (r.sent_s, r.ttft_ms) {
                r.first_token_s = Some(s + t / 1000.0);
            }
        }
    } else {
        for r in &mut out {
            r.end_s = None;
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_link_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("profile_export.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever opens the FIFO: a blocking open would never return.
        let err = records_from_jsonl(&fifo).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let real = dir.path().join("real.jsonl");
        std::fs::write(&real, b"").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(records_from_jsonl(&link).is_err());
        assert_eq!(records_from_jsonl(&real).unwrap().1, 0);
    }
}
