//! `run --tokenizer tokenizer.json`: synthetic prompts sized by a local HuggingFace
//! tokenizer (feature `tokenizer`), the chat template's tokens learnt from the server.
//!
//! The test tokenizer (a JSON literal, nothing downloaded) splits every word into its
//! first letter and the rest: 2 tokens a word (the word list has no 1-letter word), so
//! one word a token misses by half. The simulator counts `round(words x 2)` plus a
//! template of 9, the same count as the tokenizer's plus the template, so the server's
//! reported prompt tokens are the tokenizer's count of what was sent.

use std::path::{Path, PathBuf};

use crate::support::workloads::run_err;
#[cfg(feature = "tokenizer")]
use crate::support::{
    api::sim::Profile,
    workloads::{run, sim_counting},
};

/// First letter + rest of each whitespace-separated word; every piece is `[UNK]`.
const TOKENIZER_JSON: &str = r#"{
  "version": "1.0",
  "truncation": {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0},
  "padding": null,
  "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "WhitespaceSplit"},
    {"type": "Split", "pattern": {"Regex": "^."}, "behavior": "Isolated", "invert": false}
  ]},
  "post_processor": null,
  "decoder": null,
  "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
}"#;

fn tokenizer_file(dir: &Path) -> PathBuf {
    let p = dir.join("tok.json");
    std::fs::write(&p, TOKENIZER_JSON).unwrap();
    p
}

fn synthetic<'a>(input: &'a str, tok: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--synthetic",
        "--input-tokens",
        input,
        "--output-tokens",
        "4",
        "--num-requests",
        "40",
        "--concurrency",
        "8",
        "--tokenizer",
        tok,
    ];
    v.extend_from_slice(extra);
    v
}

/// The prompts' counts under the tokenizer (plus the template the server adds) hit the
/// target within 2%, with the template learnt through `/tokenize` (vLLM) or 1-token
/// probes (Ollama); the file is named by its name and sha256, never its directory. The
/// truncation the file asks for (8 tokens) is not applied to the count.
#[cfg(feature = "tokenizer")]
#[test]
fn a_tokenizer_file_sizes_prompts_and_the_server_tells_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer_file(dir.path());
    let tok_s = tok.to_str().unwrap();
    let sha = benchkeep::digest::sha256_hex(TOKENIZER_JSON);
    let cases = [
        (
            Profile::Vllm,
            "vllm",
            "sim-model",
            "openai-chat",
            "tokenize",
        ),
        (
            Profile::Ollama,
            "ollama",
            "llama3.2",
            "ollama-generate",
            "probe_usage",
        ),
    ];
    for (n, (profile, platform, model, api, how)) in cases.into_iter().enumerate() {
        let sim = sim_counting(profile, 2.0, 9);
        for target in [32u64, 512] {
            let t = target.to_string();
            let ran = run(
                &dir.path().join(format!("s{n}-{target}")),
                platform,
                &sim.base_url(),
                model,
                &synthetic(&t, tok_s, &["--api", api]),
            );
            let c = ran.calibration();
            assert_eq!(c["method"], "tokenizer", "{c}");
            assert_eq!(c["tokenizer"]["file"], "tok.json");
            assert_eq!(c["tokenizer"]["sha256"], sha.as_str());
            assert_eq!(c["template_method"], how, "{c}");
            assert_eq!(c["template_tokens"], 9.0, "{c}");
            let slope = c["tokens_per_word"].as_f64().unwrap();
            assert!((slope - 2.0).abs() < 0.01, "{c}");
            let mean = c["achieved"]["mean"].as_f64().unwrap();
            let err = (mean - target as f64).abs() / target as f64;
            assert!(err <= 0.02, "{api} {target}: {c}");
            assert!(!c.to_string().contains(dir.path().to_str().unwrap()), "{c}");
            assert_eq!(ran.records.len(), 40, "probes are not in the raw log");
        }
        drop(sim);
    }
}

/// `--calibrate off` asks the server nothing: the prompts hold the target in the
/// tokenizer's tokens of text, the template is not counted (and says so), and the
/// workload's identity names the tokenizer and differs from the calibrated one.
#[cfg(feature = "tokenizer")]
#[test]
fn calibrate_off_counts_the_text_only() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer_file(dir.path());
    let tok_s = tok.to_str().unwrap();
    let sim = sim_counting(Profile::Vllm, 2.0, 9);
    let off = run(
        &dir.path().join("off"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &synthetic("64", tok_s, &["--calibrate", "off"]),
    );
    let c = off.calibration();
    assert_eq!(c["method"], "tokenizer", "{c}");
    assert_eq!(c["template_tokens"], serde_json::Value::Null);
    assert!(
        c["template_error"]
            .as_str()
            .unwrap()
            .contains("not counted")
    );
    // 64 tokens of text, and the 9 of the template the server adds
    let mean = c["achieved"]["mean"].as_f64().unwrap();
    assert!((mean - 73.0).abs() / 73.0 <= 0.02, "{c}");
    let on = run(
        &dir.path().join("on"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &synthetic("64", tok_s, &[]),
    );
    let plain = run(
        &dir.path().join("plain"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &[
            "--synthetic",
            "--input-tokens",
            "64",
            "--output-tokens",
            "4",
            "--num-requests",
            "40",
            "--concurrency",
            "8",
        ],
    );
    let id = |r: &crate::support::workloads::Ran| r.meta["test"]["input_sha256"].clone();
    assert_ne!(id(&off), id(&on));
    assert_ne!(
        id(&on),
        id(&plain),
        "sized by a tokenizer, not by the server"
    );
    drop(sim);
}

/// A file that is not a tokenizer, a FIFO, a link to /dev/zero: exit 2 naming the file,
/// before anything is sent or stored.
#[cfg(feature = "tokenizer")]
#[test]
fn a_bad_tokenizer_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "{\"model\": 3}").unwrap();
    let fifo = dir.path().join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let zero = dir.path().join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let store = dir.path().join("s");
    for (p, says) in [
        (&not_json, "not a HuggingFace tokenizer.json"),
        (&fifo, "FIFO"),
        (&zero, "device"),
    ] {
        let ps = p.to_str().unwrap();
        let mut args = vec![
            "--platform",
            "vllm",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9",
        ];
        args.extend(synthetic("32", ps, &[]));
        let (code, stderr) = run_err(&store, &args);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(ps) && stderr.contains(says), "{stderr}");
    }
    assert!(!store.join("metadata").exists(), "nothing stored");
}

/// Without the feature the flag is refused (exit 2) saying how to build with it.
#[cfg(not(feature = "tokenizer"))]
#[test]
fn without_the_feature_the_flag_says_how_to_build() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer_file(dir.path());
    let mut args = vec![
        "--platform",
        "vllm",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9",
    ];
    args.extend(synthetic("32", tok.to_str().unwrap(), &[]));
    let (code, stderr) = run_err(&dir.path().join("s"), &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--features tokenizer"), "{stderr}");
}

/// `--tokenizer` sizes synthetic prompts only.
#[test]
fn tokenizer_without_synthetic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_err(
        &dir.path().join("s"),
        &[
            "--platform",
            "vllm",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9",
            "--input",
            "x.jsonl",
            "--tokenizer",
            "tok.json",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--tokenizer tok.json") && stderr.contains("--synthetic"),
        "{stderr}"
    );
}
