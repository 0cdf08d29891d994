//! After the command: analyze its results file as `analyze` does, build the metadata (with
//! the `command` block and the GPU summary), reserve the test id, and give the results copy,
//! the log and the GPU series their final names in `raw/`.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::child::{self, Finished};
use super::lines::Redactor;
use super::{RecordRequest, Recorded};
use crate::error::{Error, exit};
use crate::import::{self, ImportRequest, ManualGpu};
use crate::schema::{
    HostInfo, Metadata, Results, SCHEMA_VERSION, SourceInfo, SourceKind, Status, TestInfo, ToolInfo,
};
use crate::store::{Store, atomic, ids, store_io, to_json};
use crate::telemetry::GpuSummary;

/// What became of the command's results file.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputState {
    /// Analyzed and stored in `raw/`.
    Imported,
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
            OutputState::Imported => "imported",
            OutputState::Missing => "missing",
            OutputState::Unchanged => "unchanged",
            OutputState::Unreadable(_) => "unreadable",
        }
    }
}

/// Everything the run produced, handed over to be saved.
pub(super) struct Run {
    pub started_at: DateTime<Utc>,
    pub finished: Finished,
    pub gpu: Option<GpuSummary>,
    pub output_before: bool,
    pub output_unchanged: bool,
    pub log_tmp: PathBuf,
    pub gpu_tmp: PathBuf,
    pub redactor: Redactor,
}

