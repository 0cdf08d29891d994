//! Importing a results file into the store: scan, copy into `raw/`, write metadata,
//! and leave the derived files to the caller ([`crate::derive`]). Used by `analyze` and `record`.
//! A whole document (one file, several runs: [`analyze_document`]) is stored once in `raw/`
//! and gets one metadata file per run.
//!
//! Order matters for "nothing is ever lost": the input is fully scanned before anything is
//! written (bad input writes nothing); the copy is made into a temp file in `raw/` and
//! checked against the scan's sha256; the id is reserved by exclusive creation of the
//! metadata; the copy then takes its final name without ever replacing a file.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::ingest::{self, Document, DocumentRun, Format, Totals};
use crate::metrics::Aggregator;
use crate::metrics::steady::SteadySpec;
use crate::schema::{
    ErrorKind, GpuInfo, Metadata, RequestRecord, Results, SourceKind, Status, TestInfo, round,
};
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

/// The request file given with `--requests`: its name and sha256.
fn request_file(req: &AnalyzeRequest) -> Result<Option<(String, String)>> {
    let Some(path) = &req.requests else {
        return Ok(None);
    };
    let sha = crate::digest::sha256_file(path).map_err(|e| {
        Error::usage(format!(
            "--requests {}: cannot read the request file ({e})",
            path.display()
        ))
    })?;
    Ok(Some((path.display().to_string(), sha.0)))
}

/// Print the first unparseable lines as warnings, and refuse them under `--strict`.
fn report_unparseable(
    req: &AnalyzeRequest,
    count: u64,
    first: &[ingest::Unparseable],
) -> Result<()> {
    let input_name = req.input.display().to_string();
    for u in first {
        eprintln!(
            "warning: {input_name}:{}: {} (counted in unparseable_lines)",
            u.line, u.reason
        );
    }
    if count > first.len() as u64 {
        eprintln!(
            "warning: {input_name}: {} more unparseable lines not shown",
            count - first.len() as u64
        );
    }
    if req.strict && count > 0 {
        let lines: Vec<String> = first.iter().map(|u| u.line.to_string()).collect();
        return Err(Error::input(
            &req.input,
            format!(
                "{count} unparseable line(s) (line {}); --strict refuses them: fix the file or drop --strict to import the rest",
                lines.join(", ")
            ),
        )
        .into());
    }
    Ok(())
}

/// `failed` when nothing succeeded, `partial` when something failed or was unreadable.
fn status_of(success: u64, failure: u64, unparseable: u64) -> Status {
    if success == 0 {
        Status::Failed
    } else if failure > 0 || unparseable > 0 {
        Status::Partial
    } else {
        Status::Completed
    }
}

/// What a file is and holds, for the `test` block of its runs.
struct InputFacts<'a> {
    format: &'a str,
    num_requests: u64,
    sha256: &'a str,
    bytes: u64,
}

/// A run's metadata with the parts every import shares: identity and base id, config,
/// labels, GPU noted by hand, command line, the `test` block. `results` and `status` are
/// the caller's.
fn import_metadata(
    req: &AnalyzeRequest,
    requests: &Option<(String, String)>,
    facts: InputFacts<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Metadata {
    let input_name = req.input.display().to_string();
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
        facts.format,
        req.platform.clone(),
        req.model.clone(),
        now,
    );
    meta.test_id = ids::base_test_id(
        &req.platform,
        &req.model,
        facts.num_requests,
        &now.format("%Y-%m-%d").to_string(),
    );
    meta.gpu = gpu.map(Box::new);
    meta.config = req.config.clone();
    meta.test = TestInfo {
        num_requests: facts.num_requests,
        input_file: Some(
            requests
                .as_ref()
                .map_or_else(|| input_name.clone(), |(name, _)| name.clone()),
        ),
        output_file: String::new(),
        input_sha256: requests.as_ref().map(|(_, sha)| sha.clone()),
        raw_sha256: Some(facts.sha256.to_string()),
        raw_bytes: Some(facts.bytes),
        extra: if requests.is_some() {
            Map::from_iter([("results_file".to_string(), Value::String(input_name))])
        } else {
            Map::new()
        },
    };
    meta.labels = req.labels.clone();
    meta.source.command = req.command.clone();
    meta
}

