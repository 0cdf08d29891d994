//! Importing a results file into the store: scan, copy into `raw/`, write metadata,
//! and leave the derived files to the caller ([`crate::derive`]). Used by `analyze` and `record`.
//!
//! Order matters for "nothing is ever lost": the input is fully scanned before anything is
//! written (bad input writes nothing); the copy is made into a temp file in `raw/` and
//! checked against the scan's sha256; the id is reserved by exclusive creation of the
//! metadata; the copy then takes its final name without ever replacing a file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::ingest::{self, Format};
use crate::metrics::Aggregator;
use crate::schema::{GpuInfo, Metadata, SourceKind, Status, TestInfo};
use crate::store::{Store, atomic, ids, store_io};

/// GPU facts noted by hand (`--gpu-name`, `--vram-total-gb`, ...).
#[derive(Debug, Clone, Default)]
pub struct ManualGpu {
    pub name: Option<String>,
    pub vram_total_gb: Option<f64>,
    pub vram_used_gb: Option<f64>,
    pub utilization_percent: Option<f64>,
}

impl ManualGpu {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.vram_total_gb.is_none()
            && self.vram_used_gb.is_none()
            && self.utilization_percent.is_none()
    }
}

/// Everything an import needs, already validated by the caller.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    pub platform: String,
    pub model: String,
    pub input: PathBuf,
    /// The request (prompt) file the results were produced from, if known: its sha256 goes
    /// into `test.input_sha256`, so runs on the same requests can be compared head to head.
    pub requests: Option<PathBuf>,
    pub format: Option<Format>,
    pub config: Map<String, Value>,
    pub labels: BTreeMap<String, String>,
    /// Wall time; when `None` it is taken from the records' own timings, if they have any.
    pub total_time_s: Option<f64>,
    pub model_load_time_s: Option<f64>,
    pub gpu: ManualGpu,
    pub strict: bool,
    pub source_kind: SourceKind,
    /// The command line, already redacted.
    pub command: Option<String>,
}

/// A finished import.
#[derive(Debug)]
pub struct Analyzed {
    pub metadata: Metadata,
    pub metadata_path: PathBuf,
}

/// Scan `req.input`, and store it and its metadata.
pub fn analyze_file(store: &Store, req: AnalyzeRequest) -> Result<Analyzed> {
    let metadata = build_metadata(&req)?;
    let (metadata, metadata_path) = store_import(store, &req.input, metadata)?;
    Ok(Analyzed {
        metadata,
        metadata_path,
    })
}

/// Scan the input and build the run's metadata (nothing is written).
pub fn build_metadata(req: &AnalyzeRequest) -> Result<Metadata> {
    let requests = match &req.requests {
        Some(path) => Some((
            path.display().to_string(),
            crate::digest::sha256_file(path)
                .map_err(|e| {
                    Error::usage(format!(
                        "--requests {}: cannot read the request file ({e})",
                        path.display()
                    ))
                })?
                .0,
        )),
        None => None,
    };
    let mut agg = Aggregator::new();
    let scan = ingest::scan_file(&req.input, req.format, |r| agg.push(&r))?;
    let input_name = req.input.display().to_string();
    for u in &scan.first_unparseable {
        eprintln!(
            "warning: {input_name}:{}: {} (counted in unparseable_lines)",
            u.line, u.reason
        );
    }
    if scan.unparseable > scan.first_unparseable.len() as u64 {
        eprintln!(
            "warning: {input_name}: {} more unparseable lines not shown",
            scan.unparseable - scan.first_unparseable.len() as u64
        );
    }
    if req.strict && scan.unparseable > 0 {
        let lines: Vec<String> = scan
            .first_unparseable
            .iter()
            .map(|u| u.line.to_string())
            .collect();
        return Err(Error::input(
            &req.input,
            format!(
                "{} unparseable line(s) (line {}); --strict refuses them: fix the file or drop --strict to import the rest",
                scan.unparseable,
                lines.join(", ")
            ),
        )
        .into());
    }
    let total_time_s = match req.total_time_s.or(agg.span_s()) {
        Some(t) => t,
        None => {
            return Err(Error::usage(format!(
                "--total-time is required: {input_name} ({}) carries no timings of its own; give the benchmark's wall time, e.g. --total-time 2400",
                scan.format.name()
            ))
            .into());
        }
    };
    let num_requests = agg.count();
    let now = chrono::Utc::now();
    let (success, failure) = (agg.success_count(), agg.failure_count());
    let mut results = agg.finish(total_time_s, scan.unparseable);
    results.skipped_lines = scan.skipped;
    results.model_load_time_seconds = req.model_load_time_s;
    results.gpu_utilization_percent = req.gpu.utilization_percent;
    let status = if success == 0 {
        Status::Failed
    } else if failure > 0 || scan.unparseable > 0 {
        Status::Partial
    } else {
        Status::Completed
    };
    let gpu = (!req.gpu.is_empty()).then(|| GpuInfo {
        name: req.gpu.name.clone(),
        vram_total_gb: req.gpu.vram_total_gb,
        vram_used_gb: req.gpu.vram_used_gb,
        utilization_avg_percent: req.gpu.utilization_percent,
        source: Some("manual".into()),
        ..Default::default()
    });
    let mut meta = Metadata::new(
        req.source_kind,
        scan.format.name(),
        req.platform.clone(),
        req.model.clone(),
        now,
    );
    meta.test_id = ids::base_test_id(
        &req.platform,
        &req.model,
        num_requests,
        &now.format("%Y-%m-%d").to_string(),
    );
    meta.gpu = gpu;
    meta.config = req.config.clone();
    meta.test = TestInfo {
        num_requests,
        input_file: Some(
            requests
                .as_ref()
                .map_or_else(|| input_name.clone(), |(name, _)| name.clone()),
        ),
        output_file: String::new(),
        input_sha256: requests.as_ref().map(|(_, sha)| sha.clone()),
        raw_sha256: Some(scan.sha256.clone()),
        raw_bytes: Some(scan.bytes),
        extra: if requests.is_some() {
            Map::from_iter([("results_file".to_string(), Value::String(input_name))])
        } else {
            Map::new()
        },
    };
    meta.results = results;
    meta.status = status;
    meta.labels = req.labels.clone();
    meta.source.command = req.command.clone();
    Ok(meta)
}

