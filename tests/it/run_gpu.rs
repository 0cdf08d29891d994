//! `benchkeep run` samples the GPU with the same sampler as `record`: a fake `nvidia-smi`
//! first on PATH fills the `gpu` block and writes `raw/<id>.gpu.jsonl`; `--gpu off`
//! samples nothing.

use std::path::Path;

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::bk_std;
use crate::support::cmd::fake_smi_dir;
use crate::support::sim::{fast_exact, start_blocking, timed};
use crate::support::store::{metadata_files, read_json};

fn fake_smi_path(root: &Path) -> String {
    format!(
        "{}:{}",
        fake_smi_dir(root).display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The store's one metadata file (`metadata/` holds nothing else), parsed.
fn only_metadata(store: &Path) -> Value {
    let files = metadata_files(store);
    assert_eq!(files.len(), 1, "{files:?}");
    read_json(&files[0])
}

fn run_args<'a>(url: &'a str, gpu: &'a [&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--platform",
        "vllm",
        "--model",
        "sim-model",
        "--base-url",
        url,
        "--synthetic",
        "--input-tokens",
        "4",
        "--output-tokens",
        "8",
        "--num-requests",
        "40",
        "--concurrency",
        "2",
        "--gpu-interval",
        "50ms",
        "--quiet",
    ];
    v.extend_from_slice(gpu);
    v
}

#[test]
fn run_fills_the_gpu_block_from_nvidia_smi() {
    let sim = start_blocking(timed(Profile::Vllm, 2.0, 2.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = format!("http://{}", sim.addr());
    let out = bk_std(&store)
        .env("PATH", fake_smi_path(dir.path()))
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args(run_args(&url, &["--gpu", "nvidia-smi"]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = only_metadata(&store);
    let gpu = &meta["gpu"];
    assert!(gpu["name"].as_str().is_some_and(|n| !n.is_empty()), "{gpu}");
    assert_eq!(gpu["source"], "nvidia-smi");
    assert!(gpu["samples"].as_u64().unwrap() >= 1, "{gpu}");
    assert!(gpu["vram_used_gb"].as_f64().unwrap() > 0.0);
    let id = meta["test_id"].as_str().unwrap();
    let series = store.join(format!("raw/{id}.gpu.jsonl"));
    let lines = std::fs::read_to_string(&series).unwrap();
    assert!(lines.lines().count() >= 1);
    for l in lines.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
    let verify = bk_std(&store).arg("verify").output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn gpu_off_samples_nothing() {
    // (Which servers count as local, so that `auto` is the default, is unit-tested in
    // src/cli/run.rs: every test server here is on loopback.)
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = format!("http://{}", sim.addr());
    let out = bk_std(&store)
        .env("PATH", fake_smi_path(dir.path()))
        .args(run_args(&url, &["--gpu", "off"]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = only_metadata(&store);
    assert!(meta["gpu"].is_null(), "{}", meta["gpu"]);
    let raw: Vec<_> = std::fs::read_dir(store.join("raw")).unwrap().collect();
    assert_eq!(raw.len(), 1, "only the request log: {raw:?}");
}
