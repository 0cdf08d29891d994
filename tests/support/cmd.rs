//! Command builders for `analyze`, `run` (as a child process, or parsed by the real CLI and
//! run in-process) and `record` (around the fake `vllm run-batch` in tests/fixtures/record).
//! Each gives the start of a command line; the test appends the rest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::api::cli::{Cli, CliCommand, plan_run};
use super::api::derive;
use super::api::load::{self, RunOutcome};
use super::api::store::Store;
use super::{bk, bk_std, fixture};

/// The engine config of the seed's Step 3 command line.
pub const SEED_CONFIG: &str = r#"{"max_model_len": 4096, "gpu_memory_utilization": 0.90}"#;

/// `benchkeep --store STORE analyze --platform PLATFORM --model MODEL`.
pub fn analyze_cmd(store: &Path, platform: &str, model: &str) -> assert_cmd::Command {
    let mut c = bk(store);
    c.args(["analyze", "--platform", platform, "--model", model]);
    c
}

/// The seed's Step 3: `analyze ... --input INPUT --config SEED_CONFIG --total-time 10`, run.
pub fn analyze(
    store: &Path,
    platform: &str,
    model: &str,
    input: &Path,
) -> assert_cmd::assert::Assert {
    analyze_cmd(store, platform, model)
        .arg("--input")
        .arg(input)
        .args(["--config", SEED_CONFIG, "--total-time", "10"])
        .assert()
}

/// A store `dir/s` with three analyzed runs: vllm-offline gemma3-4b (5 requests, one
/// failed), then ollama gemma3:12b twice (the second with `--total-time 2` and label
/// `gpu=rtx4080`).
pub fn populated_store(dir: &Path) -> PathBuf {
    let store = dir.join("s");
    analyze(
        &store,
        "vllm-offline",
        "gemma3-4b",
        &fixture("foundation/chat_ok_and_error.jsonl"),
    )
    .success();
    analyze(
        &store,
        "ollama",
        "gemma3:12b",
        &fixture("foundation/ollama_chat.jsonl"),
    )
    .success();
    analyze_cmd(&store, "ollama", "gemma3:12b")
        .args(["--total-time", "2", "--label", "gpu=rtx4080", "--input"])
        .arg(fixture("foundation/ollama_chat.jsonl"))
        .assert()
        .success();
    store
}

/// `benchkeep --store STORE run --platform P --model M --base-url URL --synthetic
/// --input-tokens IN --output-tokens OUT`, as a std command.
pub fn run_synthetic(
    store: &Path,
    platform: &str,
    model: &str,
    url: &str,
    input_tokens: &str,
    output_tokens: &str,
) -> Command {
    let mut c = bk_std(store);
    c.args([
        "run",
        "--platform",
        platform,
        "--model",
        model,
        "--base-url",
        url,
        "--synthetic",
        "--input-tokens",
        input_tokens,
        "--output-tokens",
        output_tokens,
    ]);
    c
}

/// `run` arguments (after `run`) for a synthetic workload of `n` requests of 16 prompt
/// tokens and `out` output tokens.
pub fn synthetic_args(base: &str, platform: &str, model: &str, n: &str, out: &str) -> Vec<String> {
    [
        "--platform",
        platform,
        "--base-url",
        base,
        "--model",
        model,
        "--synthetic",
        "--input-tokens",
        "16",
        "--output-tokens",
        out,
        "--num-requests",
        n,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `benchkeep --store STORE run ARGS --quiet`, parsed by the real CLI and run in-process.
pub async fn run_in_process(store: &Path, args: &[&str]) -> anyhow::Result<RunOutcome> {
    let mut argv: Vec<String> = ["benchkeep", "--store"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(store.display().to_string());
    argv.push("run".into());
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.push("--quiet".into());
    let cli = <Cli as clap::Parser>::try_parse_from(&argv)?;
    let CliCommand::Run(a) = cli.command else {
        panic!("not a run command")
    };
    let plan = plan_run(&a, &argv)?;
    let store = Store::new(store);
    let outcome = load::run(&store, plan).await?;
    // As the CLI does once `run` returns: refresh the derived files.
    if outcome.store_error.is_none() {
        let _ = derive::refresh(&store, &derive::Settings::default());
    }
    Ok(outcome)
}

/// `benchkeep --store STORE record --platform PLATFORM --model MODEL`.
pub fn record_cmd(store: &Path, platform: &str, model: &str) -> assert_cmd::Command {
    let mut c = bk(store);
    c.args(["record", "--platform", platform, "--model", model]);
    c
}

/// The real python3 interpreter (not a shim), so tests may run with a bare PATH.
pub fn python() -> String {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by the record tests");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// The fake `vllm run-batch` command line (python + script + args).
pub fn fake_batch(args: &[&str]) -> Vec<String> {
    let mut v = vec![
        python(),
        fixture("record/fake_run_batch.py").display().to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// A directory holding only the fake `nvidia-smi` (two GPUs; copied, so it is surely
/// executable): put it first on `PATH` for `--gpu nvidia-smi`.
pub fn fake_smi_dir(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join("fakebin");
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join("nvidia-smi");
    std::fs::copy(fixture("record/nvidia-smi"), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
