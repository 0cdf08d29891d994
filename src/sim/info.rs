//! The informational endpoints: `/v1/models`, `/version`, and Ollama's `/api/version`,
//! `/api/tags`, `/api/show`, `/api/ps`. Their bodies describe the simulated model and
//! reflect the simulator's state (e.g. `/api/ps` lists the model only once it is loaded).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{Value, json};

use super::config::{Profile, SimConfig};
use super::rng::{count_words, hash_bytes, mix64};

/// Ollama's spelling of a model name: a name without a tag means `:latest`.
pub(crate) fn ollama_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// `{"version": ...}` for `/version` and `/api/version`.
pub(crate) fn version(cfg: &SimConfig) -> Value {
    json!({ "version": cfg.server_version })
}

/// A JSON object with its keys in the given order (serde_json's `Value` sorts them);
/// values are JSON texts.
fn obj(pairs: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&js(k));
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

fn js(s: &str) -> String {
    Value::from(s).to_string()
}

fn model_entry(cfg: &SimConfig, id: &str, created: u64) -> String {
    let n = |x: u64| x.to_string();
    let f = |b: bool| b.to_string();
    match cfg.profile {
        Profile::Vllm => {
            let perm = obj(&[
                ("id", js(&format!("modelperm-{:016x}", mix64(created)))),
                ("object", js("model_permission")),
                ("created", n(created)),
                ("allow_create_engine", f(false)),
                ("allow_sampling", f(true)),
                ("allow_logprobs", f(true)),
                ("allow_search_indices", f(false)),
                ("allow_view", f(true)),
                ("allow_fine_tuning", f(false)),
                ("organization", js("*")),
                ("group", "null".into()),
                ("is_blocking", f(false)),
            ]);
            obj(&[
                ("id", js(id)),
                ("object", js("model")),
                ("created", n(created)),
                ("owned_by", js("vllm")),
                ("root", js(&cfg.model)),
                ("parent", "null".into()),
                ("max_model_len", n(u64::from(cfg.max_model_len))),
                ("permission", format!("[{perm}]")),
            ])
        }
        Profile::Ollama => obj(&[
            ("id", js(id)),
            ("object", js("model")),
            ("created", n(created)),
            ("owned_by", js("library")),
        ]),
    }
}

/// `GET /v1/models`. vLLM lists `max_model_len`; Ollama's layer does not.
pub(crate) fn models(cfg: &SimConfig, now: u64) -> String {
    let id = match cfg.profile {
        Profile::Vllm => cfg.model.clone(),
        Profile::Ollama => ollama_name(&cfg.model),
    };
    // Ollama's `/v1` middleware encodes with a trailing newline.
    let nl = if cfg.profile == Profile::Ollama {
        "\n"
    } else {
        ""
    };
    format!(
        r#"{{"object":"list","data":[{}]}}{nl}"#,
        model_entry(cfg, &id, now)
    )
}

/// `GET /v1/models/{id}` (Ollama's layer only): the entry with the id as asked, or
/// `None` if unknown.
pub(crate) fn model(cfg: &SimConfig, id: &str, now: u64) -> Option<String> {
    (ollama_name(id) == ollama_name(&cfg.model)).then(|| model_entry(cfg, id, now) + "\n")
}

fn digest(cfg: &SimConfig) -> String {
    let h = hash_bytes(cfg.model.as_bytes());
    (0..4)
        .map(|i| format!("{:016x}", mix64(h.wrapping_add(i))))
        .collect()
}

