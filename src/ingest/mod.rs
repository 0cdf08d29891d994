//! Reading results files: format detection and one parser per source format.
//!
//! Every format becomes a stream of [`RequestRecord`]s; the file is streamed, never held
//! in memory whole, and its sha256 is computed in the same pass (on a second thread).
//!
//! Line rules, common to every format: lines end with `\n` (a trailing `\r` is JSON
//! whitespace and ignored); a UTF-8 BOM at the start of the file is ignored; blank lines
//! (spaces, tabs, `\r` only) are ignored and not counted. Every other line is exactly one
//! of: a record (sent to the sink), a skipped line (not a request: see [`Scan::skipped`]),
//! or an unparseable line (invalid JSON, a truncated last line, invalid UTF-8, NUL bytes,
//! a line over [`MAX_LINE_BYTES`], or JSON that is not a record of the format), counted
//! with its 1-based line number and reason. A record's `seq` is the 1-based line number
//! of the line it came from (benchkeep raw records keep their own `seq`).

mod batch;
mod benchkeep;
pub mod dataset;
mod detect;
mod document;
mod lenient;
mod line;
mod ollama;
mod openai;
mod reader;
mod vllm_offline;

use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::Result;

use crate::error::Error;
use crate::schema::RequestRecord;
use line::strip_bom;

pub use document::{
    Document, DocumentFormat, DocumentRun, Input, InputFormat, Load, MAX_DOCUMENT_BYTES,
    SweepPoint, Totals, aiperf_records, detect_input, genai_perf_records, llmperf_records,
    parse_document, parse_document_seen, read_document, read_document_as, read_document_capped,
};

/// Lines longer than this are unparseable and skipped without being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// How many unparseable lines are kept with their reasons in [`Scan::first_unparseable`].
pub const MAX_REPORTED_UNPARSEABLE: usize = 20;

/// A results file format benchkeep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI `chat.completion` / `text_completion` objects, one per line (the seed's format).
    OpenAi,
    /// OpenAI Batch output, as `vllm run-batch` writes it.
    OpenAiBatch,
    /// Ollama `/api/chat` or `/api/generate` final responses (`model_dump()` of the client).
    Ollama,
    /// vLLM offline `RequestOutput` dumps.
    VllmOffline,
    /// benchkeep's own raw records (`benchkeep run`).
    Benchkeep,
}

impl Format {
    /// Every format, in detection order.
    pub const ALL: [Format; 5] = [
        Format::Benchkeep,
        Format::OpenAiBatch,
        Format::OpenAi,
        Format::Ollama,
        Format::VllmOffline,
    ];

    /// The name used by `--format` and in metadata (`source.format`).
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::OpenAiBatch => "openai-batch",
            Format::Ollama => "ollama",
            Format::VllmOffline => "vllm-offline",
            Format::Benchkeep => "benchkeep",
        }
    }

    /// Parse a `--format` value.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Unparseable {
    /// 1-based line number.
    pub line: u64,
    pub reason: String,
}

/// What a scan of one file found.
#[derive(Debug, Clone)]
pub struct Scan {
    pub format: Format,
    /// Requests sent to the sink.
    pub records: u64,
    /// Non-blank lines that could not be used.
    pub unparseable: u64,
    /// The first [`MAX_REPORTED_UNPARSEABLE`] of them, with reasons.
    pub first_unparseable: Vec<Unparseable>,
    /// Valid lines that are not requests: Ollama `done: false` stream chunks (folded into
    /// the request their stream ends with) and `load`/`unload` responses. Every non-blank
    /// line is counted in exactly one of `records`, `unparseable` and `skipped`.
    pub skipped: u64,
    pub bytes: u64,
    /// Lowercase hex sha256 of the whole file.
    pub sha256: String,
    /// Negative token counts (or durations) in the records' lines: each was read as
    /// unknown, and the request still counts. Kept as `results.invalid_token_counts`.
    pub invalid_counts: u64,
    /// The 1-based numbers of the first [`MAX_REPORTED_UNPARSEABLE`] lines that held one.
    pub invalid_count_lines: Vec<u64>,
}

