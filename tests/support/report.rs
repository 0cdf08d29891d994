//! Shared fixtures for the report tests: stores built from fixed metadata values (written
//! with `Store::publish_new`, not via `analyze`) and deterministic raw logs.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::api::schema::Metadata;
use super::api::store::{Store, file_safe};

pub const SHA_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const SHA_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
pub const PAYLOAD: &str = "</script><img src=x onerror=alert(1)>|x";

/// Figures of one fixture run.
#[derive(Clone)]
pub struct Spec {
    pub platform: &'static str,
    pub model: String,
    pub timestamp: &'static str,
    /// `Some(sha)`: the request file's hash; `None`: an imported results file (unknown input).
    pub input_sha: Option<&'static str>,
    pub output_tps: f64,
    pub success: u64,
    pub failure: u64,
    pub ttft_p50: Option<f64>,
    pub vram_used_gb: Option<f64>,
    pub labels: Value,
    pub config: Value,
    pub errors_by_kind: Value,
}

impl Spec {
    pub fn new(
        platform: &'static str,
        model: &str,
        timestamp: &'static str,
        output_tps: f64,
    ) -> Spec {
        Spec {
            platform,
            model: model.to_string(),
            timestamp,
            input_sha: Some(SHA_A),
            output_tps,
            success: 100,
            failure: 0,
            ttft_p50: None,
            vram_used_gb: None,
            labels: json!({}),
            config: json!({}),
            errors_by_kind: json!({}),
        }
    }
}

fn lat(p50: f64) -> Value {
    json!({"count": 100, "mean": p50 * 1.1, "p50": p50, "p90": p50 * 1.8, "p95": p50 * 2.0, "p99": p50 * 2.5, "max": p50 * 3.0})
}

/// The metadata of a fixture run.
pub fn metadata(s: &Spec) -> Metadata {
    let total_time = 100.0;
    let completion = (s.output_tps * total_time).round() as u64;
    let prompt = s.success * 200;
    let mut results = json!({
        "success_count": s.success,
        "failure_count": s.failure,
        "total_time_seconds": total_time,
        "model_load_time_seconds": 20.5,
        "throughput_tokens_per_sec": (prompt + completion) as f64 / total_time,
        "throughput_requests_per_sec": s.success as f64 / total_time,
        "avg_prompt_tokens": 200.0,
        "avg_completion_tokens": if s.success > 0 { completion as f64 / s.success as f64 } else { 0.0 },
        "gpu_utilization_percent": null,
        "output_tokens_per_sec": s.output_tps,
        "total_prompt_tokens": prompt,
        "total_completion_tokens": completion,
        "unparseable_lines": 0,
        "errors_by_kind": s.errors_by_kind,
    });
    if let Some(t) = s.ttft_p50 {
        results["latency_ms"] = json!({
            "ttft": lat(t),
            "tpot": lat(20.0 * t / 100.0),
            "itl": lat(20.0 * t / 100.0),
            "e2e": lat(t * 12.0),
        });
    }
    let status = if s.success == 0 {
        "failed"
    } else if s.failure > 0 {
        "partial"
    } else {
        "completed"
    };
    let raw_sha = "c3".repeat(32);
    let v = json!({
        "schema_version": 1,
        "test_id": "",
        "timestamp": s.timestamp,
        "platform": s.platform,
        "model": s.model,
        "gpu": s.vram_used_gb.map(|v| json!({"name": "RTX 4080", "vram_total_gb": 16.0, "vram_used_gb": v, "energy_joules": 50_000.0})),
        "config": s.config,
        "test": {
            "num_requests": s.success + s.failure,
            "input_file": if s.input_sha.is_some() { "prompts/batch_100.jsonl" } else { "results.jsonl" },
            "output_file": "",
            "input_sha256": s.input_sha.unwrap_or(&raw_sha),
            "raw_sha256": raw_sha,
            "raw_bytes": 1000,
        },
        "results": results,
        "status": status,
        "tool": {"name": "benchkeep", "version": "0.1.0"},
        "host": {"hostname": "bench-host", "os": "linux-x86_64", "cpus": 16},
        "labels": s.labels,
        "source": {"kind": if s.input_sha.is_some() { "run" } else { "analyze" }, "format": "benchkeep"},
    });
    serde_json::from_value(v).expect("fixture metadata")
}

/// Publish a fixture run; returns its test id.
pub fn publish(store: &Store, s: &Spec) -> String {
    let mut m = metadata(s);
    let base = format!(
        "{}-{}-{}-{}",
        file_safe(s.platform),
        file_safe(&s.model),
        s.success + s.failure,
        &s.timestamp[..10]
    );
    store.publish_new(&base, &mut m).expect("publish");
    m.test_id
}

/// A deterministic raw log in benchkeep's RequestRecord format: `n` requests whose TTFT
/// spreads around `ttft_ms`, with `failures` failed ones carrying `error`.
pub fn write_raw_log(
    store: &Store,
    test_id: &str,
    n: u64,
    ttft_ms: f64,
    failures: u64,
    error: &str,
) {
    let mut out = String::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (ttft_ms as u64);
    for seq in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x % 10_000) as f64 / 10_000.0;
        if seq < failures {
            let rec =
                json!({"seq": seq, "ok": false, "error_kind": "stream_error", "error": error});
            let _ = writeln!(out, "{rec}");
            continue;
        }
        let ttft = ttft_ms * (0.5 + u * 1.5);
        let tokens = 100 + (x % 50);
        let e2e = ttft + tokens as f64 * ttft_ms / 20.0 * (0.8 + u * 0.4);
        let rec = json!({
            "seq": seq, "ok": true, "prompt_tokens": 200, "completion_tokens": tokens,
            "ttft_ms": (ttft * 1000.0).round() / 1000.0, "e2e_ms": (e2e * 1000.0).round() / 1000.0,
            "itl_ms": [1.0, 2.0], "text": "hello"
        });
        let _ = writeln!(out, "{rec}");
    }
    std::fs::write(store.raw_dir().join(format!("{test_id}.jsonl")), out).unwrap();
}

