//! The run's files in the store. Before the command: reserve the test id, publish the
//! `running` metadata and create `raw/<id>.log`. After it: analyze its results file as
//! `analyze` does, build the final metadata (with the `command` block and the GPU summary),
//! copy the results to `raw/<id>.jsonl`, and replace the metadata atomically.

use std::fs::{self, File, OpenOptions};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::child::{self, Finished};
use super::lines::Redactor;
use super::{RecordRequest, Recorded};
use crate::analyze::{self, AnalyzeRequest, ManualGpu};
use crate::error::{Error, exit};
use crate::schema::{Metadata, Results, SourceKind, Status, TestInfo};
use crate::store::{Store, atomic, ids, store_io, to_json};
use crate::telemetry::GpuSummary;

/// What became of the command's results file.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputState {
    /// Analyzed and stored in `raw/`.
    Analyzed,
    /// The command left no file there.
    Missing,
    /// The file there was not rewritten by the command (it is from before the run).
    Unchanged,
    /// It exists but could not be read as results; stored as it is, with the reason.
    Unreadable(String),
}

impl OutputState {
    fn name(&self) -> &'static str {
        match self {
            OutputState::Analyzed => "imported",
            OutputState::Missing => "missing",
            OutputState::Unchanged => "unchanged",
            OutputState::Unreadable(_) => "unreadable",
        }
    }
}

/// A run published as `running`, before its command starts.
#[derive(Debug)]
pub(super) struct Started {
    /// The metadata as published.
    pub meta: Metadata,
    pub metadata_path: PathBuf,
    /// `raw/<id>.log`, created empty.
    pub log_path: PathBuf,
    /// `raw/<id>.gpu.jsonl`, for the sampler to create.
    pub gpu_path: PathBuf,
}

impl Started {
    fn id(&self) -> &str {
        &self.meta.test_id
    }
}

/// Everything the run produced, handed over to be saved.
pub(super) struct Run {
    pub started: Started,
    pub finished: Finished,
    pub gpu: Option<GpuSummary>,
    pub output_before: bool,
    pub output_unchanged: bool,
    pub redactor: Redactor,
}

/// `path` from the root, without resolving links (the file may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The metadata of a run whose command is about to start: status `running`, this
/// process's pid, the planned number of requests, the redacted command line, the request
/// file, the results file the command will write (`test.results_file`, absolute) and the
/// log (`test.output_file`, the run's only raw file so far).
fn running_metadata(req: &RecordRequest, started_at: DateTime<Utc>, planned: u64) -> Metadata {
    let mut test_extra = Map::new();
    test_extra.insert(
        "results_file".into(),
        json!(absolute(&req.output).display().to_string()),
    );
    let mut block = Map::new();
    block.insert(
        "output_file".into(),
        json!(req.output.display().to_string()),
    );
    let mut extra = Map::new();
    extra.insert("command".into(), Value::Object(block));
    let mut meta = Metadata::new(
        SourceKind::Record,
        req.format.map(|f| f.name()).unwrap_or("none"),
        req.platform.clone(),
        req.model.clone(),
        started_at,
    );
    meta.config = req.config.clone();
    meta.test = TestInfo {
        num_requests: planned,
        input_file: req.input_file.clone(),
        output_file: String::new(),
        // The request file the command reads: runs on the same requests compare head
        // to head.
        input_sha256: req.input_file.as_deref().and_then(|input| {
            crate::digest::sha256_file(Path::new(input))
                .ok()
                .map(|(sha, _)| sha)
        }),
        raw_sha256: None,
        raw_bytes: None,
        extra: test_extra,
    };
    meta.labels = req.labels.clone();
    meta.sweep = req.sweep.clone().map(Box::new);
    meta.source.command = Some(crate::redact::command_line(&req.command));
    meta.pid = Some(std::process::id());
    meta.process = Some(Box::new(crate::store::process::this()));
    meta.extra = extra;
    meta
}

