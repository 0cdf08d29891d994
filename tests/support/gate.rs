//! Runs for the significance gate, made without a clock: a closed-loop workload under the
//! simulator's timing law (each decode step lasts `itl_ms * (1 + jitter * u)`, u uniform
//! in [-1, 1), from a seeded generator), written as a benchkeep raw log and stored with
//! `benchkeep analyze`. Same law + other seed = "the same simulator workload, another
//! seed"; `itl_ms` raised 10 % = "a 10 % slower simulator", with no machine load in it.

use std::path::Path;

use super::bk;

/// The workload of one run.
#[derive(Debug, Clone, Copy)]
pub struct Law {
    pub requests: usize,
    pub concurrency: usize,
    pub prefill_ms: f64,
    pub itl_ms: f64,
    pub jitter: f64,
    pub output_tokens: u64,
    pub seed: u64,
}

impl Law {
    /// 500 requests at concurrency 50, 16 output tokens, 2 ms prefill, 20 ms steps, ±30 %.
    pub fn sim(seed: u64) -> Law {
        Law {
            requests: 500,
            concurrency: 50,
            prefill_ms: 2.0,
            itl_ms: 20.0,
            jitter: 0.3,
            output_tokens: 16,
            seed,
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The raw log of one run under `law` (benchkeep's own line format).
pub fn raw_log(law: &Law) -> String {
    let mut rng = SplitMix(law.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xABCD);
    let step = |rng: &mut SplitMix| law.itl_ms * (1.0 + law.jitter * (2.0 * rng.unit() - 1.0));
    let mut free = vec![0.0f64; law.concurrency];
    let mut out = String::new();
    for seq in 0..law.requests {
        let slot = (0..free.len())
            .min_by(|a, b| free[*a].total_cmp(&free[*b]))
            .unwrap();
        let start = free[slot];
        // Wait for the next step boundary, prefill, then one step for the first token.
        let ttft = rng.unit() * law.itl_ms + law.prefill_ms + step(&mut rng);
        let decode: f64 = (1..law.output_tokens).map(|_| step(&mut rng)).sum();
        let e2e = ttft + decode;
        let end = start + e2e / 1000.0;
        free[slot] = end;
        out.push_str(&format!(
            "{{\"seq\":{seq},\"ok\":true,\"prompt_tokens\":16,\"completion_tokens\":{},\"sent_s\":{start},\"first_token_s\":{},\"end_s\":{end},\"ttft_ms\":{ttft},\"e2e_ms\":{e2e}}}\n",
            law.output_tokens,
            start + ttft / 1000.0
        ));
    }
    out
}

/// Store one run of `law` as `platform`/`model` with `--label input=gate` (and the extra
/// arguments); returns its test id.
pub fn store_run(store: &Path, law: &Law, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("run-{}.jsonl", law.seed));
    let log = raw_log(law);
    std::fs::write(&file, &log).unwrap();
    let last_end = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["end_s"].as_f64())
        .fold(0.0, f64::max);
    let before = ids(store);
    let out = bk(store)
        .args(["analyze", "--platform", "sim", "--model", "sim-model"])
        .arg("--input")
        .arg(&file)
        .args([
            "--total-time",
            &format!("{last_end:.3}"),
            "--label",
            "input=gate",
        ])
        .args(extra)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned()
        + &String::from_utf8_lossy(&out.get_output().stderr);
    ids(store)
        .into_iter()
        .find(|id| !before.contains(id))
        .unwrap_or_else(|| panic!("no run stored: {text}"))
}

/// The test ids in the store.
pub fn ids(store: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(store.join("metadata")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).ok()?).ok())
        .filter_map(|v| v["test_id"].as_str().map(str::to_string))
        .collect()
}
