//! Stored sweeps for the sweep tests: points written as metadata (a normal run each, with
//! the `sweep` key the `sweep` command and importers write), and the rewrite that links
//! runs made by `benchkeep run` into one sweep.

use std::path::Path;

use serde_json::{Value, json};

use super::api::store::Store;
use super::report::{Spec, metadata};

/// One point's figures.
#[derive(Clone, Debug)]
pub struct Point {
    pub load: f64,
    pub output_tps: f64,
    pub ttft_p99: f64,
    pub tpot_mean: f64,
    pub success: u64,
    pub failure: u64,
    /// Requests meeting the SLO (`None`: run without `--slo`).
    pub good: Option<u64>,
}

impl Point {
    pub fn new(load: f64, output_tps: f64, ttft_p99: f64) -> Point {
        Point {
            load,
            output_tps,
            ttft_p99,
            tpot_mean: 20.0,
            success: 1000,
            failure: 0,
            good: None,
        }
    }
}

/// Publish `points` as the sweep `id` of `platform` on `axis`; returns their test ids.
pub fn publish_sweep(
    store: &Store,
    id: &str,
    platform: &'static str,
    axis: &str,
    points: &[Point],
    slo_ttft_ms: Option<f64>,
) -> Vec<String> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let spec = Spec {
                success: p.success,
                failure: p.failure,
                ttft_p50: Some(p.ttft_p99 / 2.5),
                ..Spec::new(platform, "gemma3:4b", "2026-03-01T10:00:00Z", p.output_tps)
            };
            let mut v = serde_json::to_value(metadata(&spec)).expect("json");
            v["timestamp"] = json!(format!("2026-03-01T10:{:02}:00Z", i));
            let lat = &mut v["results"]["latency_ms"];
            lat["ttft"]["p99"] = json!(p.ttft_p99);
            lat["tpot"]["mean"] = json!(p.tpot_mean);
            let rps = p.success as f64 / 100.0;
            v["results"]["throughput_requests_per_sec"] = json!(rps);
            let mut load = json!({"planned_requests": p.success + p.failure});
            load[if axis == "rate" {
                "rate"
            } else {
                "concurrency"
            }] = json!(p.load);
            v["test"]["load"] = load;
            if let (Some(good), Some(slo)) = (p.good, slo_ttft_ms) {
                v["test"]["slo_ms"] = json!({"ttft": slo});
                v["results"]["goodput"] = json!({"slo_ms": {"ttft": slo}, "good_requests": good,
                    "requests_per_sec": good as f64 / 100.0,
                    "percent": 100.0 * good as f64 / (p.success + p.failure) as f64});
            }
            v["sweep"] =
                json!({"id": id, "index": i, "axis": axis, "value": p.load, "role": "point"});
            let mut m = serde_json::from_value(v).expect("metadata");
            store
                .publish_new(&format!("{platform}-sweep-{i}"), &mut m)
                .expect("publish");
            m.test_id
        })
        .collect()
}

/// Rewrite a stored run's metadata so that it is point `index` of sweep `id` (what the
/// `sweep` command writes): the end-to-end tests link runs made by `benchkeep run`.
pub fn link(store: &Path, test_id: &str, id: &str, axis: &str, index: u32, value: f64) {
    let path = store.join("metadata").join(format!("{test_id}.json"));
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    v["sweep"] = json!({"id": id, "index": index, "axis": axis, "value": value, "role": "point"});
    std::fs::write(&path, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
}

/// Rises 100 tok/s per user to 16 users, then flat: a knee at 16.
pub fn saturating(knee: f64, per_user: f64, loads: &[f64]) -> Vec<Point> {
    loads
        .iter()
        .map(|&c| {
            let tps = per_user * c.min(knee);
            // TTFT grows once queued past the knee.
            let ttft = 100.0 * (c / knee).max(1.0).powi(2);
            Point::new(c, tps, ttft)
        })
        .collect()
}

/// A store with a vllm sweep (knee at 16 users) and an ollama sweep (knee at 2), same
/// model and input, concurrency axis.
pub fn two_platform_store(root: &Path) -> Store {
    let store = Store::new(root);
    store.ensure_layout().expect("layout");
    let loads = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 48.0, 64.0];
    publish_sweep(
        &store,
        "sweep-vllm-1",
        "vllm",
        "concurrency",
        &saturating(16.0, 100.0, &loads),
        None,
    );
    publish_sweep(
        &store,
        "sweep-ollama-1",
        "ollama",
        "concurrency",
        &saturating(2.0, 70.0, &loads),
        None,
    );
    store
}
