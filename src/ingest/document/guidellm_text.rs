//! GuideLLM's other report files, turned into the shape of its `benchmarks.json` so that
//! one reader ([`super::guidellm`]) reads all three: `benchmarks.yaml` (the same report as
//! the JSON, as YAML) and `benchmarks.csv` (one row per benchmark under three header rows:
//! group, column, statistic; summary statistics only, no per-request data).
//!
//! From the CSV only what it holds is taken: request counts, duration, strategy, model and
//! workload (from its `Runtime Info` columns), and the mean, median and standard deviation
//! of each distribution. Its `Percentiles` cells are unlabelled lists whose order does not
//! match the JSON's percentile keys, so they are not used: latency summaries of a CSV-only
//! report stay empty (no count, max or labelled percentiles), and benchkeep's figures come
//! from the tool's totals.

use serde_json::{Map, Value, json};

use super::common::num;

/// The report in a YAML file, when the file is a YAML mapping (not JSON: that is read
/// as JSON). `None` when it does not parse as YAML.
pub(super) fn yaml(bytes: &[u8]) -> Option<Value> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if matches!(first, b'{' | b'[') {
        return None;
    }
    let v: Value = serde_norway::from_slice(bytes).ok()?;
    v.is_object().then_some(v)
}

/// The CSV's columns, by GuideLLM's header names (group, column, statistic) -> JSON metric.
const DISTRIBUTIONS: [(&str, &str, &str); 11] = [
    ("Request Latency", "Successful Sec", "request_latency"),
    (
        "Time to First Token",
        "Successful ms",
        "time_to_first_token_ms",
    ),
    (
        "Time to First Output Token",
        "Successful ms",
        "time_to_first_output_token_ms",
    ),
    (
        "Time per Output Token",
        "Successful ms",
        "time_per_output_token_ms",
    ),
    (
        "Inter Token Latency",
        "Successful ms",
        "inter_token_latency_ms",
    ),
    (
        "Server Throughput",
        "Successful Requests/Sec",
        "requests_per_second",
    ),
    (
        "Server Throughput",
        "Successful Concurrency",
        "request_concurrency",
    ),
    (
        "Token Metrics",
        "Successful Input Tokens",
        "prompt_token_count",
    ),
    (
        "Token Metrics",
        "Successful Output Tokens",
        "output_token_count",
    ),
    (
        "Token Throughput",
        "Successful Output Tokens/Sec",
        "output_tokens_per_second",
    ),
    (
        "Token Throughput",
        "Successful Total Tokens/Sec",
        "tokens_per_second",
    ),
];

