//! What `record` learns from the wrapped command line: its results file (`-o`), its request
//! file (`-i`), its model, vLLM engine settings for `config`, and the secret values in it
//! (so they can be cut from the captured log as well as from the stored command line).

use serde_json::{Map, Value};

use crate::redact;

/// Flags that name the results file, as `vllm run-batch` spells them.
pub const OUTPUT_FLAGS: [&str; 3] = ["-o", "--output-file", "--output"];
/// Flags that name the request file.
pub const INPUT_FLAGS: [&str; 2] = ["-i", "--input-file"];

/// The value of the last of `names` in `argv`: `-o X`, `-o=X`, `--output-file X`,
/// `--output-file=X` (the last one wins, as with argparse).
pub fn flag_value<'a>(argv: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut found = None;
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        if names.contains(&a) {
            if let Some(v) = argv.get(i + 1) {
                found = Some(v.as_str());
                i += 1;
            }
        } else if let Some((flag, v)) = a.split_once('=')
            && names.contains(&flag)
        {
            found = Some(v);
        }
        i += 1;
    }
    found
}

/// Whether a flag (without value) is present.
fn has_flag(argv: &[String], name: &str) -> bool {
    argv.iter().any(|a| a == name)
}

/// Whether the command is `vllm run-batch` (any spelling: the CLI or the Python module).
pub fn is_vllm_run_batch(argv: &[String]) -> bool {
    argv.iter()
        .take(4)
        .any(|a| a == "run-batch" || a.ends_with("run_batch") || a.ends_with("run_batch.py"))
}

/// Whether the command runs vLLM at all (its engine flags may then be read into `config`).
pub fn is_vllm(argv: &[String]) -> bool {
    is_vllm_run_batch(argv)
        || argv.iter().take(4).any(|a| {
            std::path::Path::new(a)
                .file_name()
                .is_some_and(|n| n == "vllm")
                || a.starts_with("vllm.")
        })
}

/// The platform when `--platform` is not given: `vllm-offline` for `vllm run-batch`.
pub fn default_platform(argv: &[String]) -> Option<&'static str> {
    is_vllm_run_batch(argv).then_some("vllm-offline")
}

/// The model when `--model` is not given: the command's own `--model`.
pub fn default_model(argv: &[String]) -> Option<&str> {
    flag_value(argv, &["--model"])
}

/// vLLM engine flags copied into `config` (snake_case names, as vLLM's `EngineArgs`).
const ENGINE_FLAGS: &[(&str, &str)] = &[
    ("--max-model-len", "max_model_len"),
    ("--gpu-memory-utilization", "gpu_memory_utilization"),
    ("--max-num-seqs", "max_num_seqs"),
    ("--max-num-batched-tokens", "max_num_batched_tokens"),
    ("--tensor-parallel-size", "tensor_parallel_size"),
    ("-tp", "tensor_parallel_size"),
    ("--pipeline-parallel-size", "pipeline_parallel_size"),
    ("-pp", "pipeline_parallel_size"),
    ("--dtype", "dtype"),
    ("--kv-cache-dtype", "kv_cache_dtype"),
    ("--quantization", "quantization"),
    ("--block-size", "block_size"),
    ("--served-model-name", "served_model_name"),
    ("--max-inflight", "max_inflight"),
    ("--seed", "seed"),
];

/// vLLM boolean flags (`--x` true, `--no-x` false).
const ENGINE_SWITCHES: &[(&str, &str)] = &[
    ("--enable-prefix-caching", "enable_prefix_caching"),
    ("--enable-chunked-prefill", "enable_chunked_prefill"),
    ("--enforce-eager", "enforce_eager"),
    ("--disable-log-stats", "disable_log_stats"),
];

/// The engine settings a vLLM command line sets, for `config` (empty for other commands).
/// Numbers become JSON numbers; anything else stays a string.
pub fn vllm_engine_config(argv: &[String]) -> Map<String, Value> {
    let mut config = Map::new();
    if !is_vllm(argv) {
        return config;
    }
    for (flag, key) in ENGINE_FLAGS {
        if let Some(v) = flag_value(argv, &[flag]) {
            config.insert(key.to_string(), typed(v));
        }
    }
    for (flag, key) in ENGINE_SWITCHES {
        let negative = format!("--no-{}", &flag[2..]);
        if has_flag(argv, &negative) {
            config.insert(key.to_string(), Value::Bool(false));
        } else if has_flag(argv, flag) {
            config.insert(key.to_string(), Value::Bool(true));
        }
    }
    config
}

fn typed(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    Value::from(v)
}

