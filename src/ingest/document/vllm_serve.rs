//! `vllm-bench-serve`: the result file of `vllm bench serve --save-result` (PEERS.md 1a.1).
//!
//! One flat JSON object per run: `--save-result` writes one compact object,
//! `--append-result` one object per line (the last line without `\n`), a sweep's
//! `run=N.json` one pretty-printed object. An object is claimed when it has `backend`,
//! `request_throughput`, `output_throughput`, `duration` and at least one `*_ms` key.
//!
//! * Per-request records come from the parallel arrays, one entry per request in issue
//!   order, failed ones included. With `--save-detailed`: `input_lens` (prompt tokens),
//!   `output_lens` (output tokens), `ttfts` (**s**), `itls` (lists, **s**), `latencies`
//!   (e2e, **s**), `start_times` (s, a monotonic clock with an arbitrary origin: only
//!   differences are used) and `errors` (`""` on success, else the failure). Without it
//!   only `latencies` (and `queue_times`) are written: records then carry the e2e latency
//!   alone, and a request whose latency is 0 counts as failed when the file says some
//!   failed (vLLM leaves a failed request's latency at 0).
//! * Failure kinds from the error text: an HTTP reason phrase (`Internal Server Error`)
//!   is `http_status`; a timeout is `timeout`; a connection failure is `connect`; any
//!   other text (a Python traceback) is `other`.
//! * Figures: `duration`, `completed`, `failed`, `total_*`, `*_throughput`,
//!   `request_goodput`, `max_output_tokens_per_s`, `max_concurrent_requests`, `rtfx`,
//!   every `mean_/median_/std_/pNN_*_ms`, and `spec_decode_*`, `probe_*`, `diffusion_*`,
//!   kept as written.
//! * Load: `max_concurrency`, `request_rate` (a number, or `"inf"`), `burstiness`.
//! * Notes: every other scalar top-level value (`backend`, `label`, `num_prompts`, the
//!   `--metadata KEY=VALUE` pairs, a sweep's overrides and `run_number`).

use serde_json::{Map, Value};

use super::{DocumentRun, Load, Totals};
use crate::schema::{ErrorKind, MAX_ERROR_MESSAGE, RequestRecord, truncate};

/// Per-request arrays (and other bulky values) that are never kept as notes.
const ARRAYS: [&str; 10] = [
    "input_lens",
    "output_lens",
    "ttfts",
    "itls",
    "start_times",
    "generated_texts",
    "errors",
    "latencies",
    "queue_times",
    "rps_change_events",
];

/// Keys that become their own fields of the run.
const OWN: [&str; 5] = [
    "date",
    "model_id",
    "request_rate",
    "burstiness",
    "max_concurrency",
];

const FIGURES: [&str; 14] = [
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
    "rtfx",
    "total_input_sequences",
    "input_sequence_throughput",
];

/// Reason phrases aiohttp gives for non-200 answers, which vLLM stores as the error.
const HTTP_REASONS: [&str; 12] = [
    "Bad Request",
    "Unauthorized",
    "Forbidden",
    "Not Found",
    "Method Not Allowed",
    "Request Timeout",
    "Payload Too Large",
    "Unprocessable Entity",
    "Too Many Requests",
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
];

pub(super) fn claims(value: &Value) -> bool {
    let Some(obj) = value.as_object() else {
        return false;
    };
    [
        "backend",
        "request_throughput",
        "output_throughput",
        "duration",
    ]
    .iter()
    .all(|k| obj.contains_key(*k))
        && obj.keys().any(|k| k.ends_with("_ms"))
}

/// The file does not record vLLM's version.
pub(super) fn tool_version(_value: &Value) -> Option<String> {
    None
}

