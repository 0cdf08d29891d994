//! Whole-document formats, beside the line readers: one file that holds one or several
//! benchmark runs of another tool (summary figures, and sometimes per-request arrays).
//!
//! A line reader turns one file into one run, a line at a time. A document reader reads the
//! file whole (at most [`MAX_DOCUMENT_BYTES`]), as one JSON object or as JSON Lines of
//! objects, and turns each object into one or more [`DocumentRun`]s. Formats are told apart
//! by content ([`DocumentFormat::claims`]), never by file name: the first object decides,
//! and later objects the format does not claim are unparseable.
//!
//! Memory: the file's bytes (at most the cap) plus one parsed object at a time, plus the
//! runs read so far.

mod aiperf;
mod common;
mod genai_perf;
mod guidellm;
mod guidellm_text;
mod inference_benchmarker;
mod llmperf;
mod vllm_offline;
mod vllm_serve;

pub use aiperf::records_from_jsonl as aiperf_records;
pub use genai_perf::records_from_raw as genai_perf_records;
pub use llmperf::records_from_responses as llmperf_records;

use std::io::Read;
use std::path::Path;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::ingest::line::{is_blank, json_reason, strip_bom};
use crate::ingest::{Format, MAX_REPORTED_UNPARSEABLE, Unparseable, detect, open_input};
use crate::schema::RequestRecord;

/// Files larger than this are refused by the document readers (they are read whole).
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// A whole-document format benchkeep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// `vllm bench serve --save-result` (with or without `--save-detailed`), and
    /// `--append-result` files (one run per line).
    VllmBenchServe,
    /// `vllm bench throughput --output-json`: one offline run, no per-request data.
    VllmBenchThroughput,
    /// `vllm bench latency --output-json`: batch iteration latencies of one offline run.
    VllmBenchLatency,
    /// GuideLLM `benchmarks.json` (report `metadata.version` 2): one run per benchmark.
    Guidellm,
    /// AIPerf `profile_export_aiperf.json` (per-request records from `profile_export.jsonl`).
    Aiperf,
    /// genai-perf `profile_export_genai_perf.json` (the summary).
    GenaiPerf,
    /// genai-perf / perf_analyzer `profile_export.json` (per-request timestamps, one run
    /// per experiment).
    GenaiPerfRaw,
    /// huggingface inference-benchmarker result JSON: one run per `results[]` entry.
    InferenceBenchmarker,
    /// llmperf `*_summary.json` (per-request data from `*_individual_responses.json`).
    Llmperf,
}

impl DocumentFormat {
    /// Every document format, in the order they are asked to claim a file.
    pub const ALL: [DocumentFormat; 9] = [
        DocumentFormat::VllmBenchServe,
        DocumentFormat::VllmBenchThroughput,
        DocumentFormat::VllmBenchLatency,
        DocumentFormat::Guidellm,
        DocumentFormat::Aiperf,
        DocumentFormat::GenaiPerf,
        DocumentFormat::GenaiPerfRaw,
        DocumentFormat::InferenceBenchmarker,
        DocumentFormat::Llmperf,
    ];