pub(super) fn save(store: &Store, req: &RecordRequest, run: Run) -> Result<Recorded> {
    let f = &run.finished;
    let total_time_s = f.elapsed.as_secs_f64().max(1e-3);
    let command_line = crate::redact::command_line(&req.command);
    let output_name = req.output.display().to_string();

    let (analyzed, output) = if !req.output.exists() {
        (None, OutputState::Missing)
    } else if run.output_unchanged {
        (None, OutputState::Unchanged)
    } else {
        let import_req = ImportRequest {
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
            command: Some(command_line.clone()),
        };
        match import::build_metadata(&import_req) {
            Ok(m) => (Some(m), OutputState::Imported),
            Err(e) => (
                None,
                OutputState::Unreadable(run.redactor.apply_str(&format!("{e:#}"))),
            ),
        }
    };
    let mut meta = analyzed.unwrap_or_else(|| empty_metadata(req, total_time_s));

    // Fields that are the same whatever the output was.
    meta.timestamp = run.started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let base = ids::base_test_id(
        &req.platform,
        &req.model,
        meta.test.num_requests,
        &run.started_at.format("%Y-%m-%d").to_string(),
    );
    if let Some(input) = &req.input_file {
        meta.test.input_file = Some(input.clone());
        // The request file the command read: runs on the same requests compare head to head.
        meta.test.input_sha256 = crate::store::verify::sha256_file(std::path::Path::new(input))
            .ok()
            .map(|(sha, _)| sha);
    }
    meta.source.kind = SourceKind::Record;
    meta.source.command = Some(command_line);
    let detected = f.load.as_ref().map(|h| h.seconds);
    meta.results.model_load_time_seconds = req.model_load_time_s.or(detected);

    let received = f.received_signal;
    let command_ok = f.status.success() && received.is_none();
    meta.status = if received.is_some() {
        Status::Interrupted
    } else if !f.status.success() || output != OutputState::Imported {
        Status::Failed
    } else {
        meta.status
    };
    let exit_code = if !f.status.success() {
        child::shell_code(&f.status)
    } else if let Some(sig) = received {
        128 + sig
    } else if output != OutputState::Imported || meta.status == Status::Failed {
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
    block.insert("log_bytes".into(), json!(f.log_bytes));
    if let Some(e) = &f.log_error {
        block.insert("log_error".into(), json!(e));
    }
    if f.log_cut_after_exit {
        block.insert("log_cut_after_exit".into(), json!(true));
    }
    if !command_ok || output != OutputState::Imported {
        block.insert("log_tail".into(), json!(f.tail));
    }
    meta.extra.insert("command".into(), Value::Object(block));

    let in_raw = match output {
        OutputState::Imported | OutputState::Unreadable(_) => {
            crate::import::already_in_raw(store, &req.output)
        }
        _ => None,
    };
    let results_tmp = match (&output, &in_raw) {
        (OutputState::Imported | OutputState::Unreadable(_), None) if req.output.is_file() => {
            let expected = match output {
                OutputState::Imported => meta.test.raw_sha256.clone(),
                _ => None,
            };
            let (tmp, sha, bytes) = crate::import::copy_to_temp(
                store,
                &req.output,
                expected.as_deref(),
                "the file changed after the command ended (is something still writing it?); import it later with `benchkeep analyze`",
            )
                .with_context(|| keep_note(&run))?;
            meta.test.raw_sha256 = Some(sha);
            meta.test.raw_bytes = Some(bytes);
            Some(tmp)
        }
        _ => None,
    };
    let series = run.gpu.is_some() && run.gpu_tmp.exists();

    let published = publish(store, &base, in_raw.as_deref(), &mut meta, |meta, id| {
        meta.test.output_file = match (&in_raw, &results_tmp) {
            (Some(rel), _) => rel.clone(),
            (None, Some(_)) => Store::raw_rel(id),
            (None, None) => format!("raw/{id}.log"),
        };
        if let Some(Value::Object(block)) = meta.extra.get_mut("command") {
            block.insert("log_file".into(), json!(format!("raw/{id}.log")));
        }
        if let Some(gpu) = &run.gpu {
            let series_rel = format!("raw/{id}.gpu.jsonl");
            gpu.apply_to(meta, series.then_some(series_rel.as_str()));
        }
    });
    let metadata_path = match published {
        Ok(p) => p,
        Err(e) => {
            if let Some(tmp) = &results_tmp {
                let _ = fs::remove_file(tmp);
            }
            return Err(e.context(keep_note(&run)));
        }
    };

    let id = meta.test_id.clone();
    let raw = store.raw_dir();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(tmp) = &results_tmp {
        links.push((tmp.clone(), store.resolve(&meta.test.output_file)));
    }
    links.push((run.log_tmp.clone(), raw.join(format!("{id}.log"))));
    if series {
        links.push((run.gpu_tmp.clone(), raw.join(format!("{id}.gpu.jsonl"))));
    }
    for (tmp, target) in &links {
        if let Err(e) = atomic::link_exclusive(tmp, target) {
            return Err(store_io(target, "create", e).context(format!(
                "metadata {} was saved but {} could not be; {} (`benchkeep verify` reports it)",
                metadata_path.display(),
                target.display(),
                keep_note(&run)
            )));
        }
    }
    atomic::sync_dir(&raw).map_err(|e| store_io(&raw, "sync", e))?;
    for (tmp, _) in &links {
        let _ = fs::remove_file(tmp);
    }
    let _ = fs::remove_file(&run.gpu_tmp);
    let derived_error = store.regenerate_derived().err();
    Ok(Recorded {
        metadata: meta,
        metadata_path,
        output,
        exit_code,
        derived_error,
    })
}

/// What to tell the user when saving failed: where the log and the series still are.
fn keep_note(run: &Run) -> String {
    let mut s = format!("the command's log is kept at {}", run.log_tmp.display());
    if run.gpu_tmp.exists() {
        s.push_str(&format!(" and its GPU series at {}", run.gpu_tmp.display()));
    }
    s
}

/// Metadata for a run with no usable results: counts are zero, the wall time is kept.
fn empty_metadata(req: &RecordRequest, total_time_s: f64) -> Metadata {
    Metadata {
        schema_version: SCHEMA_VERSION,
        test_id: String::new(),
        timestamp: String::new(),
        platform: req.platform.clone(),
        model: req.model.clone(),
        gpu: None,
        config: req.config.clone(),
        test: TestInfo {
            num_requests: 0,
            input_file: Some(req.output.display().to_string()),
            output_file: String::new(),
            ..Default::default()
        },
        results: Results {
            total_time_seconds: crate::metrics::round(total_time_s, 3),
            ..Default::default()
        },
        status: Status::Failed,
        tool: ToolInfo::this(),
        host: HostInfo::this(),
        labels: req.labels.clone(),
        source: SourceInfo {
            kind: SourceKind::Record,
            format: req.format.map(|f| f.name()).unwrap_or("none").to_string(),
            command: None,
            extra: Map::new(),
        },
        server: None,
        pid: None,
        extra: Map::new(),
    }
}

/// Reserve a fresh id (`base`, `base-2`, ...) whose metadata, results, log and series names
/// are all free, and publish the metadata under it. `fill` sets the id-dependent fields.
/// `own_raw` is the results file when the command wrote it into `raw/` itself: its name
/// does not take an id away (the seed writes `raw/<the id>.jsonl` directly).
fn publish(
    store: &Store,
    base: &str,
    own_raw: Option<&str>,
    meta: &mut Metadata,
    mut fill: impl FnMut(&mut Metadata, &str),
) -> Result<PathBuf> {
    let raw = store.raw_dir();
    for n in 1..=100_000u32 {
        let id = ids::candidate(base, n);
        let taken = [".jsonl", ".log", ".gpu.jsonl"].iter().any(|ext| {
            let rel = format!("raw/{id}{ext}");
            own_raw != Some(rel.as_str()) && raw.join(format!("{id}{ext}")).exists()
        });
        if taken {
            continue;
        }
        meta.test_id = id.clone();
        fill(meta, &id);
        let path = store.metadata_path(&id);
        match atomic::publish_new(&path, &to_json(meta)?) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(store_io(&path, "write", e)),
        }
    }
    Err(Error::StoreIo(format!(
        "no free test id for {base} in {}",
        store.root().display()
    ))
    .into())
}
