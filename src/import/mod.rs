//! `import`: every benchmark another tool already ran, from files and folders, into the
//! store; one run per benchmark in each file, linked into sweeps, secrets removed from the
//! stored copy, and nothing imported twice (the source file's sha256 is checked under the
//! store lock).
//!
//! A file goes through: read whole (at most [`MAX_DOCUMENT_BYTES`]) -> skipped when its
//! sha256 is already in the store -> detected by content ([`crate::ingest::parse_document`])
//! -> per-request data from the file beside it where the tool keeps it there -> metadata of
//! every run ([`crate::analyze::document_metadata`]), then the import's own keys
//! ([`meta`]) -> the redacted copy into `raw/` and the metadata published. A file that
//! cannot be used is reported and the others go on.

mod meta;
mod secrets;
mod sides;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Map;

use crate::analyze::{self, AnalyzeRequest, ManualGpu};
use crate::ingest::{self, Document, DocumentFormat, MAX_DOCUMENT_BYTES};
use crate::schema::SourceKind;
use crate::store::Store;

pub use secrets::{redact, redacted_copy};

/// What to import, validated by the caller.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub paths: Vec<PathBuf>,
    /// The server's platform name; by default `vllm` for vLLM's files, else the tool's name.
    pub platform: Option<String>,
    /// The model; by default as the tool named it.
    pub model: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// List what would be imported and skipped; write nothing.
    pub dry_run: bool,
    /// The command line, already redacted.
    pub command: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Imported (or, with `--dry-run`, would be): the tool, its version and the runs' ids
    /// (`would-be` ids under `--dry-run` are the locators).
    Imported {
        path: PathBuf,
        tool: String,
        version: Option<String>,
        runs: Vec<String>,
        redacted: Vec<String>,
    },
    Skipped {
        path: PathBuf,
        reason: String,
    },
    Failed {
        path: PathBuf,
        reason: String,
    },
}

/// Import every file under `opts.paths`. An `Err` is a store failure (nothing more is
/// written after it); bad files are [`Outcome::Failed`].
pub fn import(store: &Store, opts: &ImportOptions) -> Result<Vec<Outcome>> {
    let _lock = if opts.dry_run {
        None
    } else {
        store.ensure_layout()?;
        Some(store.lock()?)
    };
    let mut known = known_sources(store)?;
    let mut out = Vec::new();
    for found in walk::walk(&opts.paths) {
        let path = match found {
            walk::Found::File(p) => p,
            walk::Found::Skipped(path, reason) => {
                out.push(Outcome::Skipped { path, reason });
                continue;
            }
        };
        out.push(one_file(store, opts, &path, &mut known)?);
    }
    Ok(out)
}

/// The source files already in the store (sha256 -> a run imported from it).
fn known_sources(store: &Store) -> Result<HashMap<String, String>> {
    let mut known = HashMap::new();
    if !store.root().exists() {
        return Ok(known);
    }
    for m in store.load_all()?.runs {
        if let Some(sha) = m.source.extra.get("sha256").and_then(|v| v.as_str()) {
            known.insert(sha.to_string(), m.test_id.clone());
        }
        if let Some(sha) = &m.test.raw_sha256 {
            known.entry(sha.clone()).or_insert(m.test_id.clone());
        }
    }
    Ok(known)
}

fn failed(path: &Path, reason: impl Into<String>) -> Outcome {
    Outcome::Failed {
        path: path.into(),
        reason: reason.into(),
    }
}

fn skipped(path: &Path, reason: impl Into<String>) -> Outcome {
    Outcome::Skipped {
        path: path.into(),
        reason: reason.into(),
    }
}

