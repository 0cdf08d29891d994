//! Sweep helpers: the `sweep` command over a synthetic workload, and the stored points of a
//! sweep read back by index.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::bk_std;
use super::store::all_metadata;

/// `benchkeep --store STORE sweep --platform P --model M --base-url URL --synthetic
/// --input-tokens 8 --output-tokens OUT --gpu off -q`, as a std command.
pub fn sweep_synthetic(store: &Path, platform: &str, url: &str, output_tokens: &str) -> Command {
    let mut c = bk_std(store);
    c.args([
        "sweep",
        "--platform",
        platform,
        "--model",
        "sim-model",
        "--base-url",
        url,
        "--synthetic",
        "--input-tokens",
        "8",
        "--output-tokens",
        output_tokens,
        "--gpu",
        "off",
        "-q",
    ]);
    c
}

/// Every stored point (metadata with a `sweep`), sorted by `sweep.index`.
pub fn points(store: &Path) -> Vec<Value> {
    let mut v: Vec<Value> = all_metadata(store)
        .into_iter()
        .filter(|m| m.get("sweep").is_some())
        .collect();
    v.sort_by_key(|m| m["sweep"]["index"].as_u64());
    v
}

/// A point's `results.output_tokens_per_sec`.
pub fn out_tps(m: &Value) -> f64 {
    m["results"]["output_tokens_per_sec"].as_f64().unwrap()
}

/// A point's metadata holds against `schemas/metadata.schema.json`, and every key of its
/// `sweep` is documented there.
pub fn assert_schema(m: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/metadata.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let v = jsonschema::draft202012::options().build(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(m).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{m:#}");
    let documented = schema["properties"]["sweep"]["properties"]
        .as_object()
        .unwrap();
    for key in m["sweep"].as_object().unwrap().keys() {
        assert!(
            documented.contains_key(key),
            "sweep.{key} is not documented"
        );
    }
}
