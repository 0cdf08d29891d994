//! Files that belong to another: per-request data beside a summary (AIPerf's
//! `profile_export.jsonl`, llmperf's `*_individual_responses.json`, genai-perf's raw
//! `profile_export.json`), and a `vllm bench sweep` `summary.json` beside its `run=N.json`
//! files. Which file is which is told by content; the tool's own naming only finds the
//! partner.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ingest::{DocumentFormat, MAX_DOCUMENT_BYTES};

/// A file's partner, by the tool's naming convention.
pub fn partner(path: &Path, format: DocumentFormat) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?;
    let candidate = match format {
        DocumentFormat::Aiperf => dir.join(format!("{}.jsonl", name.strip_suffix("_aiperf.json")?)),
        DocumentFormat::GenaiPerf => {
            dir.join(format!("{}.json", name.strip_suffix("_genai_perf.json")?))
        }
        DocumentFormat::Llmperf => dir.join(format!(
            "{}_individual_responses.json",
            name.strip_suffix("_summary.json")?
        )),
        _ => return None,
    };
    candidate.is_file().then_some(candidate)
}

/// Why a file that no document format claims is still not unknown: it is the per-request
/// data of a summary beside it. `None` when it is not such a file.
pub fn side_file(path: &Path, bytes: &[u8]) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 16)]);
    if head.starts_with("benchmarks:")
        && (head.contains("generative_benchmark") || head.contains("run_id:"))
    {
        return Some("a GuideLLM YAML report: not read (no YAML reader in benchkeep yet); import the benchmarks.json GuideLLM writes with it".into());
    }
    if head.starts_with("Run Info,")
        || (head.contains("Run Info") && head.contains("Time to First Token"))
    {
        return Some("a GuideLLM CSV report: not read (three header rows, no per-request data); import the benchmarks.json GuideLLM writes with it".into());
    }
    let first_line = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))?;
    if let Ok(v) = serde_json::from_slice::<Value>(first_line)
        && v.get("metadata").is_some()
        && v.get("metrics").is_some()
    {
        let summary = name
            .strip_suffix(".jsonl")
            .map(|s| dir.join(format!("{s}_aiperf.json")));
        return Some(match summary.filter(|s| s.is_file()) {
            Some(s) => format!("AIPerf per-request records, read with {}", s.display()),
            None => {
                "AIPerf per-request records without their profile_export_aiperf.json beside them"
                    .into()
            }
        });
    }
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return None;
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    if v.as_array()?.iter().any(|e| e.get("ttft_s").is_some()) {
        let summary = name
            .strip_suffix("_individual_responses.json")
            .map(|s| dir.join(format!("{s}_summary.json")));
        return Some(match summary.filter(|s| s.is_file()) {
            Some(s) => format!("llmperf per-request responses, read with {}", s.display()),
            None => "llmperf per-request responses without their *_summary.json (which says how long the run took)".into(),
        });
    }
    None
}

/// Why a document is covered by other files: a genai-perf raw export whose summary is
/// beside it, or a `vllm bench sweep` summary.json beside its run=N.json files.
pub fn covered(path: &Path, format: DocumentFormat, whole_array: bool) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?;
    match format {
        DocumentFormat::GenaiPerfRaw => {
            let s = dir.join(format!("{}_genai_perf.json", name.strip_suffix(".json")?));
            s.is_file()
                .then(|| format!("genai-perf per-request data, read with {}", s.display()))
        }
        DocumentFormat::VllmBenchServe if whole_array => {
            let runs = run_files(dir);
            (!runs.is_empty()).then(|| "vllm bench sweep summary: its runs are imported from the run=N.json files beside it".into())
        }
        _ => None,
    }
}

/// The `N`s of the `run=N.json` files in `dir`.
pub fn run_files(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| run_file(&e.path()))
                .collect()
        })
        .unwrap_or_default()
}

/// `N` of a `vllm bench sweep` `run=N.json`.
pub fn run_file(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("run=")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The axis and value of a `vllm bench sweep` combination folder
/// (`BENCH--request_rate=40`, `SERVE--tp2-BENCH--max_concurrency=8`).
pub fn vllm_combo(dir: &Path) -> Option<(&'static str, f64)> {
    let name = dir.file_name()?.to_str()?;
    for (key, axis) in [
        ("max_concurrency=", "concurrency"),
        ("request_rate=", "rate"),
    ] {
        if let Some(i) = name.rfind(key) {
            let rest = &name[i + key.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if let Ok(v) = rest[..end].parse::<f64>() {
                return Some((axis, v));
            }
        }
    }
    None
}