/// The report in a GuideLLM CSV, as a `benchmarks.json`-shaped value. `None` when the file
/// is not a GuideLLM CSV (its first header row starts with `Run Info`).
pub(super) fn csv(bytes: &[u8]) -> Option<Value> {
    if !bytes.starts_with(b"Run Info,") {
        return None;
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
        .collect::<Result<_, _>>()
        .ok()?;
    if rows.len() < 3 {
        return None;
    }
    let header: Vec<(String, String, String)> = (0..rows[0].len())
        .map(|i| {
            let cell = |r: usize| rows[r].get(i).cloned().unwrap_or_default();
            (cell(0), cell(1), cell(2))
        })
        .collect();
    let col = |group: &str, name: &str, stat: &str| {
        header
            .iter()
            .position(|(g, n, s)| g == group && n == name && s == stat)
    };
    let mut metadata = None;
    let mut spec = None;
    let mut benchmarks = Vec::new();
    for row in &rows[3..] {
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |group: &str, name: &str, stat: &str| {
            col(group, name, stat)
                .and_then(|i| row.get(i))
                .filter(|c| !c.trim().is_empty())
                .map(String::as_str)
        };
        let number = |group: &str, name: &str, stat: &str| {
            num(cell(group, name, stat)
                .map(|c| Value::String(c.into()))
                .as_ref())
        };
        let parsed = |group: &str, name: &str| {
            cell(group, name, "").and_then(|c| serde_json::from_str::<Value>(c).ok())
        };
        metadata = metadata.or_else(|| parsed("Runtime Info", "Metadata"));
        spec = spec.or_else(|| parsed("Runtime Info", "Arguments"));
        let mut metrics = Map::new();
        let mut totals = Map::new();
        for (k, name) in [
            ("successful", "Successful"),
            ("incomplete", "Incomplete"),
            ("errored", "Errored"),
            ("total", "Total"),
        ] {
            if let Some(c) = number("Request Counts", name, "") {
                totals.insert(k.into(), json!(c));
            }
        }
        let successful = number("Request Counts", "Successful", "");
        metrics.insert("request_totals".into(), Value::Object(totals));
        for (group, name, metric) in DISTRIBUTIONS {
            let mut s = Map::new();
            for (stat, key) in [
                ("Mean", "mean"),
                ("Median", "median"),
                ("Std Dev", "std_dev"),
            ] {
                if let Some(x) = number(group, name, stat) {
                    s.insert(key.into(), json!(x));
                }
            }
            // Token sums (the JSON's `total_sum`): mean over the successful requests.
            if metric.ends_with("_token_count")
                && let (Some(m), Some(n)) = (number(group, name, "Mean"), successful)
            {
                s.insert("total_sum".into(), json!((m * n).round()));
            }
            if !s.is_empty() {
                metrics.insert(metric.into(), json!({ "successful": s }));
            }
        }
        let strategy = strategy(cell("Benchmark", "Strategy", "").unwrap_or(""));
        let mut config = json!({ "strategy": strategy });
        for (key, group, name) in [("run_id", "Run Info", "Run ID"), ("id_", "Benchmark", "ID")] {
            if let Some(c) = cell(group, name, "") {
                config[key] = c.into();
            }
        }
        let mut b = json!({ "config": config, "metrics": metrics });
        if let Some(d) = number("Timings", "Duration", "Sec") {
            b["duration"] = json!(d);
        }
        benchmarks.push(b);
    }
    let mut metadata = metadata.unwrap_or_else(|| json!({}));
    metadata["version"] = json!(2);
    let mut out = json!({ "metadata": metadata, "benchmarks": benchmarks });
    if let Some(spec) = spec.and_then(|s| s.get("spec").cloned()) {
        out["config"] = json!({ "spec": spec });
    }
    Some(out)
}

/// A CSV `Strategy` cell (`synchronous`, `throughput@8`, `constant@15.56`, `concurrent@4`,
/// `poisson@2.0`) as the JSON's `config.strategy`.
fn strategy(cell: &str) -> Value {
    let (kind, arg) = cell.split_once('@').unwrap_or((cell, ""));
    let arg: Option<f64> = arg.trim().parse().ok();
    let mut s = json!({ "type_": kind.trim() });
    match (kind.trim(), arg) {
        ("throughput", Some(n)) => s["max_concurrency"] = json!(n as u64),
        ("concurrent", Some(n)) => s["streams"] = json!(n as u64),
        ("constant" | "poisson", Some(r)) => s["rate"] = json!(r),
        _ => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        assert_eq!(strategy("synchronous"), json!({"type_": "synchronous"}));
        assert_eq!(
            strategy("throughput@8"),
            json!({"type_": "throughput", "max_concurrency": 8})
        );
        assert_eq!(
            strategy("constant@15.56"),
            json!({"type_": "constant", "rate": 15.56})
        );
        assert_eq!(
            strategy("concurrent@4"),
            json!({"type_": "concurrent", "streams": 4})
        );
    }

    #[test]
    fn not_guidellm_text() {
        assert!(yaml(b"{\"a\":1}").is_none());
        assert!(yaml(b"just words").is_none());
        assert!(csv(b"a,b\n1,2\n").is_none());
        assert!(csv(b"Run Info,Run Info\n").is_none());
    }
}
