//! Workload helpers: a simulator whose prompt-token count is not the word count (so
//! calibration has a target to hit), and `benchkeep run` against it, read back.

use std::path::Path;

use serde_json::Value;

use super::api::sim::{Profile, SimServer, TokenModel};
use super::sim::{fast_exact, start_blocking};
use super::store::only_metadata;
use super::{bk_std, out};

/// A fast simulator of `profile` counting `round(words x tokens_per_word)` prompt tokens,
/// plus `template` tokens for a templated (chat) prompt.
pub fn sim_counting(profile: Profile, tokens_per_word: f64, template: u32) -> SimServer {
    let mut c = fast_exact(profile);
    c.tokens = TokenModel {
        tokens_per_word,
        template_tokens: template,
    };
    c.num_parallel = 8;
    start_blocking(c)
}

/// What one successful run left: its metadata and its raw records (as JSON).
pub struct Ran {
    pub meta: Value,
    pub records: Vec<Value>,
}

impl Ran {
    /// `test.prompt_calibration`.
    pub fn calibration(&self) -> &Value {
        &self.meta["test"]["prompt_calibration"]
    }

    /// `prompt_tokens` of each successful request, by request index.
    pub fn prompt_tokens(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .records
            .iter()
            .filter(|r| r["ok"] == true)
            .map(|r| {
                (
                    r["id"].as_str().unwrap().parse().unwrap(),
                    r["prompt_tokens"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// `benchkeep --store STORE run --platform P --base-url URL --model M ARGS --quiet`,
/// expected to leave exactly one run in the store.
pub fn run(store: &Path, platform: &str, base: &str, model: &str, args: &[&str]) -> Ran {
    let mut c = bk_std(store);
    c.args([
        "run",
        "--platform",
        platform,
        "--base-url",
        base,
        "--model",
        model,
    ])
    .args(args)
    .arg("--quiet");
    let (code, _, stderr) = out(&mut c);
    assert!(code == 0, "exit {code}: {stderr}");
    let meta = only_metadata(store);
    let raw = store.join(meta["test"]["output_file"].as_str().unwrap());
    let records = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ran { meta, records }
}

/// `benchkeep run ARGS` expected to fail: exit code and stderr.
pub fn run_err(store: &Path, args: &[&str]) -> (i32, String) {
    let mut c = bk_std(store);
    c.arg("run").args(args).arg("--quiet");
    let (code, _, stderr) = out(&mut c);
    (code, stderr)
}