fn details() -> String {
    obj(&[
        ("parent_model", js("")),
        ("format", js("gguf")),
        ("family", js("llama")),
        ("families", r#"["llama"]"#.into()),
        ("parameter_size", js("3.2B")),
        ("quantization_level", js("Q4_K_M")),
    ])
}

const MODEL_BYTES: u64 = 2_019_393_189;

/// `GET /api/tags`.
pub(crate) fn tags(cfg: &SimConfig, modified_at: &str) -> String {
    let name = js(&ollama_name(&cfg.model));
    let m = obj(&[
        ("name", name.clone()),
        ("model", name),
        ("modified_at", js(modified_at)),
        ("size", MODEL_BYTES.to_string()),
        ("digest", js(&digest(cfg))),
        ("details", details()),
    ]);
    format!(r#"{{"models":[{m}]}}"#)
}

/// `GET /api/ps`: the model once it is loaded, with its allocated context.
pub(crate) fn ps(cfg: &SimConfig, metrics: &super::metrics::Metrics) -> String {
    if !metrics.loaded.load(Relaxed) {
        return r#"{"models":[]}"#.to_string();
    }
    let name = js(&ollama_name(&cfg.model));
    let last = metrics.last_used_unix.load(Relaxed) as i64;
    let expires = chrono::DateTime::from_timestamp(last + 300, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let size = MODEL_BYTES + u64::from(cfg.max_model_len) * 114_688;
    let m = obj(&[
        ("name", name.clone()),
        ("model", name),
        ("size", size.to_string()),
        ("digest", js(&digest(cfg))),
        ("details", details()),
        ("expires_at", js(&expires)),
        ("size_vram", size.to_string()),
        ("context_length", cfg.max_model_len.to_string()),
    ]);
    format!(r#"{{"models":[{m}]}}"#)
}

/// The model a `/api/show` body names (`model`, or the older `name`).
pub(crate) fn requested_name(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match (v.get("model"), v.get("name")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) if !s.is_empty() => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// `POST /api/show` body → the model's description (keys in Ollama's order), or `None`
/// if it names another model. `Err` carries a 400 message for a malformed body. The
/// tokenizer arrays are `null` unless `verbose` is set.
pub(crate) fn show(
    cfg: &SimConfig,
    body: &[u8],
    modified_at: &str,
) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(name) = requested_name(body) else {
        return Err("model is required".to_string());
    };
    if ollama_name(&name) != ollama_name(&cfg.model) {
        return Ok(None);
    }
    let verbose = v.get("verbose").and_then(Value::as_bool).unwrap_or(false);
    let arr = |a: &str| {
        if verbose {
            a.to_string()
        } else {
            "null".into()
        }
    };
    let ctx = cfg.max_model_len.max(131_072);
    let n = |x: u64| x.to_string();
    let model_info = obj(&[
        ("general.architecture", js("llama")),
        ("general.file_type", n(15)),
        ("general.parameter_count", n(3_212_749_888)),
        ("llama.attention.head_count", n(24)),
        ("llama.attention.head_count_kv", n(8)),
        ("llama.attention.layer_norm_rms_epsilon", "0.00001".into()),
        ("llama.block_count", n(28)),
        ("llama.context_length", n(u64::from(ctx))),
        ("llama.embedding_length", n(3072)),
        ("llama.feed_forward_length", n(8192)),
        ("llama.rope.dimension_count", n(128)),
        ("llama.rope.freq_base", n(500_000)),
        ("llama.vocab_size", n(128_256)),
        ("tokenizer.ggml.add_bos_token", "true".into()),
        ("tokenizer.ggml.bos_token_id", n(128_000)),
        ("tokenizer.ggml.eos_token_id", n(128_009)),
        ("tokenizer.ggml.merges", arr(r#"["Ġ Ġ"]"#)),
        ("tokenizer.ggml.model", js("gpt2")),
        ("tokenizer.ggml.pre", js("llama-bpe")),
        ("tokenizer.ggml.token_type", arr("[1]")),
        ("tokenizer.ggml.tokens", arr(r#"["!"]"#)),
    ]);
    let tensor = |name: &str, shape: &str| {
        obj(&[
            ("name", js(name)),
            ("type", js("Q4_K")),
            ("shape", shape.to_string()),
        ])
    };
    let tensors = format!(
        "[{},{}]",
        tensor("token_embd.weight", "[3072,128256]"),
        tensor("output_norm.weight", "[3072]")
    );
    let model = ollama_name(&cfg.model);
    Ok(Some(obj(&[
        (
            "modelfile",
            js(&format!(
                "# Modelfile generated by the benchkeep simulator\nFROM {model}\n"
            )),
        ),
        ("parameters", js(&format!("num_ctx {}", cfg.max_model_len))),
        ("template", js("{{ .Prompt }}")),
        ("details", details()),
        ("model_info", model_info),
        ("tensors", tensors),
        ("capabilities", r#"["completion"]"#.into()),
        ("modified_at", js(modified_at)),
    ])))
}

/// vLLM `POST /tokenize` (`prompt`, or `messages` with the chat template applied):
/// `{"count","max_model_len","tokens","token_strs":null}`. Token ids are made up; the
/// count is the one the generation endpoints report (`tokens.rs`). `Err` is a 400 message.
pub(crate) fn tokenize(cfg: &SimConfig, body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // The same count as the generation endpoints' usage (`tokens.rs`).
    let count = match (v.get("prompt"), v.get("messages")) {
        (Some(Value::String(p)), _) => cfg.tokens.prompt(count_words(p), false),
        (_, Some(Value::Array(ms))) => cfg.tokens.prompt(
            ms.iter()
                .filter_map(|m| m.get("content").and_then(Value::as_str))
                .map(count_words)
                .fold(0u32, u32::saturating_add),
            true,
        ),
        _ => return Err("either `prompt` or `messages` is required".to_string()),
    };
    let tokens: Vec<String> = (0..u64::from(count))
        .map(|i| (mix64(i) % 1000).to_string())
        .collect();
    Ok(format!(
        r#"{{"count":{count},"max_model_len":{},"tokens":[{}],"token_strs":null}}"#,
        cfg.max_model_len,
        tokens.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lookups() {
        assert_eq!(ollama_name("llama3.2"), "llama3.2:latest");
        assert_eq!(ollama_name("llama3.2:1b"), "llama3.2:1b");
        assert_eq!(ollama_name("host:5000/ns/m"), "host:5000/ns/m:latest");
        let cfg = SimConfig::for_profile(Profile::Ollama);
        assert!(model(&cfg, "llama3.2", 1).is_some());
        assert!(model(&cfg, "other", 1).is_none());
        assert!(
            show(&cfg, br#"{"name":"llama3.2"}"#, "t")
                .unwrap()
                .is_some()
        );
        assert!(show(&cfg, br#"{"model":"x"}"#, "t").unwrap().is_none());
        assert!(show(&cfg, b"{}", "t").is_err());
        assert_eq!(digest(&cfg).len(), 64);
        let vllm: Value = serde_json::from_str(&models(&SimConfig::default(), 5)).unwrap();
        assert_eq!(vllm["data"][0]["max_model_len"], 8192);
    }
}
