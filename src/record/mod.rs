//! `benchkeep record -- COMMAND`: run an offline benchmark command (`vllm run-batch`, your
//! script), time it, keep its log, sample the GPUs, then import its results file exactly as
//! `analyze` does, with `source.kind = record` and the measured wall time.
//!
//! Nothing about a run is dropped: a command that fails, is killed or writes no results is
//! still recorded (status `failed` or `interrupted`, with its exit code or signal and the
//! tail of its log). During the run the log and the GPU series are written to temp names in
//! `raw/`; once the test id is reserved they take their final names `raw/<id>.log` and
//! `raw/<id>.gpu.jsonl` by hard link, never replacing a file.

pub mod argv;
pub mod child;
pub mod lines;
mod save;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use regex::bytes::Regex;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::ingest::Format;
use crate::schema::Metadata;
use crate::store::{Store, atomic, ids, store_io};
use crate::telemetry::{GpuMode, GpuSampler};

pub use save::OutputState;

/// A validated `record` request (the CLI builds it; nothing below sees clap).
#[derive(Debug, Clone)]
pub struct RecordRequest {
    pub platform: String,
    pub model: String,
    /// The results file the command writes.
    pub output: PathBuf,
    /// The command's request file (`-i`), for `test.input_file`.
    pub input_file: Option<String>,
    pub format: Option<Format>,
    pub config: Map<String, Value>,
    pub labels: BTreeMap<String, String>,
    /// `--load-pattern`; `None`: vLLM's own lines.
    pub load_pattern: Option<Regex>,
    /// `--model-load-time`: overrides the detected time.
    pub model_load_time_s: Option<f64>,
    pub gpu: GpuMode,
    pub gpu_interval: Duration,
    /// The command and its arguments (never stored or printed unredacted).
    pub command: Vec<String>,
}

/// A recorded run.
#[derive(Debug)]
pub struct Recorded {
    pub metadata: Metadata,
    pub metadata_path: PathBuf,
    /// What became of the command's results file.
    pub output: OutputState,
    /// The exit code `record` should end with: the command's own (128 + signal when a
    /// signal ended it), else 1 when no result was usable, else 0.
    pub exit_code: i32,
    /// Set when the run was saved but summary/COMPARISON.md could not be rebuilt.
    pub derived_error: Option<anyhow::Error>,
}

/// Size, mtime and inode of a file: to tell whether the command wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    ino: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path).ok()?;
        Some(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            ino: m.ino(),
        })
    }
}

/// Temp files in `raw/` for the log and the GPU series, named after the run so that a
/// leftover (benchkeep killed with -9) is recognizable; `verify` lists them.
fn temp_names(store: &Store, req: &RecordRequest) -> (PathBuf, PathBuf) {
    let stem = format!(
        "record-{}-{}",
        ids::file_safe(&req.platform),
        ids::file_safe(&req.model)
    );
    let raw = store.raw_dir();
    (
        atomic::temp_path_for(&raw.join(format!("{stem}.log"))),
        atomic::temp_path_for(&raw.join(format!("{stem}.gpu.jsonl"))),
    )
}

/// Run the command and record it. `Err` only when nothing ran (bad store, command not
/// found) or the store could not be written; in the latter case the error names the temp
/// files that still hold the log and the GPU series.
pub fn record(store: &Store, req: RecordRequest) -> Result<Recorded> {
    store.ensure_layout()?;
    let before = Stamp::of(&req.output);
    if before.is_some()
        && let Some(rel) = crate::import::already_in_raw(store, &req.output)
    {
        return Err(Error::usage(format!(
            "the results file {} is {rel} in the store, the raw data of a recorded run: the command would overwrite it; write the results to a new file",
            req.output.display()
        ))
        .into());
    }
    if before.is_some() {
        eprintln!(
            "benchkeep: note: {} already exists; it is recorded only if the command rewrites it",
            req.output.display()
        );
    }
    let (log_tmp, gpu_tmp) = temp_names(store, &req);
    let log = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&log_tmp)
        .map_err(|e| store_io(&log_tmp, "create", e))?;
    let mut secrets = argv::secret_values(&req.command);
    secrets.extend(argv::env_secret_values());
    let redactor = lines::Redactor::new(secrets);
    let load = lines::LoadDetector::new(req.load_pattern.clone());

    let signals = child::SignalGuard::install().map_err(|e| {
        anyhow::Error::new(e).context("cannot install the signal handlers that forward Ctrl-C")
    });
    let signals = match signals {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&log_tmp);
            return Err(e);
        }
    };
    let started_at = chrono::Utc::now();
    let sampler = GpuSampler::start(req.gpu, req.gpu_interval, Some(gpu_tmp.clone()));
    let finished = match child::run(&req.command, log, redactor.clone(), load, &signals) {
        Ok(f) => f,
        Err(e) => {
            drop(sampler.finish());
            let _ = fs::remove_file(&log_tmp);
            let _ = fs::remove_file(&gpu_tmp);
            return Err(e);
        }
    };
    let gpu = sampler.finish();
    let result = save::save(
        store,
        &req,
        save::Run {
            started_at,
            finished,
            gpu,
            output_before: before.is_some(),
            output_unchanged: before.is_some() && before == Stamp::of(&req.output),
            log_tmp: log_tmp.clone(),
            gpu_tmp: gpu_tmp.clone(),
            redactor,
        },
    );
    drop(signals);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_tell_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        assert_eq!(Stamp::of(&p), None);
        fs::write(&p, "a\n").unwrap();
        let a = Stamp::of(&p).unwrap();
        assert_eq!(Stamp::of(&p), Some(a));
        fs::write(&p, "ab\n").unwrap();
        assert_ne!(Stamp::of(&p), Some(a));
    }
}