    /// The name used by `--format` and in metadata (`source.format`).
    pub fn name(self) -> &'static str {
        match self {
            DocumentFormat::VllmBenchServe => "vllm-bench-serve",
            DocumentFormat::VllmBenchThroughput => "vllm-bench-throughput",
            DocumentFormat::VllmBenchLatency => "vllm-bench-latency",
            DocumentFormat::Guidellm => "guidellm",
            DocumentFormat::Aiperf => "aiperf",
            DocumentFormat::GenaiPerf => "genai-perf",
            DocumentFormat::GenaiPerfRaw => "genai-perf-raw",
            DocumentFormat::InferenceBenchmarker => "inference-benchmarker",
            DocumentFormat::Llmperf => "llmperf",
        }
    }

    /// Parse a `--format` value.
    pub fn from_name(name: &str) -> Option<DocumentFormat> {
        DocumentFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The tool that writes this format, as people call it.
    pub fn tool(self) -> &'static str {
        match self {
            DocumentFormat::VllmBenchServe => "vllm bench serve",
            DocumentFormat::VllmBenchThroughput => "vllm bench throughput",
            DocumentFormat::VllmBenchLatency => "vllm bench latency",
            DocumentFormat::Guidellm => "guidellm",
            DocumentFormat::Aiperf => "aiperf",
            DocumentFormat::GenaiPerf | DocumentFormat::GenaiPerfRaw => "genai-perf",
            DocumentFormat::InferenceBenchmarker => "inference-benchmarker",
            DocumentFormat::Llmperf => "llmperf",
        }
    }

    /// Whether one top-level JSON value of a file is in this format (content only).
    pub fn claims(self, value: &Value) -> bool {
        match self {
            DocumentFormat::VllmBenchServe => vllm_serve::claims(value),
            DocumentFormat::VllmBenchThroughput => vllm_offline::claims_throughput(value),
            DocumentFormat::VllmBenchLatency => vllm_offline::claims_latency(value),
            DocumentFormat::Guidellm => guidellm::claims(value),
            DocumentFormat::Aiperf => aiperf::claims(value),
            DocumentFormat::GenaiPerf => genai_perf::claims(value),
            DocumentFormat::GenaiPerfRaw => genai_perf::claims_raw(value),
            DocumentFormat::InferenceBenchmarker => inference_benchmarker::claims(value),
            DocumentFormat::Llmperf => llmperf::claims(value),
        }
    }

    /// The tool's version, when the object records it.
    pub fn tool_version(self, value: &Value) -> Option<String> {
        let at = |ptr: &str| common::text(value.pointer(ptr));
        match self {
            DocumentFormat::VllmBenchServe => vllm_serve::tool_version(value),
            DocumentFormat::VllmBenchThroughput | DocumentFormat::VllmBenchLatency => None,
            DocumentFormat::Guidellm => at("/metadata/guidellm_version"),
            DocumentFormat::Aiperf => at("/aiperf_version"),
            DocumentFormat::GenaiPerf => at("/version"),
            DocumentFormat::GenaiPerfRaw => at("/version"),
            DocumentFormat::InferenceBenchmarker => at("/version"),
            DocumentFormat::Llmperf => at("/version"),
        }
    }

    /// The runs in one claimed object. `locator` says where the object is in the file
    /// (`line 2`); the runs' own locators refine it when an object holds several. An error
    /// is the reason the object cannot be used.
    pub fn read(self, value: Value, locator: &str) -> Result<Vec<DocumentRun>, String> {
        match self {
            DocumentFormat::VllmBenchServe => vllm_serve::read(value, locator),
            DocumentFormat::VllmBenchThroughput => vllm_offline::read_throughput(value, locator),
            DocumentFormat::VllmBenchLatency => vllm_offline::read_latency(value, locator),
            DocumentFormat::Guidellm => guidellm::read(value, locator),
            DocumentFormat::Aiperf => aiperf::read(value, locator),
            DocumentFormat::GenaiPerf => genai_perf::read(value, locator),
            DocumentFormat::GenaiPerfRaw => genai_perf::read_raw(value, locator),
            DocumentFormat::InferenceBenchmarker => inference_benchmarker::read(value, locator),
            DocumentFormat::Llmperf => llmperf::read(value, locator),
        }
    }
}

/// The load a run was measured under, as the tool set it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Load {
    /// Most requests in flight at once (`--max-concurrency`), when limited.
    pub max_concurrency: Option<u64>,
    /// Requests per second; `f64::INFINITY` when unlimited (`"inf"`).
    pub request_rate: Option<f64>,
    /// Burstiness of arrivals (1.0 is Poisson), when the tool records it.
    pub burstiness: Option<f64>,
}

impl Load {
    /// As JSON, with an unlimited rate written `"inf"` (JSON has no infinity).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(c) = self.max_concurrency {
            m.insert("max_concurrency".into(), c.into());
        }
        if let Some(r) = self.request_rate {
            let v = if r.is_finite() {
                r.into()
            } else {
                "inf".into()
            };
            m.insert("request_rate".into(), v);
        }
        if let Some(b) = self.burstiness {
            m.insert("burstiness".into(), b.into());
        }
        Value::Object(m)
    }
}

