//! Files that belong to another: per-request data beside a summary (AIPerf's
//! `profile_export.jsonl`, llmperf's `*_individual_responses.json`, genai-perf's raw
//! `profile_export.json`), and a `vllm bench sweep` `summary.json` beside its `run=N.json`
//! files. Which file is which is told by content; the tool's own naming only finds the
//! partner.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ingest::{Document, DocumentFormat, MAX_DOCUMENT_BYTES};

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

/// Why a GuideLLM YAML or CSV report is not imported: the same report (the same benchmark
/// ids) is beside it as `benchmarks.json` (for a YAML or CSV) or as YAML (for a CSV), which
/// hold more. The bytes differ, so this is not the duplicate check by sha256.
pub fn same_report(path: &Path, doc: &Document) -> Option<String> {
    if doc.format != DocumentFormat::Guidellm {
        return None;
    }
    let kind = doc
        .runs
        .first()?
        .notes
        .get("report_file_format")?
        .as_str()?;
    let better: &[&str] = if kind == "csv" {
        &["json", "yaml", "yml"]
    } else {
        &["json"]
    };
    let ids = |d: &Document| -> BTreeSet<String> {
        d.runs
            .iter()
            .filter_map(|r| r.notes.get("benchmark_id")?.as_str().map(str::to_string))
            .collect()
    };
    let mine = ids(doc);
    if mine.is_empty() {
        return None;
    }
    let mut siblings: Vec<PathBuf> = std::fs::read_dir(path.parent()?)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| better.contains(&e))
        })
        .collect();
    siblings.sort();
    siblings.into_iter().find_map(|p| {
        let bytes = crate::store::nofollow::read_bounded(&p, MAX_DOCUMENT_BYTES).ok()??;
        let other = crate::ingest::parse_document(&bytes, Some(DocumentFormat::Guidellm))?;
        (ids(&other) == mine).then(|| {
            format!(
                "same report as {} (GuideLLM writes one report as JSON, YAML and CSV; the {} is imported)",
                p.display(),
                p.file_name().and_then(|n| n.to_str()).unwrap_or("other")
            )
        })
    })
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