/// Scan the input and build the run's metadata (nothing is written).
pub fn build_metadata(req: &AnalyzeRequest) -> Result<Metadata> {
    let requests = request_file(req)?;
    let mut agg = Aggregator::new();
    let scan = ingest::scan_file(&req.input, req.format, |r| agg.push(&r))?;
    let input_name = req.input.display().to_string();
    report_unparseable(req, scan.unparseable, &scan.first_unparseable)?;
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
    let status = status_of(agg.success_count(), agg.failure_count(), scan.unparseable);
    let mut results = agg.finish(total_time_s, scan.unparseable);
    results.skipped_lines = scan.skipped;
    if scan.invalid_counts > 0 {
        let lines: Vec<String> = scan
            .invalid_count_lines
            .iter()
            .map(u64::to_string)
            .collect();
        eprintln!(
            "warning: {input_name}: {} negative token count(s) or duration(s) read as unknown (line {}{}); the requests still count (kept in results.invalid_token_counts)",
            scan.invalid_counts,
            lines.join(", "),
            if scan.invalid_count_lines.len() < scan.invalid_counts as usize {
                ", ..."
            } else {
                ""
            },
        );
        results
            .extra
            .insert("invalid_token_counts".into(), scan.invalid_counts.into());
    }
    results.model_load_time_seconds = req.model_load_time_s;
    results.gpu_utilization_percent = req.gpu.utilization_percent;
    let facts = InputFacts {
        format: scan.format.name(),
        num_requests,
        sha256: &scan.sha256,
        bytes: scan.bytes,
    };
    let mut meta = import_metadata(req, &requests, facts, now);
    meta.results = results;
    meta.status = status;
    Ok(meta)
}

/// Import every run of a document read from `req.input` (see [`ingest::read_document`]):
/// the file is stored once in `raw/` (byte for byte, as [`store_import`] does) and each run
/// gets its own metadata pointing at that copy, in the document's order. All runs are
/// built before anything is written, so a document that cannot be used writes nothing.
pub fn analyze_document(
    store: &Store,
    req: &AnalyzeRequest,
    document: &Document,
) -> Result<Vec<Analyzed>> {
    let metas = document_metadata(req, document)?;
    let mut done: Vec<Analyzed> = Vec::with_capacity(metas.len());
    for mut meta in metas {
        let (metadata, metadata_path) = match done.first() {
            None => store_import(store, &req.input, meta)?,
            Some(first) => {
                meta.test.output_file = first.metadata.test.output_file.clone();
                let base = meta.test_id.clone();
                let path = store.publish_new(&base, &mut meta)?;
                (meta, path)
            }
        };
        done.push(Analyzed {
            metadata,
            metadata_path,
        });
    }
    Ok(done)
}

/// The metadata of every run of a document (nothing is written).
pub fn document_metadata(req: &AnalyzeRequest, document: &Document) -> Result<Vec<Metadata>> {
    let requests = request_file(req)?;
    let format = document.format.name();
    report_unparseable(req, document.unparseable, &document.first_unparseable)?;
    if document.runs.is_empty() {
        return Err(Error::input(
            &req.input,
            format!(
                "is a {format} file, but none of its runs could be read (see the warnings above)"
            ),
        )
        .into());
    }
    let input_name = req.input.display().to_string();
    let now = chrono::Utc::now();
    let mut metas = Vec::with_capacity(document.runs.len());
    for run in &document.runs {
        for w in &run.warnings {
            eprintln!("warning: {input_name} ({}): {w}", run.locator);
        }
        let load = &run.load;
        let mut agg = Aggregator::new().with_steady(SteadySpec::imported(
            load.max_concurrency,
            load.request_rate,
        ));
        if run.records.is_empty() {
            counted_requests(req, run, &mut agg)?;
        }
        for r in &run.records {
            agg.push(r);
        }
        let Some(total_time_s) = run.duration_s.or(req.total_time_s).or(agg.span_s()) else {
            return Err(Error::usage(format!(
                "--total-time is required: {input_name} ({}) records no duration for its run at {}",
                format, run.locator
            ))
            .into());
        };
        let facts = InputFacts {
            format,
            num_requests: agg.count(),
            sha256: &document.sha256,
            bytes: document.bytes,
        };
        let mut meta = import_metadata(req, &requests, facts, now);
        meta.status = status_of(agg.success_count(), agg.failure_count(), 0);
        let mut results = agg.finish(total_time_s, 0);
        if !run.records_have_tokens {
            tool_tokens(&mut results, &run.totals, total_time_s);
        }
        results.model_load_time_seconds = req.model_load_time_s;
        results.gpu_utilization_percent = req.gpu.utilization_percent;
        results
            .extra
            .insert("imported".into(), Value::Object(run.figures.clone()));
        meta.results = results;
        let extra = &mut meta.source.extra;
        extra.insert("tool".into(), document.tool.clone().into());
        extra.insert("tool_version".into(), document.tool_version.clone().into());
        extra.insert("locator".into(), run.locator.clone().into());
        extra.insert("tool_model".into(), run.model.clone().into());
        extra.insert("started".into(), run.started.clone().into());
        extra.insert("load".into(), run.load.to_json());
        if !run.notes.is_empty() {
            extra.insert("notes".into(), Value::Object(run.notes.clone()));
        }
        if document.unparseable > 0 {
            extra.insert("unparseable_lines".into(), document.unparseable.into());
        }
        metas.push(meta);
    }
    Ok(metas)
}