/// The tool's own request totals, when it wrote them (used when per-request data is
/// missing or carries no token counts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub completed: Option<u64>,
    pub failed: Option<u64>,
    /// Prompt tokens of successful requests.
    pub input_tokens: Option<u64>,
    /// Output tokens of successful requests.
    pub output_tokens: Option<u64>,
}

/// One benchmark run found in a document.
#[derive(Debug, Clone, Default)]
pub struct DocumentRun {
    /// Where the run is in the file: `line 2`, `whole file`, `line 1: benchmarks[3]`.
    pub locator: String,
    /// One record per request, in the tool's order, when the file has per-request data
    /// (empty when it has none).
    pub records: Vec<RequestRecord>,
    /// Whether `records` carry token counts (else the tool's [`Totals`] are the tokens).
    pub records_have_tokens: bool,
    /// The tool's wall time of the measured run, in seconds.
    pub duration_s: Option<f64>,
    /// When the run started, as the tool wrote it (vLLM: local `YYYYMMDD-HHMMSS`, no zone).
    pub started: Option<String>,
    /// The model as the tool named it.
    pub model: Option<String>,
    pub load: Load,
    pub totals: Totals,
    /// The tool's own summary figures under their own names (their definitions can differ
    /// from benchkeep's).
    pub figures: Map<String, Value>,
    /// Other scalar values the tool wrote about the run (backend, label, user metadata,
    /// sweep overrides), under their own names.
    pub notes: Map<String, Value>,
    /// Things a reader noticed that do not stop the import.
    pub warnings: Vec<String>,
    /// What each figure in `figures` means where that differs from benchkeep's figure of a
    /// similar name (or where the unit is not in the name): figure name -> note.
    pub definitions: Map<String, Value>,
    /// Latency summaries from the tool's own figures, only where the tool's definition is
    /// benchkeep's and every statistic is there; used when there are no per-request records.
    pub latency: Option<crate::schema::Latencies>,
    /// The point of a sweep this run is, when the file says so.
    pub sweep: Option<SweepPoint>,
    /// The input identity the tool recorded (dataset and parameters, synthetic lengths and
    /// seed), as the tool wrote it; `kind` is `synthetic` or `dataset`.
    pub workload: Map<String, Value>,
    /// A warm-up step the tool ran before measuring (inference-benchmarker's `warmup`).
    pub warmup: bool,
}

/// Where a run sits in a sweep recorded by its tool.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// What the tool calls the sweep (GuideLLM's `run_id`, AIPerf's `sweep_id`); the importer
    /// makes it unique per source when the tool names none.
    pub group: Option<String>,
    /// `concurrency` or `rate`.
    pub axis: &'static str,
    pub value: f64,
    /// `point`, `synchronous` or `throughput`.
    pub role: &'static str,
}

/// A file read whole by a document format.
#[derive(Debug, Clone)]
pub struct Document {
    pub format: DocumentFormat,
    /// The tool that wrote it (`vllm bench serve`).
    pub tool: String,
    pub tool_version: Option<String>,
    pub runs: Vec<DocumentRun>,
    /// Lines (or the whole file) that could not be used, with reasons; counted in
    /// `unparseable`, the first [`MAX_REPORTED_UNPARSEABLE`] kept.
    pub unparseable: u64,
    pub first_unparseable: Vec<Unparseable>,
    pub bytes: u64,
    /// Lowercase hex sha256 of the whole file.
    pub sha256: String,
}

/// A format named with `--format`: a line format or a document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Lines(Format),
    Document(DocumentFormat),
}

