//! `benchkeep record -- COMMAND`: run an offline benchmark command (`vllm run-batch`, your
//! script), time it, keep its log, sample the GPUs, then import its results file exactly as
//! `analyze` does, with `source.kind = record` and the measured wall time.
//!
//! Nothing about a run is dropped (RELIABILITY.md P4): before the command starts, the run's
//! id is reserved and its metadata published with status `running` (with benchkeep's pid,
//! so that `verify` finds it if benchkeep is killed); the log and the GPU series are written
//! straight to `raw/<id>.log` and `raw/<id>.gpu.jsonl`. When the command has ended, the
//! results file is copied to `raw/<id>.jsonl` and the metadata is replaced, atomically, by
//! the final one. A command that fails, is killed or writes no results is still recorded
//! (status `failed` or `interrupted`, with its exit code or signal and the tail of its log).

pub mod argv;
pub mod child;
pub mod lines;
pub mod matrix;
pub mod oom;
mod save;
pub mod server;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use regex::bytes::Regex;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::ingest::Format;
use crate::schema::Metadata;
use crate::store::{Store, atomic, ids};
use crate::telemetry::{GpuMode, GpuSampler, VisibleDevices};

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
    /// The GPUs `CUDA_VISIBLE_DEVICES` leaves visible (read by the CLI).
    pub gpu_visible: VisibleDevices,
    pub gpu_interval: Duration,
    /// The environment the command runs in, as the CLI read it: to find the program on
    /// `PATH` and the secret values (`*_KEY`, `*_TOKEN`, ...) to cut from its output.
    pub env: Vec<(String, String)>,
    /// The command and its arguments (never stored or printed unredacted).
    pub command: Vec<String>,
    /// The matrix this run is a combination of (`record --matrix`), else `None`.
    pub sweep: Option<crate::schema::SweepLink>,
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

/// Non-blank lines of the command's request file: the number of requests it plans to send.
/// `None` when the file cannot be read.
fn count_requests(path: &Path) -> Option<u64> {
    // Never a FIFO: reading it would take the requests the command itself needs.
    let mut reader = BufReader::new(crate::userfile::open(path).ok()?);
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return Some(n);
        }
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            n += 1;
        }
    }
}

/// The count in the name of a results file the command writes straight into the store's
/// `raw/` as `<platform>-<model>-<N>-<date>.jsonl` (the seed's Step 3): the run then gets
/// that id.
fn count_in_raw_name(store: &Store, req: &RecordRequest, date: &str) -> Option<u64> {
    let raw = fs::canonicalize(store.raw_dir()).ok()?;
    if fs::canonicalize(atomic::dir_of(&req.output)).ok()? != raw {
        return None;
    }
    let stem = req.output.file_name()?.to_str()?.strip_suffix(".jsonl")?;
    let prefix = format!(
        "{}-{}-",
        ids::file_safe(&req.platform),
        ids::file_safe(&req.model)
    );
    stem.strip_prefix(&prefix)?
        .strip_suffix(&format!("-{date}"))?
        .parse()
        .ok()
}

/// The planned number of requests, for the test id: the non-blank lines of the request
/// file (`-i`/`--input-file`) when it can be read, else the count in a results file name
/// in `raw/`, else 0. `test.num_requests` later holds the actual count.
fn planned_requests(store: &Store, req: &RecordRequest, date: &str) -> u64 {
    req.input_file
        .as_deref()
        .and_then(|i| count_requests(Path::new(i)))
        .or_else(|| count_in_raw_name(store, req, date))
        .unwrap_or(0)
}

/// Run the command and record it. `Err` when nothing ran (bad store, command not found:
/// nothing is left in the store), or when the store could not be written: the error then
/// says what is left (`metadata/<id>.json` marked `running`, the log in `raw/<id>.log`).
pub fn record(store: &Store, req: RecordRequest) -> Result<Recorded> {
    store.ensure_layout()?;
    let before = Stamp::of(&req.output);
    if before.is_some()
        && let Some(rel) = crate::analyze::already_in_raw(store, &req.output)
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
    child::check_program(&req.command, &req.env)?;
    let mut secrets = argv::secret_values(&req.command);
    secrets.extend(argv::env_secret_values(&req.env));
    let redactor = lines::Redactor::new(secrets);
    let load = lines::LoadDetector::new(req.load_pattern.clone());

    // Caught before the run is published: a Ctrl-C from now on is forwarded (or held until
    // the command starts), and the run is recorded as `interrupted`.
    let signals = child::SignalGuard::install().map_err(|e| {
        anyhow::Error::new(e).context("cannot install the signal handlers that forward Ctrl-C")
    })?;
    let started_at = chrono::Utc::now();
    let planned = planned_requests(store, &req, &started_at.format("%Y-%m-%d").to_string());
    let (started, log) = save::start(store, &req, started_at, planned)?;
    let sampler = GpuSampler::start(
        req.gpu,
        req.gpu_visible.clone(),
        req.gpu_interval,
        Some(started.gpu_path.clone()),
    );
    let note_pid = |pid| save::note_command_pid(store, &started, pid);
    let finished = match child::run(
        &req.command,
        &req.env,
        log,
        redactor.clone(),
        load,
        &signals,
        note_pid,
    ) {
        Ok(f) => f,
        Err(e) => {
            drop(sampler.finish());
            if matches!(e.downcast_ref::<Error>(), Some(Error::Usage(_))) {
                // The command could not be started: nothing ran, nothing is kept.
                save::withdraw(&started);
            } else {
                save::abandon(store, &started, &format!("{e:#}"));
            }
            return Err(e);
        }
    };
    let gpu = sampler.finish();
    let result = save::save(
        store,
        &req,
        save::Run {
            started,
            finished,
            gpu,
            output_before: before.is_some(),
            output_unchanged: before.is_some() && before == Stamp::of(&req.output),
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

    #[test]
    fn planned_requests_come_from_the_request_file_or_the_raw_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"));
        store.ensure_layout().unwrap();
        let input = dir.path().join("in.jsonl");
        fs::write(&input, "{\"a\":1}\n\n  \n{\"a\":2}\r\n{\"a\":3}").unwrap();
        assert_eq!(count_requests(&input), Some(3));
        assert_eq!(count_requests(&dir.path().join("nope")), None);
        let mut req = RecordRequest {
            platform: "vllm-offline".into(),
            model: "gemma3-4b".into(),
            output: store
                .raw_dir()
                .join("vllm-offline-gemma3-4b-5000-2024-10-28.jsonl"),
            input_file: None,
            format: None,
            config: Map::new(),
            labels: BTreeMap::new(),
            load_pattern: None,
            model_load_time_s: None,
            gpu: GpuMode::Off,
            gpu_visible: VisibleDevices::default(),
            gpu_interval: Duration::from_millis(500),
            env: Vec::new(),
            command: vec!["true".into()],
            sweep: None,
        };
        assert_eq!(planned_requests(&store, &req, "2024-10-28"), 5000);
        assert_eq!(planned_requests(&store, &req, "2024-10-29"), 0);
        req.input_file = Some(input.display().to_string());
        assert_eq!(planned_requests(&store, &req, "2024-10-28"), 3);
        req.input_file = Some("missing.jsonl".into());
        req.output = dir.path().join("out.jsonl");
        assert_eq!(planned_requests(&store, &req, "2024-10-28"), 0);
    }
}