/// Put the input into `raw/` (unless it already is there) and publish the metadata under a
/// fresh id derived from `metadata.test_id`. Returns the final metadata and its path.
pub fn store_import(
    store: &Store,
    input: &Path,
    mut metadata: Metadata,
) -> Result<(Metadata, PathBuf)> {
    store.ensure_layout()?;
    let base = metadata.test_id.clone();
    let expected_sha = metadata.test.raw_sha256.clone().unwrap_or_default();
    if let Some(rel) = already_in_raw(store, input) {
        metadata.test.output_file = rel.clone();
        // A results file written straight into raw/ under an id-like name (the seed's
        // `raw/vllm-offline-gemma3-4b-5000-2024-10-28.jsonl`) gives the run that id.
        let stem = rel.trim_start_matches("raw/").trim_end_matches(".jsonl");
        let prefix = format!(
            "{}-{}-",
            ids::file_safe(&metadata.platform),
            ids::file_safe(&metadata.model)
        );
        if rel.ends_with(".jsonl") && ids::file_safe(stem) == stem && stem.starts_with(&prefix) {
            let mut named = metadata.clone();
            if let Some(path) = store.publish_exact(stem, &mut named)? {
                return Ok((named, path));
            }
        }
        let path = store.publish_new(&base, &mut metadata)?;
        return Ok((metadata, path));
    }
    let (tmp, _, _) = copy_to_temp(
        store,
        input,
        Some(expected_sha.as_str()).filter(|s| !s.is_empty()),
        "the file changed while it was being imported; run the command again once it is complete",
    )?;
    let result = (|| {
        metadata.test.output_file = String::new();
        let path = store.publish_new(&base, &mut metadata)?;
        let raw = store.resolve(&metadata.test.output_file);
        atomic::link_exclusive(&tmp, &raw).map_err(|e| {
            store_io(&raw, "create", e).context(format!(
                "metadata {} was saved but its raw file could not be; `benchkeep verify` reports it",
                path.display()
            ))
        })?;
        atomic::sync_dir(&store.raw_dir()).map_err(|e| store_io(&store.raw_dir(), "sync", e))?;
        Ok((metadata, path))
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// `raw/<name>` when `input` already lies in the store's raw directory.
pub fn already_in_raw(store: &Store, input: &Path) -> Option<String> {
    let raw_dir = fs::canonicalize(store.raw_dir()).ok()?;
    let input = fs::canonicalize(input).ok()?;
    if input.parent()? == raw_dir {
        Some(format!("raw/{}", input.file_name()?.to_string_lossy()))
    } else {
        None
    }
}

/// Copy `input` byte for byte into a synced temp file in `raw/`. Returns the temp path, the
/// sha256 and the size; with `expected`, a different sha256 is an error that says
/// `changed_hint` (the file changed after it was scanned).
pub fn copy_to_temp(
    store: &Store,
    input: &Path,
    expected: Option<&str>,
    changed_hint: &str,
) -> Result<(PathBuf, String, u64)> {
    let tmp = atomic::temp_path_for(&store.raw_dir().join("import.jsonl"));
    let result = (|| -> Result<(String, u64)> {
        let mut src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| store_io(&tmp, "create", e))?;
        let mut hasher = crate::digest::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = src
                .read(&mut buf)
                .with_context(|| format!("reading {}", input.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
            out.write_all(&buf[..n])
                .map_err(|e| store_io(&tmp, "write", e))?;
        }
        out.sync_all().map_err(|e| store_io(&tmp, "sync", e))?;
        let sha = hasher.hex();
        if let Some(expected) = expected
            && sha != expected
        {
            return Err(Error::input(input, changed_hint).into());
        }
        Ok((sha, bytes))
    })();
    match result {
        Ok((sha, bytes)) => Ok((tmp, sha, bytes)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}