impl InputFormat {
    /// Every `--format` name: the line formats, then the document formats.
    pub fn names() -> Vec<&'static str> {
        let lines = Format::ALL.into_iter().map(Format::name);
        lines
            .chain(DocumentFormat::ALL.into_iter().map(DocumentFormat::name))
            .collect()
    }

    pub fn from_name(name: &str) -> Option<InputFormat> {
        Format::from_name(name)
            .map(InputFormat::Lines)
            .or_else(|| DocumentFormat::from_name(name).map(InputFormat::Document))
    }
}

/// What an input file turned out to be.
#[derive(Debug)]
pub enum Input {
    /// A line format: scan it with [`crate::ingest::scan_file`].
    Lines(Format),
    /// A document, already read.
    Document(Document),
}

/// Decide how to read `path`: a forced format, else the line detection, else (when no line
/// format fits) the document formats. When none claims the file the line detection's error
/// stands (exit code 2), unless the file is too large to be read as a document.
pub fn detect_input(path: &Path, forced: Option<InputFormat>) -> Result<Input> {
    match forced {
        Some(InputFormat::Lines(f)) => Ok(Input::Lines(f)),
        Some(InputFormat::Document(f)) => match read_document_as(path, Some(f))? {
            Some(doc) => Ok(Input::Document(doc)),
            None => Err(Error::input(
                path,
                format!(
                    "is not a {} file (no object in it looks like one); check the file, or drop --format to detect it",
                    f.name()
                ),
            )
            .into()),
        },
        None => {
            let line_error = match detect::detect(path, open_input(path)?) {
                Ok(f) => return Ok(Input::Lines(f)),
                Err(e) => e,
            };
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if len > MAX_DOCUMENT_BYTES {
                return Err(too_large(path, len).into());
            }
            match read_document(path) {
                Ok(Some(doc)) => Ok(Input::Document(doc)),
                _ => Err(line_error),
            }
        }
    }
}

/// Read `path` whole as a document: `None` when no document format claims it.
pub fn read_document(path: &Path) -> Result<Option<Document>> {
    read_document_as(path, None)
}

/// [`read_document`] with the format given (`None`: ask each format in turn).
pub fn read_document_as(path: &Path, format: Option<DocumentFormat>) -> Result<Option<Document>> {
    read_document_capped(path, format, MAX_DOCUMENT_BYTES)
}

fn too_large(path: &Path, len: u64) -> Error {
    Error::input(
        path,
        format!(
            "is {:.1} MiB, over the {} MiB limit for whole-document formats (JSON files of other tools, read whole); \
             split it (one run per line of JSON Lines) or import its runs separately",
            len as f64 / (1u64 << 20) as f64,
            MAX_DOCUMENT_BYTES >> 20
        ),
    )
}