/// A run without per-request data: its requests as counted by the tool, without timings.
fn counted_requests(req: &AnalyzeRequest, run: &DocumentRun, agg: &mut Aggregator) -> Result<()> {
    let (Some(ok), failed) = (run.totals.completed, run.totals.failed.unwrap_or(0)) else {
        return Err(Error::input(
            &req.input,
            format!(
                "{}: the run has neither per-request data nor a request count",
                run.locator
            ),
        )
        .into());
    };
    for seq in 1..=ok {
        agg.push(&RequestRecord {
            seq,
            ok: true,
            ..Default::default()
        });
    }
    for seq in ok + 1..=ok + failed {
        agg.push(&RequestRecord::failed(
            seq,
            ErrorKind::Other,
            "failed (the file has no per-request data)",
        ));
    }
    Ok(())
}

/// Token figures from the tool's totals, for runs whose records carry no token counts.
fn tool_tokens(results: &mut Results, totals: &Totals, total_time_s: f64) {
    if totals.input_tokens.is_none() && totals.output_tokens.is_none() {
        return;
    }
    let (p, c) = (
        totals.input_tokens.unwrap_or(0),
        totals.output_tokens.unwrap_or(0),
    );
    let per_sec = |x: u64| {
        if total_time_s > 0.0 {
            x as f64 / total_time_s
        } else {
            0.0
        }
    };
    let avg = |x: u64| match results.success_count {
        0 => 0.0,
        n => x as f64 / n as f64,
    };
    results.total_prompt_tokens = p;
    results.total_completion_tokens = c;
    results.throughput_tokens_per_sec = round(per_sec(p + c), 2);
    results.output_tokens_per_sec = round(per_sec(c), 2);
    results.avg_prompt_tokens = round(avg(p), 2);
    results.avg_completion_tokens = round(avg(c), 2);
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
        let mut src =
            crate::userfile::open(input).with_context(|| format!("opening {}", input.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{"backend":"openai-chat","model_id":"m","duration":2.0,"completed":2,"failed":0,"total_input_tokens":20,"total_output_tokens":8,"request_throughput":1.0,"output_throughput":4.0,"mean_ttft_ms":10.0,"latencies":[0.5,0.7]}"#;

    fn request(input: &Path) -> AnalyzeRequest {
        AnalyzeRequest {
            platform: "p".into(),
            model: "m".into(),
            input: input.to_path_buf(),
            requests: None,
            format: None,
            config: Map::new(),
            labels: BTreeMap::new(),
            total_time_s: None,
            model_load_time_s: None,
            gpu: ManualGpu::default(),
            strict: false,
            source_kind: SourceKind::Analyze,
            command: None,
        }
    }

    #[test]
    fn a_document_that_cannot_be_used_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("runs.jsonl");
        // The second run has neither a duration nor per-request times.
        let second = RUN.replace(r#""duration":2.0,"#, r#""duration":null,"#);
        let second = second.replace(r#","latencies":[0.5,0.7]"#, "");
        std::fs::write(&input, format!("{RUN}\n{second}")).unwrap();
        let doc = ingest::read_document(&input).unwrap().unwrap();
        assert_eq!(doc.runs.len(), 2);
        let store = Store::new(dir.path().join("store"));
        let err = analyze_document(&store, &request(&input), &doc).unwrap_err();
        assert!(format!("{err:#}").contains("--total-time"), "{err:#}");
        assert!(!store.root().exists());
        // With --total-time both runs are stored, sharing one raw copy.
        let mut req = request(&input);
        req.total_time_s = Some(3.0);
        let done = analyze_document(&store, &req, &doc).unwrap();
        assert_eq!(done.len(), 2);
        let (a, b) = (&done[0].metadata, &done[1].metadata);
        assert_ne!(a.test_id, b.test_id);
        assert_eq!(a.test.output_file, b.test.output_file);
        assert_eq!(a.results.total_time_seconds, 2.0);
        assert_eq!(b.results.total_time_seconds, 3.0);
        assert_eq!(b.results.success_count, 2);
        assert_eq!(b.results.total_completion_tokens, 8);
        assert_eq!(std::fs::read_dir(store.raw_dir()).unwrap().count(), 1);
    }
}
