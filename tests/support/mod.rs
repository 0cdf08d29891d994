//! The harness every integration test shares: the benchkeep binary under one environment
//! policy ([`bk`], [`bk_std`]), the fixture files ([`fixture`]), and in submodules:
//!
//! - [`store`]: readers for what a run left in a store (metadata, raw logs, file lists);
//! - [`cmd`]: command builders for `analyze`, `run` (as a child, or in-process) and
//!   `record` (around the fake `vllm run-batch`);
//! - [`sim`]: simulator configs and starters, and an HTTP client that reads streams;
//! - [`hostile`]: a raw HTTP server that misbehaves on purpose;
//! - [`mdtest`]: the docs harness that runs every example of README.md and docs/*.md;
//! - [`report`]: stores built from fixed metadata values, for the report tests;
//! - [`sweepstore`]: stored sweeps (points as metadata) and the rewrite linking runs into one;
//! - [`moto`]: stores at a URL (`file://`, `s3://` on moto) and fake S3 endpoints;
//! - [`workloads`]: simulators that count tokens unlike words, and synthetic runs read back;
//! - [`catalog`]: readers for the derived catalog `analysis/catalog/part-NN.jsonl`;
//! - [`api`]: every library path the tests use, re-exported in one place.

pub mod api;
pub mod catalog;
pub mod cmd;
pub mod gate;
pub mod hostile;
pub mod import;
pub mod mdtest;
#[cfg(feature = "external-it")]
pub mod mlflow;
pub mod moto;
pub mod report;
pub mod server_view;
pub mod sim;
pub mod store;
pub mod sweeps;
pub mod sweepstore;
pub mod workloads;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The benchkeep binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_benchkeep");

/// Key variables removed from a child's environment even when this process lacks them.
const KEY_VARS: [&str; 3] = ["OPENAI_API_KEY", "HF_TOKEN", "ANTHROPIC_API_KEY"];

/// Whether the test environment policy removes this variable: benchkeep's own settings
/// (`BENCHKEEP_*`: store, baseline platform, crash hook, ...) and anything that looks like
/// a credential (`*_API_KEY`, `*_TOKEN`), and a batch scheduler's shard variables
/// (`JOB_COMPLETION_INDEX`, `SLURM_*`: a sweep would split itself inside a job array).
fn scrubbed(name: &OsString) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let name = name.to_ascii_uppercase();
    name.starts_with("BENCHKEEP_")
        || name.ends_with("_API_KEY")
        || name.ends_with("_TOKEN")
        || KEY_VARS.contains(&name.as_str())
        || name == "JOB_COMPLETION_INDEX"
        || name.starts_with("SLURM_")
}

/// THE environment policy of every benchkeep the tests start: no `BENCHKEEP_*` variable
/// and no key from the developer's environment reach it, and `NO_COLOR=1`. A test that
/// needs a variable sets it on the command afterwards (`.env(..)` wins over this).
pub fn clean_env(c: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if scrubbed(&name) {
            c.env_remove(&name);
        }
    }
    for name in KEY_VARS {
        c.env_remove(name);
    }
    c.env("NO_COLOR", "1")
}

/// `benchkeep` with no arguments, under the environment policy ([`clean_env`]).
pub fn benchkeep() -> Command {
    let mut c = Command::new(BIN);
    clean_env(&mut c);
    c
}

/// `benchkeep` with no `--store`, under the environment policy, as an assert_cmd command.
pub fn bk_no_store() -> assert_cmd::Command {
    assert_cmd::Command::from_std(benchkeep())
}

/// `benchkeep --store STORE`, under the environment policy, as an assert_cmd command.
pub fn bk(store: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(bk_std(store))
}

/// `benchkeep --store STORE`, under the environment policy, as a std command (to spawn,
/// signal or limit it).
pub fn bk_std(store: &Path) -> Command {
    let mut c = benchkeep();
    c.arg("--store").arg(store);
    c
}

/// Run a command to its end: exit code (-1 when killed by a signal), stdout, stderr.
pub fn out(c: &mut Command) -> (i32, String, String) {
    let o = c.output().expect("the command runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A file under tests/fixtures, e.g. `fixture("ingest/ollama_chat.jsonl")`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Poll `f` until it is true (panics after `limit`).
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cases per property test: `default` in the suite, `$BENCHKEEP_FUZZ_CASES` for a long run
/// outside CI (`BENCHKEEP_FUZZ_CASES=50000 cargo test --test it fuzz`).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("BENCHKEEP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A port free on 127.0.0.1 right now, for a server the test starts by command line (the
/// built-in simulator started by `--server-cmd`); binding port 0 directly is better where
/// the server is started in-process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