/// What one line turned out to be.
///
/// Returned by value and consumed at once; boxing the record would cost an allocation per
/// line on the hot path.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Record(RequestRecord),
    /// Held by a stateful parser until a later line (or the end) decides what it is.
    Pending,
    /// A valid line that is not a request.
    Skipped,
    Unparseable(String),
}

/// Scan a results file: detect its format (unless `forced`), send every request record to
/// `sink` in file order, and count what could not be used.
///
/// Errors (exit code 2): the file is missing, unreadable, a directory, empty (no non-blank
/// line) or in no known format, all found before the sink sees a record; or a read error
/// part-way through (the records sent so far must then be dropped, as `import` does).
pub fn scan_file(
    path: &Path,
    forced: Option<Format>,
    mut sink: impl FnMut(RequestRecord),
) -> Result<Scan> {
    let format = match forced {
        Some(f) => f,
        None => detect::detect(path, open_input(path)?)?,
    };
    let file = open_input(path)?;
    let mut lines = Lines::new(format);
    let summary = reader::for_each_line(file, MAX_LINE_BYTES, |n, line| {
        lines.line(n, line, &mut sink)
    })
    .map_err(|e| Error::input(path, format!("could not be read: {e}")))?;
    if let Some(r) = lines.parser.finish() {
        lines.records += 1;
        sink(r);
    }
    if lines.nonblank == 0 {
        return Err(empty_error(path).into());
    }
    Ok(Scan {
        format,
        records: lines.records,
        unparseable: lines.unparseable,
        first_unparseable: lines.first_unparseable,
        skipped: lines.skipped + lines.parser.folded_chunks(),
        bytes: summary.bytes,
        sha256: summary.sha256,
        invalid_counts: lines.invalid_counts,
        invalid_count_lines: lines.invalid_count_lines,
    })
}

pub(crate) fn empty_error(path: &Path) -> Error {
    Error::input(
        path,
        "is empty (no non-blank line): nothing to import; check that the benchmark wrote its results there",
    )
}

/// Why an input that is not a regular file is refused.
const NOT_REGULAR: &str = "is not a regular file (a pipe, FIFO, `<(...)` or device) and would be read more than once; save it to a file first, e.g. `cat results > results.jsonl`, and pass that file";

/// Refuse an input that is not a regular file (a FIFO, `<(cat f)`, a device): it is read
/// more than once (detect, scan, copy), and a stream gives its bytes only once. A missing
/// path or a directory is left to [`scan_file`]'s own errors.
pub fn check_regular_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => Err(Error::input(path, NOT_REGULAR).into()),
        _ => Ok(()),
    }
}

/// Open a results file, with errors that say what is wrong and what to do.
fn open_input(path: &Path) -> Result<File> {
    let file = crate::userfile::open(path).map_err(|e| {
        let message = match e.kind() {
            io::ErrorKind::NotFound => {
                "does not exist; check the path to the results file".to_string()
            }
            io::ErrorKind::PermissionDenied => {
                "cannot be read (permission denied); make it readable or copy it somewhere readable"
                    .to_string()
            }
            io::ErrorKind::InvalidInput if !path.is_dir() => NOT_REGULAR.to_string(),
            io::ErrorKind::InvalidInput => {
                "is a directory; give the results file (JSONL) inside it".to_string()
            }
            _ => format!("cannot be opened: {e}"),
        };
        Error::input(path, message)
    })?;
    let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
    if is_dir {
        return Err(Error::input(
            path,
            "is a directory; give the results file (JSONL) inside it",
        )
        .into());
    }
    check_regular_file(path)?;
    Ok(file)
}

/// The per-format parser.
enum Parser {
    OpenAi,
    Batch,
    Ollama(ollama::Parser),
    Offline,
    Benchkeep,
}

