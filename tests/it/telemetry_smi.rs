//! GPU telemetry end to end, with a fake `nvidia-smi` first on PATH: NVML is not on this
//! machine, so `--gpu auto` must fail over to nvidia-smi quickly; `--gpu nvidia-smi` forces
//! it. The `gpu` block is filled and `raw/<id>.gpu.jsonl` written.

use std::path::Path;

use serde_json::Value;

use crate::support::api::telemetry::Nvml;
use crate::support::bk;
use crate::support::cmd::fake_batch;
use crate::support::cmd::fake_smi_dir;
use crate::support::store::{assert_no_temp_files, only_metadata, read_rel};

fn nvml_here() -> bool {
    Nvml::open(Default::default()).is_ok()
}

fn record_with_gpu(root: &Path, mode: &str, path: &str) -> (Value, String) {
    let store = root.join("store");
    let out = root.join("out.jsonl");
    let mut cmd = bk(&store);
    cmd.env("PATH", path)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args([
            "record",
            "--platform",
            "vllm-offline",
            "--model",
            "gemma3-4b",
            "--gpu",
            mode,
            "--gpu-interval",
            "100ms",
            "--output",
            out.to_str().unwrap(),
            "--",
        ])
        .args(fake_batch(&[
            "-o",
            out.to_str().unwrap(),
            "--errors",
            "0",
            "--sleep",
            "0.5",
        ]));
    let assert = cmd.assert().success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    (only_metadata(&store), stderr)
}

fn check_fake_gpus(root: &Path, m: &Value) {
    let g = &m["gpu"];
    assert_eq!(g["source"], "nvidia-smi", "{g:#}");
    assert_eq!(g["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(g["count"], 2);
    assert_eq!(g["driver"], "550.54.15");
    assert_eq!(g["vram_total_gb"], 159.29); // 2 x 81559 MiB
    assert_eq!(g["vram_used_gb"], 40.06); // (40000 + 1024) MiB
    assert_eq!(g["utilization_avg_percent"], 95.0); // GPU 1 says [N/A]
    assert_eq!(g["power_avg_w"], 300.0); // GPU 1 says [Not Supported]
    assert_eq!(g["temperature_max_c"], 60.0);
    let samples = g["samples"].as_u64().unwrap();
    assert!(samples >= 3, "{samples} samples in 0.5 s at 100 ms");
    let energy = g["energy_joules"].as_f64().unwrap();
    let span = g["sampled_seconds"].as_f64().unwrap();
    assert!(
        (energy - 300.0 * span).abs() < 1.0,
        "{energy} J over {span} s"
    );
    assert!(span >= 0.3, "{span}");
    assert_eq!(g["devices"].as_array().unwrap().len(), 2);
    assert_eq!(g["devices"][1]["utilization_avg_percent"], Value::Null);

    let r = &m["results"];
    assert_eq!(r["gpu_utilization_percent"], 95.0);
    let tokens = r["total_completion_tokens"].as_f64().unwrap();
    assert_eq!(tokens, 80.0);
    let per_joule = r["output_tokens_per_joule"].as_f64().unwrap();
    assert!((per_joule - tokens / energy).abs() < 1e-3, "{per_joule}");

    let id = m["test_id"].as_str().unwrap();
    let rel = format!("raw/{id}.gpu.jsonl");
    assert_eq!(g["series_file"], rel.as_str());
    let text = String::from_utf8(read_rel(&root.join("store"), &rel)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len() as u64,
        2 * samples,
        "one line per sample per GPU"
    );
    let mut last_t = -1.0;
    for pair in lines.chunks(2) {
        assert_eq!(pair[0]["gpu"], 0);
        assert_eq!(pair[1]["gpu"], 1);
        let t = pair[0]["t_s"].as_f64().unwrap();
        assert!(t > last_t);
        last_t = t;
        assert_eq!(pair[0]["memory_used_mib"], 40000.0);
        assert_eq!(pair[0]["power_w"], 300.0);
        assert!(pair[1].get("power_w").is_none());
    }
    assert_no_temp_files(&root.join("store"));
}

#[test]
fn forced_nvidia_smi_fills_the_gpu_block_and_writes_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = fake_smi_dir(dir.path());
    let (m, _) = record_with_gpu(dir.path(), "nvidia-smi", bin_dir.to_str().unwrap());
    check_fake_gpus(dir.path(), &m);
}

#[test]
fn auto_falls_back_from_nvml_to_nvidia_smi() {
    if nvml_here() {
        // A real NVIDIA driver answers first on this machine; nothing to fall back from.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = fake_smi_dir(dir.path());
    let started = std::time::Instant::now();
    let (m, stderr) = record_with_gpu(dir.path(), "auto", bin_dir.to_str().unwrap());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(!stderr.contains("no GPU telemetry"), "{stderr}");
    check_fake_gpus(dir.path(), &m);
}

#[test]
fn no_gpu_tool_means_gpu_null_and_one_note() {
    if nvml_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let (m, stderr) = record_with_gpu(dir.path(), "auto", empty.to_str().unwrap());
    assert_eq!(m["gpu"], Value::Null);
    assert_eq!(m["results"]["gpu_utilization_percent"], Value::Null);
    assert!(m["results"].get("output_tokens_per_joule").is_none());
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no GPU telemetry"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(notes[0].contains("libnvidia-ml"), "{stderr}");
    assert!(notes[0].contains("nvidia-smi"), "{stderr}");
    let id = m["test_id"].as_str().unwrap();
    assert!(
        !dir.path()
            .join(format!("store/raw/{id}.gpu.jsonl"))
            .exists()
    );
    assert_no_temp_files(&dir.path().join("store"));
}

#[test]
fn forced_nvml_without_the_driver_is_a_note_not_an_error() {
    if nvml_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = fake_smi_dir(dir.path());
    let (m, stderr) = record_with_gpu(dir.path(), "nvml", bin_dir.to_str().unwrap());
    assert_eq!(m["gpu"], Value::Null);
    assert!(
        stderr.contains("no GPU telemetry: NVML unavailable"),
        "{stderr}"
    );
}
