//! `import`: every benchmark another tool already ran, from files and folders, into the
//! store; one run per benchmark in each file, linked into sweeps, secrets removed from the
//! stored copy, and nothing imported twice (the source file's sha256 is checked under the
//! store lock).
//!
//! A file goes through ([`prepare`]): read whole (at most [`MAX_DOCUMENT_BYTES`]) -> skipped
//! when its sha256 is already in the store -> parsed once, detected by content
//! ([`crate::ingest::parse_document_seen`], which also shows every value to the secret scan)
//! -> per-request data from the file beside it where the tool keeps it there -> metadata of
//! every run ([`crate::analyze::document_metadata`]), then the import's own keys ([`meta`]),
//! its own time ([`when`]). Files are prepared on a few threads, a batch at a time, and
//! each batch is written under the store lock by group commit ([`crate::store::batch`]):
//! the redacted copies into `raw/` (named by their content), one sync, then the metadata.
//! A file that cannot be used is reported and the others go on.
//!
//! Memory: at most [`THREADS`] files parsed at once (each at most the size cap, its parsed
//! value a few times that), plus one batch of prepared files: their copies and metadata,
//! [`BATCH_BYTES`] of input (or one file, when it is larger) and at most [`BATCH_FILES`].
//!
//! A crash cuts a file's runs short at worst (each run whole); the next import of the file
//! adds the runs that are missing (told apart by `source.locator`).

mod meta;
mod prepare;
mod secrets;
mod sides;
mod walk;
mod when;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Map;

use crate::analyze::{AnalyzeRequest, ManualGpu};
use crate::ingest::{self, Document, DocumentFormat, MAX_DOCUMENT_BYTES};
use crate::schema::SourceKind;
use crate::store::Store;
use crate::store::batch::{self, Entry};

pub use secrets::{redact, redacted_copy};

use prepare::{Plan, Prepared};

/// Files prepared at once, at most (threads; fewer on a machine with fewer cores).
pub const THREADS: usize = 4;
/// A batch ends after this many files ...
pub const BATCH_FILES: usize = 128;
/// ... or this many bytes of input.
pub const BATCH_BYTES: u64 = 64 << 20;

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
    /// The UTC offset that times written without a zone are read in (the importing
    /// machine's; `None`: UTC).
    pub local_offset: Option<chrono::FixedOffset>,
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

/// A source file already in the store: a run made from it, and which of its runs are
/// there (their locators; empty for a file `analyze` imported, which is one run).
#[derive(Debug, Clone, Default)]
pub struct Known {
    id: String,
    locators: HashSet<String>,
    imported: bool,
    /// How many runs the import made of the file (`source.file_runs`), where recorded.
    file_runs: Option<usize>,
}

impl Known {
    /// Whether nothing of the file is missing, as far as can be told before it is read:
    /// `analyze` made one run of it, or every run `import` made of it is there (a store
    /// written before `source.file_runs` was recorded counts as whole).
    fn whole(&self) -> bool {
        !self.imported || self.file_runs.is_none_or(|n| self.locators.len() >= n)
    }

    fn skipped(&self, path: &Path) -> Outcome {
        match self.id.strip_prefix("from ") {
            // A file earlier in this import, with the same bytes.
            Some(first) => skipped(
                path,
                format!("already imported (same sha256 as {first}, imported just now)"),
            ),
            None => skipped(
                path,
                format!("already imported (run {}; same sha256)", self.id),
            ),
        }
    }
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
    let mut batch: Vec<PathBuf> = Vec::new();
    let mut bytes = 0u64;
    for found in walk::walk(&opts.paths) {
        match found {
            walk::Found::File(p) => {
                bytes += std::fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0);
                batch.push(p);
                if batch.len() >= BATCH_FILES || bytes >= BATCH_BYTES {
                    run_batch(
                        store,
                        opts,
                        &std::mem::take(&mut batch),
                        &mut known,
                        &mut out,
                    )?;
                    bytes = 0;
                }
            }
            walk::Found::Skipped(path, reason) => {
                // In walk order: the files before it go first.
                run_batch(
                    store,
                    opts,
                    &std::mem::take(&mut batch),
                    &mut known,
                    &mut out,
                )?;
                bytes = 0;
                out.push(Outcome::Skipped { path, reason });
            }
        }
    }
    run_batch(store, opts, &batch, &mut known, &mut out)?;
    Ok(out)
}