fn one_file(
    store: &Store,
    opts: &ImportOptions,
    path: &Path,
    known: &mut HashMap<String, String>,
) -> Result<Outcome> {
    let bytes = match crate::store::nofollow::read_bounded(path, MAX_DOCUMENT_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Ok(skipped(
                path,
                format!(
                    "over the {} MiB limit for result files read whole; split it or import its runs separately",
                    MAX_DOCUMENT_BYTES >> 20
                ),
            ));
        }
        Err(e) => return Ok(failed(path, format!("cannot be read ({e})"))),
    };
    let sha = crate::digest::sha256_hex(&bytes);
    if let Some(id) = known.get(&sha) {
        return Ok(skipped(
            path,
            format!("already imported (run {id}; same sha256)"),
        ));
    }
    let Some(mut doc) = ingest::parse_document(&bytes, None) else {
        if let Some(why) = sides::side_file(path, &bytes) {
            return Ok(skipped(path, why));
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
            .trim_start()
            .to_string();
        if text.starts_with('{') || text.starts_with('[') {
            let reason = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Err(e) => format!("not valid JSON ({e}): a cut or broken file?"),
                Ok(_) => "JSON in no format benchkeep knows (unknown file)".into(),
            };
            return Ok(if reason.starts_with("not valid") {
                failed(path, reason)
            } else {
                skipped(path, reason)
            });
        }
        return Ok(skipped(
            path,
            "not a result file benchkeep knows (unknown file)",
        ));
    };
    if let Some(why) = sides::same_report(path, &doc) {
        return Ok(skipped(path, why));
    }
    let whole_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if let Some(why) = sides::covered(path, doc.format, whole_array) {
        // A sweep summary whose run=N.json files are all there adds nothing; runs missing
        // from the folder are imported from it.
        let present = path.parent().map(sides::run_files).unwrap_or_default();
        let number = |r: &ingest::DocumentRun| r.notes.get("run_number").and_then(|v| v.as_u64());
        doc.runs
            .retain(|r| number(r).is_none_or(|n| !present.contains(&n)));
        if doc.runs.is_empty() || doc.format != DocumentFormat::VllmBenchServe {
            return Ok(skipped(path, why));
        }
        for r in &mut doc.runs {
            r.warnings
                .push("its run=N.json file is missing: imported from summary.json".into());
        }
    }
    if doc.runs.is_empty() {
        return Ok(if doc.unparseable == 0 {
            skipped(
                path,
                format!("a {} file that holds no benchmarks", doc.tool),
            )
        } else {
            let why = doc
                .first_unparseable
                .first()
                .map(|u| format!("line {}: {}", u.line, u.reason));
            failed(
                path,
                format!(
                    "a {} file, but none of its runs could be read ({})",
                    doc.tool,
                    why.unwrap_or_default()
                ),
            )
        });
    }
    let side = match attach_partner(path, &mut doc) {
        Ok(side) => side,
        Err(why) => return Ok(failed(path, why)),
    };
    let side = match side.map(|s| side_copy(&s, &mut doc)).transpose() {
        Ok(side) => side,
        Err(why) => return Ok(failed(path, why)),
    };
    let (stored, redacted) = secrets::redacted_copy(&bytes);
    let req = request(opts, path, &doc);
    let metas = match analyze::document_metadata(&req, &doc) {
        Ok(m) => m,
        Err(e) => {
            let e = format!("{e:#}");
            return Ok(failed(
                path,
                match e.contains("--total-time") {
                    true => format!(
                        "{} records no duration for a run; import it alone with `benchkeep analyze --total-time SECONDS`",
                        doc.tool
                    ),
                    false => e,
                },
            ));
        }
    };
    let stored_sha = if redacted.is_empty() {
        sha.clone() // nothing cut: the copy is the file, byte for byte
    } else {
        crate::digest::sha256_hex(&stored)
    };
    let metas = meta::finish(
        metas,
        &doc,
        path,
        &meta::Copy {
            sha: &sha,
            stored_sha: &stored_sha,
            redacted: &redacted,
            stored_bytes: stored.len() as u64,
        },
    );
    if let (Some((rel, copy)), false) = (&side, opts.dry_run) {
        meta::write_side(store, rel, copy)?;
    }
    let runs = if opts.dry_run {
        metas
            .iter()
            .map(|m| {
                format!(
                    "{} ({})",
                    m.test_id,
                    m.source.extra["locator"].as_str().unwrap_or("")
                )
            })
            .collect()
    } else {
        meta::write(store, metas, &stored)?
    };
    if let Some(first) = runs.first() {
        known.insert(sha, first.clone());
    }
    Ok(Outcome::Imported {
        path: path.into(),
        tool: doc.tool.clone(),
        version: doc.tool_version.clone(),
        runs,
        redacted,
    })
}

