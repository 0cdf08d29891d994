//! `llmperf`: ray-project/llmperf's `*_summary.json` (PEERS.md 1d), with the per-request
//! metrics of `*_individual_responses.json` beside it ([`records_from_responses`]).
//!
//! The summary is one flat object: `results_<metric>_<stat>` in **seconds**, counts,
//! `num_concurrent_requests`, `mean/stddev_input/output_tokens`. Definitions that differ:
//! `inter_token_latency_s` is (all chunk gaps **including TTFT**) / chunks, so it is never
//! benchkeep's ITL or TPOT; `number_output_tokens` is re-tokenised with the llama
//! tokenizer. The responses have no timestamps; the run's duration is the completed count
//! over `results_num_completed_requests_per_min`.

use serde_json::{Map, Value};

use super::common::{count, define, num, scalars, synthetic, text};
use super::{DocumentRun, Load, Totals};
use crate::schema::{ErrorKind, MAX_ERROR_MESSAGE, RequestRecord, truncate};

pub(super) fn claims(value: &Value) -> bool {
    value.get("results_num_completed_requests").is_some()
        && value.get("num_concurrent_requests").is_some()
}

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    let done = count(obj.get("results_num_completed_requests"));
    let per_min = num(obj.get("results_num_completed_requests_per_min"));
    let errors = count(obj.get("results_number_errors")).unwrap_or(0);
    let mut run = DocumentRun {
        locator: locator.into(),
        duration_s: match (done, per_min) {
            (Some(d), Some(p)) if p > 0.0 => Some(d as f64 * 60.0 / p),
            _ => None,
        },
        started: count(obj.get("timestamp"))
            .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        model: text(obj.get("model")),
        totals: Totals {
            completed: done.map(|d| d.saturating_sub(errors)),
            failed: Some(errors),
            ..Default::default()
        },
        ..Default::default()
    };
    run.load = Load {
        max_concurrency: count(obj.get("num_concurrent_requests")),
        ..Default::default()
    };
    run.figures = scalars(obj, &["model", "name", "version", "timestamp"]);
    let mut d = Map::new();
    define(
        &mut d,
        "results_inter_token_latency_s",
        "seconds, (sum of chunk gaps including TTFT) / chunks: not benchkeep's itl or tpot",
    );
    define(
        &mut d,
        "results_number_output_tokens",
        "re-tokenised with the llama tokenizer, not the server's count",
    );
    define(
        &mut d,
        "results_*_s",
        "seconds; failed requests left out; stddev is the sample std",
    );
    define(&mut d, "results_error_rate", "fraction 0-1");
    run.definitions = d;
    let mut w = synthetic(
        num(obj.get("mean_input_tokens")),
        num(obj.get("mean_output_tokens")),
        None,
    );
    for k in ["stddev_input_tokens", "stddev_output_tokens"] {
        if let Some(v) = num(obj.get(k)).filter(|v| *v > 0.0) {
            w.insert(k.into(), v.into());
        }
    }
    run.workload = w;
    Ok(vec![run])
}

/// The per-request records of an `*_individual_responses.json` array (entries that are
/// not objects are skipped, as the tool can leave bare strings in it).
pub fn records_from_responses(value: &Value) -> Vec<RequestRecord> {
    let mut out = Vec::new();
    for e in value
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.is_object())
    {
        let ok = e.get("error_code").is_none_or(Value::is_null);
        let s = |k: &str| num(e.get(k)).map(|x| x * 1000.0);
        let mut r = RequestRecord {
            seq: out.len() as u64 + 1,
            ok,
            ..Default::default()
        };
        if ok {
            r.ttft_ms = s("ttft_s");
            r.e2e_ms = s("end_to_end_latency_s");
            r.prompt_tokens = count(e.get("number_input_tokens"));
            r.completion_tokens = count(e.get("number_output_tokens"));
        } else {
            r.error_kind = Some(ErrorKind::Other);
            let msg = text(e.get("error_msg")).unwrap_or_else(|| "error".into());
            r.error = Some(truncate(
                &format!("{}: {msg}", e["error_code"]),
                MAX_ERROR_MESSAGE,
            ));
        }
        out.push(r);
    }
    out
}
