//! The comparability rules: a run's model family and input key (the rules are in the
//! `h2h` module docs), why a run cannot be compared at all, and file-safe slugs.

use serde::Serialize;
use serde_json::Value;

use crate::schema::{Metadata, Status};

/// Longest family key kept (a 10 KB model name must not make a 10 KB key).
const MAX_FAMILY: usize = 64;

/// The model family of a run (the rule is in the `h2h` module docs).
pub fn model_family(m: &Metadata) -> String {
    match m.labels.get("family").filter(|f| !f.trim().is_empty()) {
        Some(f) => normalize_family(f),
        None => normalize_family(&m.model),
    }
}

/// Normalize a model name to its family key.
pub fn normalize_family(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let no_org = lower.rsplit('/').next().unwrap_or_default();
    let no_tag = no_org.strip_suffix(":latest").unwrap_or(no_org);
    let mut key = String::new();
    for token in no_tag.split(|c: char| !c.is_alphanumeric()) {
        if token.is_empty() || matches!(token, "it" | "instruct" | "chat") {
            continue;
        }
        for c in token.chars() {
            if key.len() + c.len_utf8() > MAX_FAMILY {
                break;
            }
            key.push(c);
        }
    }
    if key.is_empty() {
        "unknown".to_string()
    } else {
        key
    }
}

/// What a run was fed, as far as comparability goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum InputKey {
    /// `--label input=NAME`.
    Label(String),
    /// The sha256 of the request file.
    Sha256(String),
    /// A synthetic workload spec (canonical JSON of `test.synthetic`).
    Synthetic(String),
}

impl InputKey {
    /// Short text for people: `input=batch_5k`, `sha256:0123456789ab`, `synthetic {...}`.
    pub fn display(&self) -> String {
        match self {
            InputKey::Label(v) => format!("input={}", truncate(v, 60)),
            InputKey::Sha256(h) => format!("sha256:{}", h.chars().take(12).collect::<String>()),
            InputKey::Synthetic(s) => format!("synthetic {}", truncate(s, 80)),
        }
    }

    pub(super) fn full(&self) -> String {
        match self {
            InputKey::Label(v) => format!("label:{v}"),
            InputKey::Sha256(h) => format!("sha256:{h}"),
            InputKey::Synthetic(s) => format!("synthetic:{s}"),
        }
    }
}

/// Cut a string to at most `n` characters, marking the cut with `…`.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Why a run's input is unknown (used in "no partner" reasons).
pub const UNKNOWN_INPUT: &str = "its input is unknown (an imported results file does not say which requests produced it); label the runs that used the same requests with --label input=NAME";

/// The input of a run, or `None` when it is unknown.
pub fn input_key(m: &Metadata) -> Option<InputKey> {
    if let Some(v) = m.labels.get("input").filter(|v| !v.trim().is_empty()) {
        return Some(InputKey::Label(v.trim().to_string()));
    }
    if let Some(sha) = m.test.input_sha256.as_deref().filter(|s| !s.is_empty())
        && m.test.raw_sha256.as_deref() != Some(sha)
    {
        return Some(InputKey::Sha256(sha.to_ascii_lowercase()));
    }
    match m.test.extra.get("synthetic") {
        None | Some(Value::Null) => None,
        Some(v) => Some(InputKey::Synthetic(
            serde_json::to_string(v).unwrap_or_default(),
        )),
    }
}

/// The load a run was measured at, as a comparable key (`concurrency 4, max_tokens 128`,
/// `rate 50/s poisson, cap 8, max_tokens default`): runs are paired only at the same load.
/// `None` for runs that do not record one (imported results files).
pub fn load_key(m: &Metadata) -> Option<String> {
    let load = m.test.extra.get("load")?.as_object()?;
    let text = |k: &str| match load.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    };
    let mut parts = Vec::new();
    match text("rate") {
        Some(rate) => {
            let arrival = text("arrival").unwrap_or_else(|| "poisson".into());
            let mut p = format!("rate {rate}/s {arrival}");
            if let Some(b) = text("burstiness").filter(|b| b != "1.0" && b != "1") {
                p.push_str(&format!(" burstiness {b}"));
            }
            parts.push(p);
            if let Some(c) = text("concurrency") {
                parts.push(format!("cap {c}"));
            }
        }
        None => parts.push(format!(
            "concurrency {}",
            text("concurrency").unwrap_or_else(|| "1".into())
        )),
    }
    parts.push(format!(
        "max_tokens {}",
        text("max_tokens").unwrap_or_else(|| "default".into())
    ));
    Some(parts.join(", "))
}

/// Why a run cannot be compared at all, if it cannot.
pub fn unusable_reason(m: &Metadata) -> Option<&'static str> {
    if m.status == Status::Running {
        Some(
            "still running, or cut off (`benchkeep verify` tells which; `benchkeep recover` finishes it)",
        )
    } else if m.results.success_count == 0 {
        Some("no request succeeded")
    } else {
        None
    }
}

/// A short stable hash for file names.
pub fn short_hash(s: &str) -> String {
    crate::digest::sha256_hex(s)[..8].to_string()
}

/// A file-safe slug for a family and an input: `gemma34b-1a2b3c4d`.
pub fn slug(family: &str, input: &str) -> String {
    let fam: String = family
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    let fam = if fam.is_empty() { "model".into() } else { fam };
    format!("{fam}-{}", short_hash(&format!("{family}\n{input}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_keys() {
        use crate::schema::SourceKind;
        let mut m = Metadata::new(
            SourceKind::Run,
            "benchkeep",
            "vllm",
            "m",
            chrono::Utc::now(),
        );
        assert_eq!(load_key(&m), None, "an imported run does not say");
        let mut set = |load: Value| {
            m.test.extra.insert("load".into(), load);
            load_key(&m)
        };
        let c32 =
            set(serde_json::json!({"mode": "concurrency", "concurrency": 32, "max_tokens": null}));
        assert_eq!(c32.as_deref(), Some("concurrency 32, max_tokens default"));
        let c4 =
            set(serde_json::json!({"mode": "concurrency", "concurrency": 4, "max_tokens": null}));
        assert_ne!(c32, c4);
        let rate = set(
            serde_json::json!({"mode": "rate", "rate": 50.0, "arrival": "constant", "burstiness": 1.0, "concurrency": 1, "max_tokens": 64}),
        );
        assert_eq!(
            rate.as_deref(),
            Some("rate 50.0/s constant, cap 1, max_tokens 64")
        );
    }

    #[test]
    fn families() {
        for name in [
            "google/gemma-3-4b-it",
            "gemma3:4b",
            "gemma3-4b",
            "Gemma3:4B",
            "gemma-3-4b-instruct",
        ] {
            assert_eq!(normalize_family(name), "gemma34b", "{name}");
        }
        assert_eq!(normalize_family("llama3.1:latest"), "llama31");
        assert_eq!(normalize_family("Qwen/Qwen2.5-7B-Instruct"), "qwen257b");
        assert_eq!(normalize_family("qwen2.5:7b"), "qwen257b");
        assert_ne!(
            normalize_family("gemma3:12b"),
            normalize_family("gemma3:4b")
        );
        assert_eq!(normalize_family("///"), "unknown");
        assert_eq!(normalize_family(&"x".repeat(10_000)).len(), MAX_FAMILY);
    }
}