impl Parser {
    fn parse(&mut self, seq: u64, text: &str) -> Outcome {
        match self {
            Parser::OpenAi => openai::parse_line(seq, text),
            Parser::Batch => batch::parse_line(seq, text),
            Parser::Ollama(p) => p.parse_line(seq, text),
            Parser::Offline => vllm_offline::parse_line(seq, text),
            Parser::Benchkeep => benchkeep::parse_line(text),
        }
    }

    fn finish(&mut self) -> Option<RequestRecord> {
        match self {
            Parser::Ollama(p) => p.finish(),
            _ => None,
        }
    }

    fn folded_chunks(&self) -> u64 {
        match self {
            Parser::Ollama(p) => p.folded_chunks,
            _ => 0,
        }
    }
}

/// Counting state of one scan.
struct Lines {
    parser: Parser,
    nonblank: u64,
    records: u64,
    unparseable: u64,
    skipped: u64,
    first_unparseable: Vec<Unparseable>,
    invalid_counts: u64,
    invalid_count_lines: Vec<u64>,
}

impl Lines {
    fn new(format: Format) -> Self {
        Lines {
            parser: match format {
                Format::OpenAi => Parser::OpenAi,
                Format::OpenAiBatch => Parser::Batch,
                Format::Ollama => Parser::Ollama(ollama::Parser::default()),
                Format::VllmOffline => Parser::Offline,
                Format::Benchkeep => Parser::Benchkeep,
            },
            nonblank: 0,
            records: 0,
            unparseable: 0,
            skipped: 0,
            first_unparseable: Vec::new(),
            invalid_counts: 0,
            invalid_count_lines: Vec::new(),
        }
    }

    fn bad(&mut self, line: u64, reason: String) {
        self.unparseable += 1;
        if self.first_unparseable.len() < MAX_REPORTED_UNPARSEABLE {
            self.first_unparseable.push(Unparseable { line, reason });
        }
    }

    fn line(&mut self, n: u64, line: reader::Line<'_>, sink: &mut impl FnMut(RequestRecord)) {
        let bytes = match line {
            reader::Line::TooLong(len) => {
                self.nonblank += 1;
                self.bad(
                    n,
                    format!(
                        "line of {len} bytes is over the {} MiB limit; skipped",
                        MAX_LINE_BYTES >> 20
                    ),
                );
                return;
            }
            reader::Line::Text(b) if n == 1 => strip_bom(b),
            reader::Line::Text(b) => b,
        };
        let Some(first) = bytes
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        else {
            return;
        };
        self.nonblank += 1;
        if bytes[first] == 0 {
            self.bad(
                n,
                "NUL bytes (a zero-filled tail left by a crash or power loss?)".into(),
            );
            return;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                self.bad(
                    n,
                    format!(
                        "not valid UTF-8 (at byte {} of the line)",
                        e.valid_up_to() + 1
                    ),
                );
                return;
            }
        };
        if bytes[first] == b'[' {
            // A JSON array is no record of any format (serde would fill a struct from it
            // field by field).
            self.bad(
                n,
                format!(
                    "not a record: a line must be one JSON object; this is {}",
                    detect::describe_json(text)
                ),
            );
            return;
        }
        lenient::take_invalid();
        let outcome = self.parser.parse(n, text);
        let invalid = u64::from(lenient::take_invalid());
        match outcome {
            Outcome::Record(r) => {
                self.records += 1;
                if invalid > 0 {
                    self.invalid_counts += invalid;
                    if self.invalid_count_lines.len() < MAX_REPORTED_UNPARSEABLE {
                        self.invalid_count_lines.push(n);
                    }
                }
                sink(r);
            }
            Outcome::Pending => {}
            Outcome::Skipped => self.skipped += 1,
            Outcome::Unparseable(reason) => self.bad(n, reason),
        }
    }
}