fn is_figure(key: &str) -> bool {
    FIGURES.contains(&key)
        || key.starts_with("spec_decode_")
        || key.starts_with("probe_")
        || key.starts_with("diffusion_")
        || (key.ends_with("_ms")
            && (key.starts_with("mean_")
                || key.starts_with("median_")
                || key.starts_with("std_")
                || (key.starts_with('p') && key[1..].starts_with(|c: char| c.is_ascii_digit()))))
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|x| *x >= 0.0 && x.fract() == 0.0 && *x < 9.0e15)
            .map(|x| x as u64)
    })
}

/// `request_rate`: a number, or `"inf"` (any spelling Python's `float()` accepts).
fn rate(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "inf" | "infinity") => {
            Some(f64::INFINITY)
        }
        Value::String(s) => s.parse::<f64>().ok().filter(|x| x.is_finite()),
        other => num(Some(other)),
    }
}

fn error_kind(message: &str) -> ErrorKind {
    let m = message.trim();
    if HTTP_REASONS.contains(&m) || m == "Gateway Timeout" {
        return ErrorKind::HttpStatus;
    }
    let lower = m.to_ascii_lowercase();
    if lower.contains("timeout") || lower.contains("timed out") {
        ErrorKind::Timeout
    } else if lower.contains("clientconnectorerror")
        || lower.contains("connection refused")
        || lower.contains("cannot connect")
    {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    }
}

/// The per-request arrays of one object, checked to have one entry per request.
struct Arrays {
    latencies: Option<Vec<Value>>,
    ttfts: Option<Vec<Value>>,
    itls: Option<Vec<Value>>,
    input_lens: Option<Vec<Value>>,
    output_lens: Option<Vec<Value>>,
    start_times: Option<Vec<Value>>,
    errors: Option<Vec<Value>>,
}

impl Arrays {
    fn take(obj: &mut Map<String, Value>) -> Result<(Arrays, usize), String> {
        let mut take = |key: &str| -> Result<Option<Vec<Value>>, String> {
            match obj.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => Ok(Some(a)),
                Some(_) => Err(format!("`{key}` is not an array")),
            }
        };
        let a = Arrays {
            latencies: take("latencies")?,
            ttfts: take("ttfts")?,
            itls: take("itls")?,
            input_lens: take("input_lens")?,
            output_lens: take("output_lens")?,
            start_times: take("start_times")?,
            errors: take("errors")?,
        };
        let lens = [
            ("latencies", &a.latencies),
            ("ttfts", &a.ttfts),
            ("itls", &a.itls),
            ("input_lens", &a.input_lens),
            ("output_lens", &a.output_lens),
            ("start_times", &a.start_times),
            ("errors", &a.errors),
        ];
        let present: Vec<(&str, usize)> = lens
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.len())))
            .collect();
        let n = present.first().map_or(0, |(_, n)| *n);
        if present.iter().any(|(_, len)| *len != n) {
            let what: Vec<String> = present.iter().map(|(k, l)| format!("{k} {l}")).collect();
            return Err(format!(
                "its per-request arrays differ in length ({}); a cut or edited file?",
                what.join(", ")
            ));
        }
        Ok((a, n))
    }
}

fn at(a: &Option<Vec<Value>>, i: usize) -> Option<&Value> {
    a.as_ref().and_then(|v| v.get(i))
}