/// Before the command starts: reserve a fresh id (`base`, `base-2`, ...) whose metadata,
/// results, log and series names are all free, publish the `running` metadata under it
/// (exclusively: two processes never get one id), and create its log `raw/<id>.log`.
/// `base` keeps the planned number of requests.
pub(super) fn start(
    store: &Store,
    req: &RecordRequest,
    started_at: DateTime<Utc>,
    planned: u64,
) -> Result<(Started, File)> {
    let mut meta = running_metadata(req, started_at, planned);
    let base = ids::base_test_id(
        &req.platform,
        &req.model,
        planned,
        &started_at.format("%Y-%m-%d").to_string(),
    );
    let raw = store.raw_dir();
    for n in 1..=100_000u32 {
        let id = ids::candidate(&base, n);
        // Checked before the id is reserved: a reserved id is never given back.
        let taken = [".jsonl", ".log", ".gpu.jsonl"]
            .iter()
            .any(|ext| fs::symlink_metadata(raw.join(format!("{id}{ext}"))).is_ok());
        if taken {
            continue;
        }
        meta.test_id = id.clone();
        meta.test.output_file = format!("raw/{id}.log");
        if let Some(Value::Object(block)) = meta.extra.get_mut("command") {
            block.insert("log_file".into(), json!(format!("raw/{id}.log")));
        }
        let path = store.metadata_path(&id);
        match atomic::publish_new(&path, &to_json(&meta)?) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(store_io(&path, "write", e)),
        }
        let started = Started {
            meta,
            metadata_path: path,
            log_path: raw.join(format!("{id}.log")),
            gpu_path: raw.join(format!("{id}.gpu.jsonl")),
        };
        let log = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&started.log_path)
            .and_then(|f| atomic::sync_dir(&raw).map(|()| f));
        return match log {
            Ok(f) => Ok((started, f)),
            Err(e) => {
                let err = store_io(&started.log_path, "create", e);
                abandon(store, &started, &format!("{err:#}"));
                Err(err)
            }
        };
    }
    Err(Error::StoreIo(format!(
        "no free test id for {base} in {}",
        store.root().display()
    ))
    .into())
}

/// The command runs: add its pid to the `running` metadata (`command.pid`), so that whoever
/// finishes the run after benchkeep died can tell whether the command is still writing its
/// results. Best effort: the run goes on without it.
pub(super) fn note_command_pid(store: &Store, started: &Started, pid: u32) {
    let mut meta = started.meta.clone();
    if let Some(Value::Object(block)) = meta.extra.get_mut("command") {
        block.insert("pid".into(), json!(pid));
        // Its start time too: a reused pid must not look like the command (P12).
        if let Some(t) = crate::store::process::start_time(pid) {
            block.insert("pid_start_time".into(), json!(t));
        }
    }
    if let Err(e) = store.replace(&meta) {
        eprintln!("benchkeep: warning: cannot note the command's pid in the run's metadata: {e:#}");
    }
}

/// The command could not be started: remove what [`start`] made (nothing ran, nothing
/// refers to it).
pub(super) fn withdraw(started: &Started) {
    for path in [&started.gpu_path, &started.log_path, &started.metadata_path] {
        let _ = fs::remove_file(path);
    }
    for path in [&started.log_path, &started.metadata_path] {
        let _ = atomic::sync_dir(atomic::dir_of(path));
    }
}

/// benchkeep could not go on after [`start`]: mark the run `failed` with the reason rather
/// than leave it `running` (best effort; the caller reports the error).
pub(super) fn abandon(store: &Store, started: &Started, reason: &str) {
    let mut meta = started.meta.clone();
    meta.status = Status::Failed;
    meta.pid = None;
    meta.process = None;
    if let Some(Value::Object(block)) = meta.extra.get_mut("command") {
        block.insert("error".into(), json!(reason));
    }
    let _ = store.replace(&meta);
}

