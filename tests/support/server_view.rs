//! Server-view helpers: a synthetic `run` against a simulator with a fast `/metrics`
//! interval, and readers of `results.server_view` and of `raw/<id>.server.jsonl`.

use std::path::Path;

use serde_json::Value;

use super::cmd::run_synthetic;
use super::out;
use super::store::only_metadata;

/// `run` of `n` synthetic requests (16 prompt words, `out_tokens` tokens) at
/// `concurrency`, sampling `/metrics` every 100 ms, plus `extra` flags. Returns the exit
/// code, stderr and the run's metadata.
pub fn run_sv(
    store: &Path,
    url: &str,
    n: &str,
    concurrency: &str,
    out_tokens: &str,
    extra: &[&str],
) -> (i32, String, Value) {
    let mut c = run_synthetic(store, "vllm", "sim-model", url, "16", out_tokens);
    c.args([
        "--num-requests",
        n,
        "--concurrency",
        concurrency,
        "--server-metrics-interval",
        "100ms",
        "--gpu",
        "off",
        "-q",
    ])
    .args(extra);
    let (code, o, e) = out(&mut c);
    assert_eq!(code, 0, "run failed: {o}{e}");
    (code, e, only_metadata(store))
}

/// `results.server_view` of a run's metadata.
pub fn view(meta: &Value) -> &Value {
    &meta["results"]["server_view"]
}

/// A number of the view (`"mean_ms.queue"`, `"breakdown.remainder_ms"`).
pub fn num(meta: &Value, path: &str) -> f64 {
    let mut v = view(meta);
    for k in path.split('.') {
        v = &v[k];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("server_view.{path} missing: {:#}", view(meta)))
}

/// The lines of the run's server series, parsed.
pub fn series(store: &Path, meta: &Value) -> Vec<Value> {
    let rel = view(meta)["series"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("no series: {:#}", view(meta)));
    std::fs::read_to_string(store.join(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