/// Prepare `paths` on a few threads, then write what they hold in one group commit.
fn run_batch(
    store: &Store,
    opts: &ImportOptions,
    paths: &[PathBuf],
    known: &mut HashMap<String, Known>,
    out: &mut Vec<Outcome>,
) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let prepared = {
        let known = &*known;
        parallel(paths, |p| prepare::prepare(opts, p, known))
    };
    // Which files are written, in order; the others are outcomes already.
    let mut slots: Vec<Result<Box<Plan>, Outcome>> = Vec::with_capacity(prepared.len());
    for p in prepared {
        slots.push(match p {
            Prepared::Done(o) => Err(o),
            Prepared::Plan(mut plan) => match known.get(&plan.sha) {
                Some(k) if k.whole() => Err(k.skipped(&plan.path)),
                Some(k) => {
                    // Runs of this file already in (an import cut short): the rest.
                    plan.metas.retain(|m| !k.locators.contains(&locator(m)));
                    if plan.metas.is_empty() {
                        Err(k.skipped(&plan.path))
                    } else {
                        Ok(plan)
                    }
                }
                None => {
                    known.insert(
                        plan.sha.clone(),
                        Known {
                            id: format!("from {}", plan.path.display()),
                            locators: plan.metas.iter().map(locator).collect(),
                            imported: true,
                            file_runs: Some(plan.metas.len()),
                        },
                    );
                    Ok(plan)
                }
            },
        });
    }
    let ids = if opts.dry_run {
        let would = |p: &Plan| {
            p.metas
                .iter()
                .map(|m| format!("{} ({})", m.test_id, locator(m)))
                .collect::<Vec<_>>()
        };
        slots
            .iter()
            .filter_map(|s| s.as_ref().ok().map(|p| would(p)))
            .collect()
    } else {
        let entries: Vec<Entry<'_>> = slots
            .iter_mut()
            .filter_map(|s| s.as_mut().ok())
            .map(|p| {
                let mut data = vec![(p.raw.0.clone(), p.raw.1.as_slice())];
                data.extend(p.side.as_ref().map(|(rel, b)| (rel.clone(), b.as_slice())));
                Entry {
                    data,
                    runs: std::mem::take(&mut p.metas),
                }
            })
            .collect();
        batch::commit(store, entries)?
    };
    let mut ids = ids.into_iter();
    for slot in slots {
        let plan = match slot {
            Err(o) => {
                out.push(o);
                continue;
            }
            Ok(plan) => plan,
        };
        let runs = ids.next().unwrap_or_default();
        if let (Some(first), Some(k)) = (runs.first(), known.get_mut(&plan.sha))
            && k.id.starts_with("from ")
        {
            k.id = first.clone();
        }
        out.push(Outcome::Imported {
            path: plan.path,
            tool: plan.tool,
            version: plan.version,
            runs,
            redacted: plan.redacted,
        });
    }
    Ok(())
}

/// Where a run is in its file (`source.locator`).
fn locator(m: &crate::schema::Metadata) -> String {
    m.source
        .extra
        .get("locator")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Map `f` over `items` on up to [`THREADS`] threads (each takes the next item when it is
/// done with one), keeping the order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(THREADS)
        .min(items.len());
    if threads < 2 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("import worker panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The source files already in the store (sha256 -> what of it is there).
fn known_sources(store: &Store) -> Result<HashMap<String, Known>> {
    let mut known: HashMap<String, Known> = HashMap::new();
    if !store.root().exists() {
        return Ok(known);
    }
    for m in store.load_all()?.runs {
        if let Some(sha) = m.source.extra.get("sha256").and_then(|v| v.as_str()) {
            let k = known.entry(sha.to_string()).or_insert_with(|| Known {
                id: m.test_id.clone(),
                imported: true,
                ..Default::default()
            });
            k.locators.insert(locator(&m));
            let n = m.source.extra.get("file_runs").and_then(|v| v.as_u64());
            k.file_runs = k.file_runs.max(n.map(|n| n as usize));
        }
        if let Some(sha) = &m.test.raw_sha256 {
            known.entry(sha.clone()).or_insert(Known {
                id: m.test_id.clone(),
                ..Default::default()
            });
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
        source_kind: SourceKind::Import,
        command: opts.command.clone(),
    }
}