/// After the command: the final metadata, under the id reserved by [`start`]. The results
/// copy `raw/<id>.jsonl` is written first, then the metadata is replaced atomically; when
/// either fails, the run stays `running` (its log in place) and the error says so.
pub(super) fn save(store: &Store, req: &RecordRequest, run: Run) -> Result<Recorded> {
    let f = &run.finished;
    let started = &run.started;
    let id = started.id().to_string();
    let total_time_s = f.elapsed.as_secs_f64().max(1e-3);
    let command_line = started.meta.source.command.clone();
    let output_name = req.output.display().to_string();

    let (analyzed, output) = if !req.output.exists() {
        (None, OutputState::Missing)
    } else if run.output_unchanged {
        (None, OutputState::Unchanged)
    } else {
        let import_req = AnalyzeRequest {
            platform: req.platform.clone(),
            model: req.model.clone(),
            input: req.output.clone(),
            requests: None,
            format: req.format,
            config: req.config.clone(),
            labels: req.labels.clone(),
            total_time_s: Some(total_time_s),
            model_load_time_s: None,
            gpu: ManualGpu::default(),
            strict: false,
            source_kind: SourceKind::Record,
            command: command_line.clone(),
        };
        match analyze::build_metadata(&import_req) {
            Ok(m) => (Some(m), OutputState::Analyzed),
            Err(e) => (
                None,
                OutputState::Unreadable(run.redactor.apply_str(&format!("{e:#}"))),
            ),
        }
    };
    // No usable results: the running metadata, with zero counts and the wall time.
    let mut meta = analyzed.unwrap_or_else(|| {
        let mut m = started.meta.clone();
        m.test.num_requests = 0;
        m.results = Results {
            total_time_seconds: crate::metrics::round(total_time_s, 3),
            ..Default::default()
        };
        m.status = Status::Failed;
        m
    });

    // Fields that are the same whatever the output was. The id keeps the planned number of
    // requests; `test.num_requests` is the actual count.
    meta.test_id = id.clone();
    meta.timestamp = started.meta.timestamp.clone();
    if let Some(input) = &req.input_file {
        meta.test.input_file = Some(input.clone());
        meta.test.input_sha256 = started.meta.test.input_sha256.clone();
    }
    meta.source.kind = SourceKind::Record;
    meta.source.command = command_line;
    meta.sweep = req.sweep.clone().map(Box::new);
    meta.pid = None;
    meta.process = None;
    let detected = f.load.as_ref().map(|h| h.seconds);
    meta.results.model_load_time_seconds = req.model_load_time_s.or(detected);

    let received = f.received_signal;
    let command_ok = f.status.success() && received.is_none();
    meta.status = if received.is_some() {
        Status::Interrupted
    } else if !f.status.success() || output != OutputState::Analyzed {
        Status::Failed
    } else {
        meta.status
    };
    let exit_code = if !f.status.success() {
        child::shell_code(&f.status)
    } else if let Some(sig) = received {
        128 + sig
    } else if output != OutputState::Analyzed || meta.status == Status::Failed {
        exit::FAILURE
    } else {
        exit::OK
    };

    let mut block = Map::new();
    block.insert("exit_code".into(), json!(f.status.code()));
    block.insert("signal".into(), json!(f.status.signal()));
    if let Some(sig) = f.status.signal() {
        block.insert("signal_name".into(), json!(child::signal_name(sig)));
    }
    if let Some(sig) = received {
        block.insert("interrupted_by".into(), json!(child::signal_name(sig)));
    }
    block.insert("output_file".into(), json!(output_name));
    block.insert("output".into(), json!(output.name()));
    if let OutputState::Unreadable(reason) = &output {
        block.insert("output_error".into(), json!(reason));
    }
    if run.output_before {
        block.insert("output_existed_before".into(), json!(true));
    }
    if let Some(hit) = &f.load {
        block.insert("load_line".into(), json!(hit.line));
    }
    block.insert(
        "load_time_source".into(),
        json!(match (req.model_load_time_s, &f.load, &req.load_pattern) {
            (Some(_), _, _) => Some("flag"),
            (None, Some(_), Some(_)) => Some("pattern"),
            (None, Some(_), None) => Some("vllm-log"),
            (None, None, _) => None,
        }),
    );
    block.insert("log_file".into(), json!(format!("raw/{id}.log")));
    block.insert("log_bytes".into(), json!(f.log_bytes));
    if let Some(e) = &f.log_error {
        block.insert("log_error".into(), json!(e));
    }
    if f.log_cut_after_exit {
        block.insert("log_cut_after_exit".into(), json!(true));
    }
    if f.log_cut_bytes > 0 {
        block.insert("log_cut_bytes".into(), json!(f.log_cut_bytes));
    }
    if !command_ok || output != OutputState::Analyzed {
        block.insert("log_tail".into(), json!(f.tail));
    }
    // A failed command whose log says it ran out of memory: error kind `oom`, and the line.
    if meta.status == Status::Failed
        && let Some(line) = super::oom::scan_log(&started.log_path)
    {
        *meta
            .results
            .errors_by_kind
            .entry(crate::schema::ErrorKind::Oom.as_str().to_string())
            .or_default() += 1;
        block.insert("failure_kind".into(), json!("oom"));
        block.insert("failure_reason".into(), json!(line));
    }
    meta.extra.insert("command".into(), Value::Object(block));

    // The results: used in place when the command wrote them into raw/ itself, else
    // copied byte for byte to raw/<id>.jsonl (never replacing a file).
    let in_raw = match output {
        OutputState::Analyzed | OutputState::Unreadable(_) => {
            crate::analyze::already_in_raw(store, &req.output)
        }
        _ => None,
    };
    let raw = store.raw_dir();
    let mut copied = false;
    if matches!(output, OutputState::Analyzed | OutputState::Unreadable(_))
        && in_raw.is_none()
        && req.output.is_file()
    {
        let expected = match output {
            OutputState::Analyzed => meta.test.raw_sha256.clone(),
            _ => None,
        };
        let (tmp, sha, bytes) = crate::analyze::copy_to_temp(
            store,
            &req.output,
            expected.as_deref(),
            "the file changed after the command ended (is something still writing it?); import it later with `benchkeep analyze`",
        )
        .with_context(|| still_running(started, req))?;
        let target = raw.join(format!("{id}.jsonl"));
        let linked = atomic::link_exclusive(&tmp, &target).and_then(|()| atomic::sync_dir(&raw));
        let _ = fs::remove_file(&tmp);
        linked.map_err(|e| store_io(&target, "create", e).context(still_running(started, req)))?;
        meta.test.raw_sha256 = Some(sha);
        meta.test.raw_bytes = Some(bytes);
        copied = true;
    }
    meta.test.output_file = match (&in_raw, copied) {
        (Some(rel), _) => rel.clone(),
        (None, true) => Store::raw_rel(&id),
        // No usable results: the log is the run's only raw material.
        (None, false) => format!("raw/{id}.log"),
    };
    let series = run.gpu.is_some() && started.gpu_path.exists();
    if let Some(gpu) = &run.gpu {
        let series_rel = format!("raw/{id}.gpu.jsonl");
        gpu.apply_to(&mut meta, series.then_some(series_rel.as_str()));
    } else if fs::metadata(&started.gpu_path).is_ok_and(|m| m.len() == 0) {
        // Created by the sampler, never written: nothing to keep.
        let _ = fs::remove_file(&started.gpu_path);
    }

    store
        .replace(&meta)
        .map_err(|e| e.context(still_running(started, req)))?;
    Ok(Recorded {
        metadata: meta,
        metadata_path: started.metadata_path.clone(),
        output,
        exit_code,
    })
}

/// What is left when saving the end of a run failed.
fn still_running(started: &Started, req: &RecordRequest) -> String {
    let mut s = format!(
        "the command has ended, but its run could not be finished: {} still says `running`; the command's log is in {}",
        started.metadata_path.display(),
        started.log_path.display()
    );
    if started.gpu_path.exists() {
        s.push_str(&format!(
            " and its GPU series in {}",
            started.gpu_path.display()
        ));
    }
    if req.output.exists() {
        s.push_str(&format!(
            "; its results file {} is untouched",
            req.output.display()
        ));
    }
    s
}
