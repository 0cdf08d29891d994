//! Small readers shared by the document formats: numbers, counts, texts, and latency
//! summaries built from a tool's own statistics.

use serde_json::{Map, Value};

use crate::schema::LatencySummary;

/// A finite number.
pub(super) fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        other => other.as_f64().filter(|x| x.is_finite()),
    }
}

/// A non-negative whole number (also written as `12.0`).
pub(super) fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        num(Some(v))
            .filter(|x| *x >= 0.0 && x.fract() == 0.0 && *x < 9.0e15)
            .map(|x| x as u64)
    })
}

/// A non-empty string (numbers written as text too).
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A latency summary from statistics in one unit, scaled to ms. Every statistic benchkeep
/// keeps must be there; else `None` (nothing is made up).
#[allow(clippy::too_many_arguments)]
pub(super) fn summary(
    count: Option<u64>,
    mean: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
    to_ms: f64,
) -> Option<LatencySummary> {
    let r = |x: f64| crate::schema::round(x * to_ms, 3);
    Some(LatencySummary {
        count: count.filter(|c| *c > 0)?,
        mean: r(mean?),
        p50: r(p50?),
        p90: r(p90?),
        p95: r(p95?),
        p99: r(p99?),
        max: r(max?),
        ci: None,
    })
}

/// Scalar values of an object (numbers, strings, booleans), for notes.
pub(super) fn scalars(obj: &Map<String, Value>, skip: &[&str]) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, v)| {
            !skip.contains(&k.as_str())
                && matches!(v, Value::Number(_) | Value::String(_) | Value::Bool(_))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A definition note for `figures`.
pub(super) fn define(defs: &mut Map<String, Value>, key: &str, note: &str) {
    defs.insert(key.to_string(), Value::String(note.to_string()));
}

/// A synthetic workload identity: prompt and output lengths (and the seed, not used to pair).
pub(super) fn synthetic(
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    seed: Option<&Value>,
) -> Map<String, Value> {
    let mut m = Map::new();
    let (Some(i), Some(o)) = (input_tokens, output_tokens) else {
        return m;
    };
    m.insert("kind".into(), "synthetic".into());
    m.insert("input_tokens".into(), whole(i));
    m.insert("output_tokens".into(), whole(o));
    if let Some(s) = seed.filter(|s| !s.is_null()) {
        m.insert("seed".into(), s.clone());
    }
    m
}

/// A number as JSON, whole numbers as integers (`64`, not `64.0`), so identities written by
/// different tools compare equal.
pub(super) fn whole(x: f64) -> Value {
    if x.fract() == 0.0 && (0.0..9.0e15).contains(&x) {
        (x as u64).into()
    } else {
        x.into()
    }
}
