//! Platform names: the naming convention (`vllm-serve` for a vLLM server, `vllm-offline`
//! for `vllm run-batch` or the offline `LLM` API, `ollama`) and the note printed when two
//! names in one store look like the same engine in the same mode under two spellings
//! (`vllm` and `vllm-serve`), which the head-to-head treats as two platforms.

use std::collections::BTreeMap;

/// Suffixes that name the same (online, served) mode of an engine.
const SERVED: [&str; 5] = ["serve", "server", "online", "openai", "api"];

/// The engine-and-mode key of a platform name: lower case, `_`/space as `-`, without a
/// trailing served-mode word (`vLLM_Server` -> `vllm`, `vllm-offline` stays).
pub fn engine_key(platform: &str) -> String {
    let norm: String = platform
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c })
        .collect();
    match norm.rsplit_once('-') {
        Some((head, tail)) if SERVED.contains(&tail) && !head.is_empty() => head.to_string(),
        _ => norm,
    }
}

/// One line per group of two or more distinct platform names with the same engine key,
/// e.g. "note: platforms vllm and vllm-serve look like the same engine under two names...".
pub fn same_engine_notes<'a>(platforms: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for p in platforms {
        let names = groups.entry(engine_key(p)).or_default();
        if !names.contains(&p) {
            names.push(p);
        }
    }
    groups
        .into_values()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort();
            format!(
                "note: platforms {} look like the same engine under {} names; runs are grouped by platform name, so they are not one platform here. The convention: vllm-serve (a vLLM server), vllm-offline (vllm run-batch), ollama (docs/guide.md#platform-names)",
                names.join(" and "),
                names.len()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_engine_different_names_are_noted() {
        assert_eq!(engine_key("vLLM_Server"), "vllm");
        assert_eq!(engine_key("vllm-offline"), "vllm-offline");
        let notes = same_engine_notes(["vllm", "ollama", "vllm-serve", "vllm"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("note: platforms vllm and vllm-serve look like"));
        assert!(same_engine_notes(["vllm-serve", "vllm-offline", "ollama"]).is_empty());
    }
}