/// The copy of a per-request side file to keep in `raw/` (redacted like the summary: JSON
/// Lines per line), and its store-relative name; recorded in every run's notes
/// (`per_request_copy`, `per_request_stored_sha256`, `per_request_redacted`).
fn side_copy(side: &Path, doc: &mut Document) -> Result<(String, Vec<u8>), String> {
    let name = side.display().to_string();
    let raw = crate::store::nofollow::read_bounded(side, MAX_DOCUMENT_BYTES)
        .map_err(|e| format!("{name}: cannot be read ({e})"))?
        .ok_or(format!("{name}: over the size limit"))?;
    let (copy, redacted) = secrets::redacted_copy(&raw);
    let stored_sha = crate::digest::sha256_hex(&copy);
    let ext = side.extension().and_then(|e| e.to_str()).unwrap_or("json");
    let ext = if ext == "jsonl" { "jsonl" } else { "json" };
    let rel = meta::side_rel(&stored_sha, ext);
    for run in &mut doc.runs {
        run.notes.insert(
            "per_request_sha256".into(),
            crate::digest::sha256_hex(&raw).into(),
        );
        run.notes
            .insert("per_request_copy".into(), rel.clone().into());
        run.notes.insert(
            "per_request_stored_sha256".into(),
            stored_sha.clone().into(),
        );
        if !redacted.is_empty() {
            run.notes
                .insert("per_request_redacted".into(), redacted.clone().into());
        }
    }
    Ok((rel, copy))
}

/// Per-request data kept beside the summary (AIPerf, genai-perf, llmperf): read into the
/// run; returns the side file's path.
fn attach_partner(path: &Path, doc: &mut Document) -> Result<Option<PathBuf>, String> {
    let Some(side) = sides::partner(path, doc.format) else {
        return Ok(None);
    };
    let run = &mut doc.runs[0];
    let name = side.display().to_string();
    match doc.format {
        DocumentFormat::Aiperf => {
            let (records, bad) = ingest::aiperf_records(&side)
                .map_err(|e| format!("{name}: cannot be read ({e})"))?;
            if bad > 0 {
                run.warnings
                    .push(format!("{name}: {bad} unusable line(s) skipped"));
            }
            run.records_have_tokens = records.iter().any(|r| r.prompt_tokens.is_some());
            run.records = records;
        }
        DocumentFormat::GenaiPerf | DocumentFormat::Llmperf => {
            let raw = crate::store::nofollow::read_bounded(&side, MAX_DOCUMENT_BYTES)
                .map_err(|e| format!("{name}: cannot be read ({e})"))?
                .ok_or(format!("{name}: over the size limit"))?;
            let v: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| format!("{name}: not valid JSON ({e})"))?;
            if doc.format == DocumentFormat::Llmperf {
                run.records = ingest::llmperf_records(&v);
            } else {
                let (records, window) = ingest::genai_perf_records(&v);
                run.records = records;
                run.duration_s = run.duration_s.or(window);
            }
            run.records_have_tokens = run.records.iter().any(|r| r.prompt_tokens.is_some());
        }
        _ => return Ok(None),
    }
    run.notes.insert("per_request_file".into(), name.into());
    Ok(Some(side))
}

fn request(opts: &ImportOptions, path: &Path, doc: &Document) -> AnalyzeRequest {
    let platform = opts.platform.clone().unwrap_or_else(|| match doc.format {
        DocumentFormat::VllmBenchServe
        | DocumentFormat::VllmBenchThroughput
        | DocumentFormat::VllmBenchLatency => "vllm".into(),
        other => other.name().into(),
    });
    let model = opts
        .model
        .clone()
        .or_else(|| doc.runs.iter().find_map(|r| r.model.clone()))
        .unwrap_or_else(|| "unknown".into());
    AnalyzeRequest {
        platform,
        model,
        input: path.to_path_buf(),
        requests: None,
        format: None,
        config: Map::new(),
        labels: opts.labels.clone(),
        total_time_s: None,
        model_load_time_s: None,
        gpu: ManualGpu::default(),
        strict: false,
        source_kind: SourceKind::Analyze,
        command: opts.command.clone(),
    }
}
