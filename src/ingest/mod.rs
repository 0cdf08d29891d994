//! Reading results files: format detection and one parser per source format.
//!
//! Every format becomes a stream of [`RequestRecord`]s; the file is streamed, never held
//! in memory whole, and its sha256 is computed in the same pass.

use std::path::Path;

use anyhow::Result;

use crate::schema::RequestRecord;

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
    pub records: u64,
    pub unparseable: u64,
    pub first_unparseable: Vec<Unparseable>,
    pub bytes: u64,
    pub sha256: String,
}

pub fn scan_file(
    _path: &Path,
    _forced: Option<Format>,
    _sink: impl FnMut(RequestRecord),
) -> Result<Scan> {
    anyhow::bail!("not yet")
}