/// [`read_document_as`] with the size limit given (tests use a small one).
pub fn read_document_capped(
    path: &Path,
    format: Option<DocumentFormat>,
    cap: u64,
) -> Result<Option<Document>> {
    let file = open_input(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        return Err(too_large(path, len).into());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input(path, format!("could not be read: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(too_large(path, bytes.len() as u64).into());
    }
    Ok(parse_document(&bytes, format))
}

/// Read a document from its bytes: one JSON value, or JSON Lines.
pub fn parse_document(bytes: &[u8], format: Option<DocumentFormat>) -> Option<Document> {
    let sha = crate::digest::sha256_hex(bytes);
    parse_document_seen(bytes, format, sha, &mut |_| {}).0
}

/// [`parse_document`] for a caller that also needs every JSON value of the file (`import`
/// scans them for secrets), so the file is parsed once: `look` sees each top-level value
/// (the whole file's, or each line's) before its reader takes it. The flag is true when
/// `look` saw all of the file (false for YAML and CSV reports and for lines that are not
/// JSON). `sha256` is the file's, already computed.
pub fn parse_document_seen(
    bytes: &[u8],
    format: Option<DocumentFormat>,
    sha256: String,
    look: &mut dyn FnMut(&Value),
) -> (Option<Document>, bool) {
    let mut doc = Reading::new(format);
    let mut all_seen = true;
    let body = strip_bom(bytes);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if items.first().is_some_and(Value::is_object) => {
            // A JSON array of runs (a `vllm bench sweep` summary.json).
            for (i, item) in items.into_iter().enumerate() {
                look(&item);
                doc.object(item, &format!("[{i}]"), 1);
                if doc.format.is_none() {
                    return (None, false); // the first object decided: no document format
                }
            }
        }
        Ok(value) => {
            look(&value);
            let one_line = body.split(|b| *b == b'\n').filter(|l| !is_blank(l)).count() <= 1;
            doc.object(value, if one_line { "line 1" } else { "whole file" }, 1);
        }
        Err(_) => {
            if let Some((value, kind)) = guidellm_text(body) {
                all_seen = false;
                doc.object(value, "whole file", 1);
                if doc.format != Some(DocumentFormat::Guidellm) {
                    return (None, false);
                }
                for run in &mut doc.runs {
                    run.notes.insert("report_file_format".into(), kind.into());
                    if kind == "csv" {
                        run.warnings.push(
                            "GuideLLM CSV report: summary statistics only (no per-request data, no percentiles)".into(),
                        );
                    }
                }
            } else {
                for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                    if is_blank(line) {
                        continue;
                    }
                    let n = i as u64 + 1;
                    match serde_json::from_slice::<Value>(line) {
                        Ok(value) => {
                            look(&value);
                            doc.object(value, &format!("line {n}"), n)
                        }
                        Err(e) => {
                            all_seen = false;
                            doc.bad(n, json_reason(&e, "JSON"))
                        }
                    }
                    if doc.format.is_none() && doc.seen_object {
                        return (None, false); // the first object decided: no document format
                    }
                }
            }
        }
    }
    let Some(format) = doc.format else {
        return (None, false);
    };
    let document = Document {
        format,
        tool: format.tool().to_string(),
        tool_version: doc.version,
        runs: doc.runs,
        unparseable: doc.unparseable,
        first_unparseable: doc.first_unparseable,
        bytes: bytes.len() as u64,
        sha256,
    };
    (Some(document), all_seen)
}

/// GuideLLM's YAML or CSV report, as the value its JSON report would be, and which it was.
fn guidellm_text(body: &[u8]) -> Option<(Value, &'static str)> {
    if let Some(v) = guidellm_text::csv(body) {
        return Some((v, "csv"));
    }
    let v = guidellm_text::yaml(body)?;
    guidellm::claims(&v).then_some((v, "yaml"))
}

/// The state of one document being read.
struct Reading {
    format: Option<DocumentFormat>,
    forced: bool,
    seen_object: bool,
    version: Option<String>,
    runs: Vec<DocumentRun>,
    unparseable: u64,
    first_unparseable: Vec<Unparseable>,
}

impl Reading {
    fn new(format: Option<DocumentFormat>) -> Self {
        Reading {
            format,
            forced: format.is_some(),
            seen_object: false,
            version: None,
            runs: Vec::new(),
            unparseable: 0,
            first_unparseable: Vec::new(),
        }
    }

    fn bad(&mut self, line: u64, reason: String) {
        self.unparseable += 1;
        if self.first_unparseable.len() < MAX_REPORTED_UNPARSEABLE {
            self.first_unparseable.push(Unparseable { line, reason });
        }
    }

    fn object(&mut self, value: Value, locator: &str, line: u64) {
        if !value.is_object() {
            self.bad(line, "not a JSON object".into());
            return;
        }
        let first = !self.seen_object;
        self.seen_object = true;
        if first && !self.forced {
            self.format = DocumentFormat::ALL.into_iter().find(|f| f.claims(&value));
        }
        let Some(format) = self.format else { return };
        if !format.claims(&value) {
            if first {
                // A forced format that does not fit the first object: not this format.
                self.format = None;
            } else {
                self.bad(line, format!("not a {} object", format.name()));
            }
            return;
        }
        if self.version.is_none() {
            self.version = format.tool_version(&value);
        }
        match format.read(value, locator) {
            Ok(runs) => self.runs.extend(runs),
            Err(reason) => self.bad(line, reason),
        }
    }
}

#[cfg(test)]
mod tests;