/// The secret substrings of a command line: every part that [`redact::args`] removes
/// (flag values, `NAME_KEY=` values, URL credentials, header values), also those inside a
/// shell command string (`sh -c "... --api-key X ..."`), each on its own. Values shorter
/// than 4 characters are left out (replacing them everywhere in a log would wreck it).
pub fn secret_values(argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = redact::secrets(argv)
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| s.chars().count() >= 4)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Values of environment variables with secret names (`*_KEY`, `*_TOKEN`, ...), 8
/// characters or longer: the command may print them.
pub fn env_secret_values(env: &[(String, String)]) -> Vec<String> {
    env.iter()
        .filter(|(k, v)| redact::is_secret_name(k) && v.trim().chars().count() >= 8)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_batch_command() {
        let argv = v(&[
            "vllm",
            "run-batch",
            "-i",
            "batch_5k.jsonl",
            "-o",
            "out.jsonl",
            "--model",
            "google/gemma-3-4b-it",
            "--max-model-len",
            "4096",
            "--gpu-memory-utilization=0.9",
            "--enable-prefix-caching",
            "--no-enable-chunked-prefill",
            "--kv-cache-dtype",
            "fp8",
        ]);
        assert_eq!(flag_value(&argv, &OUTPUT_FLAGS), Some("out.jsonl"));
        assert_eq!(flag_value(&argv, &INPUT_FLAGS), Some("batch_5k.jsonl"));
        assert_eq!(default_model(&argv), Some("google/gemma-3-4b-it"));
        assert_eq!(default_platform(&argv), Some("vllm-offline"));
        let c = vllm_engine_config(&argv);
        assert_eq!(c["max_model_len"], 4096);
        assert_eq!(c["gpu_memory_utilization"], 0.9);
        assert_eq!(c["enable_prefix_caching"], true);
        assert_eq!(c["enable_chunked_prefill"], false);
        assert_eq!(c["kv_cache_dtype"], "fp8");
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn other_spellings() {
        let argv = v(&[
            "python",
            "-m",
            "vllm.entrypoints.openai.run_batch",
            "--input-file=a.jsonl",
            "--output-file",
            "b.jsonl",
            "-o",
            "c.jsonl",
        ]);
        assert!(is_vllm_run_batch(&argv));
        assert_eq!(flag_value(&argv, &OUTPUT_FLAGS), Some("c.jsonl"));
        assert_eq!(flag_value(&argv, &INPUT_FLAGS), Some("a.jsonl"));
        let script = v(&["python3", "bench.py", "--max-model-len", "1"]);
        assert!(!is_vllm(&script));
        assert!(vllm_engine_config(&script).is_empty());
        assert_eq!(default_platform(&script), None);
        assert_eq!(flag_value(&v(&["x", "-o"]), &OUTPUT_FLAGS), None);
    }

    #[test]
    fn secrets_are_found() {
        let argv = v(&[
            "env",
            "HF_TOKEN=hf_CANARY1",
            "vllm",
            "--api-key",
            "sk-CANARY2",
            "--token=CANARY3",
            "http://user:CANARY4@host:8000/v1",
            "--api-key",
            "abc",
            "--model",
            "m",
        ]);
        let s = secret_values(&argv);
        assert!(s.contains(&"hf_CANARY1".to_string()), "{s:?}");
        assert!(s.contains(&"sk-CANARY2".to_string()), "{s:?}");
        assert!(s.contains(&"CANARY3".to_string()), "{s:?}");
        assert!(s.contains(&"CANARY4".to_string()), "{s:?}");
        assert!(s.contains(&"user:CANARY4".to_string()), "{s:?}");
        assert_eq!(s.len(), 5, "{s:?}"); // "abc" is too short to cut from logs
    }

    #[test]
    fn secrets_inside_a_shell_string_are_found_one_by_one() {
        let argv = v(&[
            "sh",
            "-c",
            "OPENAI_API_KEY=CANARY-A python3 x.py --api-key CANARY-B --n 3 && curl -H 'Authorization: Bearer CANARY-C' http://u:CANARY-D@h/",
        ]);
        let s = secret_values(&argv);
        for c in ["CANARY-A", "CANARY-B", "CANARY-C", "CANARY-D"] {
            assert!(s.contains(&c.to_string()), "{c} not in {s:?}");
        }
        // The log redactor then cuts each wherever it shows up.
        let r = super::super::lines::Redactor::new(s);
        assert_eq!(
            r.apply_str("key=CANARY-A token CANARY-C pass CANARY-D"),
            "key=*** token *** pass ***"
        );
    }
}
