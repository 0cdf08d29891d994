//! Prompt calibration end to end against simulators that count prompt tokens as
//! `round(words x 1.3)` plus a chat template's tokens, as real tokenizers and templates
//! do (not one token a word): `--input-tokens N` must then send N of the server's tokens,
//! within 2% on average, through vLLM's `/tokenize` or the probes' reported usage.

use crate::support::api::sim::{Faults, Profile};
use crate::support::sim::{fast_exact, start_blocking};
use crate::support::store::only_metadata;
use crate::support::workloads::{run, run_err, sim_counting};

const SYN: [&str; 2] = ["--synthetic", "--num-requests"];

fn synthetic<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        SYN[0],
        "--input-tokens",
        input,
        "--output-tokens",
        "4",
        SYN[1],
        "40",
        "--concurrency",
        "8",
    ];
    v.extend_from_slice(extra);
    v
}

/// Every profile and API against a count that is not the word count: the achieved mean
/// is within 2% of the target, each request within 2 tokens of it, with the method the
/// server allows; probes are not requests of the run.
#[test]
fn calibrated_prompts_hit_the_servers_count() {
    let cases = [
        (
            Profile::Vllm,
            "vllm",
            "sim-model",
            "openai-chat",
            "tokenize",
        ),
        (
            Profile::Vllm,
            "vllm",
            "sim-model",
            "openai-completions",
            "tokenize",
        ),
        (
            Profile::Ollama,
            "ollama",
            "llama3.2",
            "ollama-chat",
            "probe_usage",
        ),
        (
            Profile::Ollama,
            "ollama",
            "llama3.2",
            "ollama-generate",
            "probe_usage",
        ),
        (
            Profile::Ollama,
            "ollama",
            "llama3.2",
            "openai-chat",
            "probe_usage",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (n, (profile, platform, model, api, method)) in cases.into_iter().enumerate() {
        let sim = sim_counting(profile, 1.3, 9);
        for target in [32u64, 512] {
            let store = dir.path().join(format!("s{n}-{target}"));
            let t = target.to_string();
            let ran = run(
                &store,
                platform,
                &sim.base_url(),
                model,
                &synthetic(&t, &["--api", api]),
            );
            let c = ran.calibration();
            assert_eq!(c["method"], method, "{api}: {c}");
            assert_eq!(c["target"], target as f64);
            let a = &c["achieved"];
            let mean = a["mean"].as_f64().unwrap();
            let err = (mean - target as f64).abs() / target as f64;
            assert!(
                err <= 0.02,
                "{api} {target}: achieved {a} (calibration {c})"
            );
            assert!(a["error_pct"].as_f64().unwrap().abs() <= 2.0, "{a}");
            for (i, p) in ran.prompt_tokens() {
                assert!(
                    p.abs_diff(target) <= 2,
                    "{api} {target}: request {i} had {p}"
                );
            }
            let slope = c["tokens_per_word"].as_f64().unwrap();
            assert!((slope - 1.3).abs() < 0.05, "{api}: {c}");
            assert_eq!(ran.records.len(), 40, "probes are not in the raw log");
            assert_eq!(ran.meta["test"]["num_requests"], 40);
        }
        drop(sim);
    }
}

/// `--calibrate off` keeps one word per token, and says so: the same server then counts
/// far more than asked (the bug calibration fixes), and the workload's identity differs.
#[test]
fn calibrate_off_sends_words_and_says_so() {
    let sim = sim_counting(Profile::Vllm, 1.3, 9);
    let dir = tempfile::tempdir().unwrap();
    let off = run(
        &dir.path().join("off"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &synthetic("32", &["--calibrate", "off"]),
    );
    let c = off.calibration();
    assert_eq!(c["method"], "none");
    assert_eq!(c["probes"], 0);
    assert_eq!(c["tokens_per_word"], 1.0);
    // 32 words: round(32 x 1.3) + 9 = 51 tokens
    assert_eq!(c["achieved"]["mean"], 51.0, "{c}");
    assert_eq!(off.meta["test"]["synthetic"]["calibrate"], false);
    let on = run(
        &dir.path().join("on"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &synthetic("32", &[]),
    );
    assert_ne!(
        on.meta["test"]["input_sha256"], off.meta["test"]["input_sha256"],
        "word-sized and token-sized prompts are different workloads"
    );
    let again = run(
        &dir.path().join("again"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &synthetic("32", &[]),
    );
    assert_eq!(
        on.meta["test"]["input_sha256"], again.meta["test"]["input_sha256"],
        "one workload, one identity"
    );
    assert_ne!(
        on.meta["test"]["synthetic"]["nonce"], again.meta["test"]["synthetic"]["nonce"],
        "each run has its own unique prompt heads"
    );
    drop(sim);
}

/// A server whose probes fail cannot be calibrated: the run still happens with one word
/// per token (its failed requests recorded, exit 1), saying why in the metadata.
#[test]
fn a_failed_calibration_falls_back_to_words_and_says_why() {
    let mut c = fast_exact(Profile::Ollama);
    c.faults = Faults {
        error_rate: 1.0,
        ..Faults::default()
    };
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let base = sim.base_url();
    let mut args = vec![
        "--platform",
        "ollama",
        "--base-url",
        &base,
        "--model",
        "llama3.2",
    ];
    args.extend(synthetic("32", &[]));
    let (code, stderr) = run_err(&store, &args);
    assert_eq!(code, 1, "every request failed: {stderr}");
    assert!(
        stderr.contains("warning: prompt calibration") && stderr.contains("one word per token"),
        "{stderr}"
    );
    let m = only_metadata(&store);
    let cal = &m["test"]["prompt_calibration"];
    assert_eq!(cal["method"], "none", "{cal}");
    assert!(
        cal["error"].as_str().unwrap().contains("probe request"),
        "{cal}"
    );
    assert_eq!(
        cal["achieved"],
        serde_json::Value::Null,
        "no request succeeded"
    );
    assert_eq!(m["status"], "failed");
    drop(sim);
}