/// A GPU series file as `benchkeep record` writes it (one line per GPU per sample).
pub fn write_gpu_series(store: &Store, test_id: &str, samples: u64) {
    let mut out = String::new();
    for i in 0..samples {
        for gpu in 0..2u32 {
            let t = i as f64 * 0.5;
            let rec = json!({
                "t_s": t, "gpu": gpu, "name": "NVIDIA H100",
                "memory_used_mib": 20_000.0 + (i as f64 * 97.0) % 40_000.0 + gpu as f64 * 3000.0,
                "memory_total_mib": 81_559.0,
                "utilization_percent": ((i * 7 + gpu as u64 * 13) % 100) as f64,
                "power_w": 250.0 + ((i * 11) % 300) as f64,
            });
            let _ = writeln!(out, "{rec}");
        }
    }
    std::fs::write(store.raw_dir().join(format!("{test_id}.gpu.jsonl")), out).unwrap();
}

/// Ids of the demo-like fixture store, in the order they were published.
pub struct Fixture {
    pub ollama_a: String,
    pub vllm_a_old: String,
    pub vllm_a: String,
    pub vllm_failed: String,
    pub offline_b: String,
    pub ollama_b: String,
    pub imported: String,
}

/// vLLM-like and Ollama-like runs on one input (A), a different input (B), an imported
/// results file with an unknown input, and a failed run.
pub fn demo_like_store(root: &Path) -> (Store, Fixture) {
    let store = Store::new(root);
    store.ensure_layout().unwrap();
    let mut ollama = Spec::new("ollama", "gemma3:4b", "2024-10-28T08:00:00Z", 120.0);
    ollama.ttft_p50 = Some(400.0);
    ollama.vram_used_gb = Some(6.1);
    ollama.failure = 2;
    ollama.errors_by_kind = json!({"http_status": 2});
    let ollama_a = publish(&store, &ollama);
    write_raw_log(
        &store,
        &ollama_a,
        102,
        400.0,
        2,
        "HTTP 500: model runner crashed",
    );

    let mut vllm_old = Spec::new(
        "vllm-serve",
        "google/gemma-3-4b-it",
        "2024-10-28T09:00:00Z",
        380.0,
    );
    vllm_old.ttft_p50 = Some(95.0);
    vllm_old.vram_used_gb = Some(14.4);
    let vllm_a_old = publish(&store, &vllm_old);

    let mut vllm = Spec::new(
        "vllm-serve",
        "google/gemma-3-4b-it",
        "2024-10-29T09:00:00Z",
        410.0,
    );
    vllm.ttft_p50 = Some(85.0);
    vllm.vram_used_gb = Some(14.4);
    vllm.config = json!({"max_model_len": 4096, "gpu_memory_utilization": 0.9});
    vllm.labels = json!({"gpu": "rtx4080"});
    let vllm_a = publish(&store, &vllm);
    write_raw_log(&store, &vllm_a, 100, 85.0, 0, "");
    write_gpu_series(&store, &vllm_a, 40);

    let mut failed = Spec::new("vllm-serve", "gemma3-4b", "2024-10-30T09:00:00Z", 0.0);
    failed.success = 0;
    failed.failure = 100;
    failed.errors_by_kind = json!({"connect": 100});
    let vllm_failed = publish(&store, &failed);

    let mut offline = Spec::new("vllm-offline", "gemma3-4b", "2024-10-28T07:38:12Z", 1809.0);
    offline.input_sha = Some(SHA_B);
    let offline_b = publish(&store, &offline);

    let mut ollama_b = Spec::new("ollama", "gemma3:12b", "2024-10-28T10:00:00Z", 60.0);
    ollama_b.input_sha = Some(SHA_B);
    let ollama_b = publish(&store, &ollama_b);

    let imported = publish(
        &store,
        &Spec {
            input_sha: None,
            ..Spec::new("ollama", "llama3.1:8b", "2024-10-27T12:00:00Z", 95.5)
        },
    );
    (
        store,
        Fixture {
            ollama_a,
            vllm_a_old,
            vllm_a,
            vllm_failed,
            offline_b,
            ollama_b,
            imported,
        },
    )
}

/// Replace every inline `<svg>...</svg>` with a line naming it and listing its texts, so a
/// snapshot checks what a chart says without pinning plotters' coordinates.
pub fn mask_svgs(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</svg>").expect("closed svg") + start + "</svg>".len();
        let svg = &rest[start..end];
        let label = svg
            .split("aria-label=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let mut texts = Vec::new();
        for part in svg.split("<text").skip(1) {
            let body = part.split_once('>').map(|(_, b)| b).unwrap_or("");
            let t = body.split("</text>").next().unwrap_or("").trim();
            if !t.is_empty() {
                texts.push(t.to_string());
            }
        }
        let _ = write!(out, "[svg \"{label}\": {}]", texts.join(" | "));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Mask what changes from build to build (the version).
pub fn mask_version(s: &str) -> String {
    s.replace(
        &format!("benchkeep {}", env!("CARGO_PKG_VERSION")),
        "benchkeep [version]",
    )
}
