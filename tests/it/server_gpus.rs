//! `run` against a server on this host measures the server's own GPUs: the process
//! listening on its port (a `benchkeep simulate` child here), found through /proc, and
//! the GPU where a fake `nvidia-smi` lists that pid as a compute app. The fake shows two
//! GPUs: 0 busy (95%, 300 W), 1 less so (40%, 120 W); the simulator "runs" on GPU 1.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::store::{metadata_files, read_json};
use crate::support::{BIN, bk_std};

const GPU1: &str = "GPU-66666666-7777-8888-9999-000000000000";

/// A `benchkeep simulate` child (killed on drop), its pid and base URL.
struct Sim(Child, String);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn simulator() -> Sim {
    let mut child = Command::new(BIN)
        .args(["simulate", "--port", "0", "--no-delay", "--profile", "vllm"])
        .args(["--model", "sim-model"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    Sim(child, url)
}

/// A fake nvidia-smi listing `app_pid` as a compute app on GPU 1.
fn fake_smi(dir: &Path, app_pid: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
case "$1" in
--query-gpu=index,name,uuid,driver_version,memory.total,memory.used,utilization.gpu,power.draw,temperature.gpu)
    echo "0, NVIDIA H100 80GB HBM3, GPU-11111111-2222-3333-4444-555555555555, 550.54.15, 81559, 40000, 95, 300.00, 60"
    echo "1, NVIDIA H100 80GB HBM3, {GPU1}, 550.54.15, 81559, 20000, 40, 120.00, 50" ;;
--query-compute-apps=pid,gpu_uuid)
    [ "$2" = "--format=csv,noheader" ] || exit 2
    echo "{app_pid}, {GPU1}" ;;
*) echo "fake nvidia-smi: unexpected arguments: $*" >&2; exit 2 ;;
esac
"#
    );
    let p = bin.join("nvidia-smi");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn run(sim: &Sim, app_pid: u32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let out = bk_std(&store)
        .env("PATH", fake_smi(dir.path(), app_pid))
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args(["run", "--platform", "vllm", "--model", "sim-model"])
        .args(["--base-url", &sim.1, "--synthetic", "--input-tokens", "4"])
        .args(["--output-tokens", "8", "--num-requests", "20"])
        .args(["--gpu", "nvidia-smi", "--gpu-interval", "50ms", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = metadata_files(&store);
    assert_eq!(files.len(), 1);
    read_json(&files[0])["gpu"].clone()
}

#[test]
fn a_local_servers_own_gpu_is_the_one_measured() {
    let sim = simulator();
    let gpu = run(&sim, sim.0.id());
    assert_eq!(gpu["count"], 1, "{gpu}");
    assert_eq!(
        gpu["selection"],
        format!("server process {} on {GPU1}", sim.0.id()).as_str()
    );
    assert_eq!(
        gpu["utilization_avg_percent"], 40.0,
        "GPU 0 is left out: {gpu}"
    );
    assert_eq!(gpu["power_avg_w"], 120.0, "{gpu}");
}

#[test]
fn when_no_gpu_runs_the_server_every_gpu_is_measured_and_the_reason_recorded() {
    let sim = simulator();
    // pid 1 is nobody's server here
    let gpu = run(&sim, 1);
    assert_eq!(gpu["count"], 2, "{gpu}");
    let s = gpu["selection"].as_str().unwrap();
    assert!(
        s.starts_with("every GPU")
            && s.contains(
                "the server's own GPUs were not found: no GPU lists a compute process of the server"
            ),
        "{s}"
    );
}