pub(super) fn read(value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    for key in ["generated_texts", "queue_times"] {
        obj.remove(key); // large, and not used
    }
    let (arrays, n) = Arrays::take(&mut obj)?;
    let totals = Totals {
        completed: count(obj.get("completed")),
        failed: count(obj.get("failed")),
        input_tokens: count(obj.get("total_input_tokens")),
        output_tokens: count(obj.get("total_output_tokens")),
    };
    let mut run = DocumentRun {
        locator: locator.to_string(),
        duration_s: num(obj.get("duration")).filter(|d| *d > 0.0),
        started: obj.get("date").and_then(Value::as_str).map(str::to_string),
        model: obj
            .get("model_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        load: Load {
            max_concurrency: count(obj.get("max_concurrency")),
            request_rate: rate(obj.get("request_rate")),
            burstiness: num(obj.get("burstiness")),
        },
        totals,
        ..Default::default()
    };
    let detailed = arrays.errors.is_some() || arrays.ttfts.is_some();
    run.records_have_tokens =
        detailed && (arrays.input_lens.is_some() || arrays.output_lens.is_some());
    let origin = arrays.start_times.as_ref().and_then(|s| {
        s.iter()
            .filter_map(|v| num(Some(v)))
            .min_by(|a, b| a.total_cmp(b))
    });
    let failed_expected = run.totals.failed.unwrap_or(0);
    run.records.reserve(n);
    for i in 0..n {
        let seq = i as u64 + 1;
        let latency = num(at(&arrays.latencies, i));
        let error = at(&arrays.errors, i)
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty());
        let sent_s = match (num(at(&arrays.start_times, i)), origin) {
            (Some(t), Some(o)) => Some(t - o),
            _ => None,
        };
        let mut r = if let Some(e) = error {
            RequestRecord::failed(seq, error_kind(e), truncate(e.trim(), MAX_ERROR_MESSAGE))
        } else if !detailed && failed_expected > 0 && latency == Some(0.0) {
            RequestRecord::failed(
                seq,
                ErrorKind::Other,
                "failed (latency 0; the file was saved without --save-detailed, so it has no error text)",
            )
        } else {
            let ttft = num(at(&arrays.ttfts, i));
            RequestRecord {
                seq,
                ok: true,
                completion_tokens: count(at(&arrays.output_lens, i)),
                ttft_ms: ttft.map(|s| s * 1000.0),
                e2e_ms: latency.map(|s| s * 1000.0),
                itl_ms: at(&arrays.itls, i)
                    .and_then(Value::as_array)
                    .map(|gaps| gaps.iter().filter_map(|g| num(Some(g))).map(|s| s * 1000.0))
                    .into_iter()
                    .flatten()
                    .collect(),
                first_token_s: sent_s.zip(ttft).map(|(s, t)| s + t),
                end_s: sent_s.zip(latency).map(|(s, l)| s + l),
                ..Default::default()
            }
        };
        r.prompt_tokens = count(at(&arrays.input_lens, i));
        r.sent_s = sent_s;
        run.records.push(r);
    }
    if !detailed && failed_expected > 0 && n > 0 {
        let zeros = run.records.iter().filter(|r| !r.ok).count() as u64;
        if zeros != failed_expected {
            run.warnings.push(format!(
                "the file says {failed_expected} request(s) failed but {zeros} have latency 0; \
                 without --save-detailed the failed ones cannot be told apart"
            ));
        }
    }
    for (key, value) in obj {
        if is_figure(&key) {
            run.figures.insert(key, value);
        } else if !OWN.contains(&key.as_str())
            && !ARRAYS.contains(&key.as_str())
            && !value.is_array()
            && !value.is_object()
        {
            run.notes.insert(key, value);
        }
    }
    Ok(vec![run])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"date":"20260301-101500","endpoint_type":"openai-chat","backend":"openai-chat",
            "label":null,"model_id":"org/m","tokenizer_id":"org/m","num_prompts":3,"tp":"1",
            "request_rate":"inf","burstiness":1.0,"max_concurrency":2,"duration":3.0,
            "completed":2,"failed":1,"total_input_tokens":30,"total_output_tokens":7,
            "request_throughput":0.67,"request_goodput":null,"output_throughput":2.3,
            "mean_ttft_ms":120.0,"p99.9_ttft_ms":130.0,"p99_tpot_ms":9.0})
    }

    #[test]
    fn detailed_arrays_become_records_in_ms() {
        let mut v = base();
        let o = v.as_object_mut().unwrap();
        o.insert("input_lens".into(), json!([10, 20, 5]));
        o.insert("output_lens".into(), json!([3, 4, 0]));
        o.insert("ttfts".into(), json!([0.123, 0.2, 0.0]));
        o.insert("itls".into(), json!([[0.01, 0.02], [0.01, 0.01, 0.01], []]));
        o.insert("latencies".into(), json!([0.5, 0.9, 0.0]));
        o.insert("start_times".into(), json!([2220.9, 2221.0, 2221.1]));
        o.insert(
            "errors".into(),
            json!(["", "", "Traceback ...\nasyncio.TimeoutError"]),
        );
        o.insert("generated_texts".into(), json!(["a", "b", ""]));
        assert!(claims(&v));
        let runs = read(v, "line 1").unwrap();
        let r = &runs[0];
        assert!(r.records_have_tokens);
        assert_eq!(r.records.len(), 3);
        let a = &r.records[0];
        assert!(a.ok);
        assert!((a.ttft_ms.unwrap() - 123.0).abs() < 1e-9);
        assert!((a.e2e_ms.unwrap() - 500.0).abs() < 1e-9);
        assert_eq!(a.itl_ms.len(), 2);
        assert!((a.itl_ms[1] - 20.0).abs() < 1e-9);
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(10), Some(3)));
        assert_eq!(a.sent_s, Some(0.0));
        let c = &r.records[2];
        assert!(!c.ok);
        assert_eq!(c.error_kind, Some(ErrorKind::Timeout));
        assert_eq!(r.load.request_rate, Some(f64::INFINITY));
        assert_eq!(r.load.max_concurrency, Some(2));
        assert_eq!(r.started.as_deref(), Some("20260301-101500"));
        assert_eq!(r.model.as_deref(), Some("org/m"));
        assert_eq!(r.figures["mean_ttft_ms"], json!(120.0));
        assert_eq!(r.figures["p99.9_ttft_ms"], json!(130.0));
        assert_eq!(r.figures["request_goodput"], Value::Null);
        assert_eq!(r.notes["tp"], json!("1"));
        assert_eq!(r.notes["backend"], json!("openai-chat"));
        assert!(!r.notes.contains_key("date") && !r.figures.contains_key("latencies"));
    }

    #[test]
    fn latencies_alone() {
        let mut v = base();
        let o = v.as_object_mut().unwrap();
        o.insert("latencies".into(), json!([0.5, 0.0, 0.7]));
        o.insert("queue_times".into(), json!([0.0, 0.0, 0.1]));
        let r = &read(v, "line 1").unwrap()[0];
        assert!(!r.records_have_tokens);
        let ok: Vec<bool> = r.records.iter().map(|r| r.ok).collect();
        assert_eq!(ok, [true, false, true]);
        assert!(r.warnings.is_empty());
        assert_eq!(r.records[2].e2e_ms, Some(700.0));
        assert_eq!(r.records[2].ttft_ms, None);
    }

    #[test]
    fn bad_arrays_and_claims() {
        let mut v = base();
        let o = v.as_object_mut().unwrap();
        o.insert("latencies".into(), json!([0.5]));
        o.insert("errors".into(), json!(["", ""]));
        assert!(read(v, "line 1").unwrap_err().contains("differ in length"));
        assert!(!claims(&json!({"backend": "x", "duration": 1.0})));
        assert!(!claims(&json!([1])));
    }

    #[test]
    fn kinds_and_rates() {
        assert_eq!(error_kind("Internal Server Error"), ErrorKind::HttpStatus);
        assert_eq!(error_kind("Gateway Timeout"), ErrorKind::HttpStatus);
        assert_eq!(
            error_kind("aiohttp.ClientConnectorError: x"),
            ErrorKind::Connect
        );
        assert_eq!(error_kind("ValueError: boom"), ErrorKind::Other);
        assert_eq!(rate(Some(&json!(20.0))), Some(20.0));
        assert_eq!(rate(Some(&json!(10))), Some(10.0));
        assert_eq!(rate(Some(&json!("inf"))), Some(f64::INFINITY));
        assert_eq!(rate(Some(&Value::Null)), None);
    }
}
