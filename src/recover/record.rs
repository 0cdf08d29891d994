//! Recovering a `record` run cut off by kill -9: import what the command wrote.
//!
//! A record run's raw files are the command's log (`raw/<id>.log`), never scanned or cut,
//! and its results file (`test.results_file`), imported as `analyze` would when it exists.
//! The run keeps its id, start time, input and command; it becomes `interrupted`.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::Recovered;
use crate::analyze::{self, AnalyzeRequest, ManualGpu};
use crate::ingest::Format;
use crate::schema::{Metadata, SourceKind};
use crate::store::{Store, atomic, nofollow, store_io};

/// Finish a `running` record run whose process is gone (the caller checked that).
pub(super) fn recover_record(store: &Store, running: Metadata) -> Result<Recovered> {
    let lock = store.lock()?;
    let id = running.test_id.clone();
    let log_rel = format!("raw/{id}.log");
    let log = store.resolve(&log_rel);
    let results: Option<PathBuf> = running
        .test
        .extra
        .get("results_file")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let started = chrono::DateTime::parse_from_rfc3339(&running.timestamp).ok();
    let last_write = [results.as_deref(), Some(log.as_path())]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max();
    // Approximate: from the start to the last write of the results file or the log.
    let total_time_s = match (started, last_write) {
        (Some(s), Some(w)) => {
            let w: chrono::DateTime<chrono::Utc> = w.into();
            ((w - s.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0).max(1e-3)
        }
        _ => 1e-3,
    };

    let mut imported: Option<Metadata> = None;
    let mut output_state = "missing";
    if let Some(path) = &results {
        let req = AnalyzeRequest {
            platform: running.platform.clone(),
            model: running.model.clone(),
            input: path.clone(),
            requests: None,
            format: Format::from_name(&running.source.format),
            config: running.config.clone(),
            labels: running.labels.clone(),
            total_time_s: Some(total_time_s),
            model_load_time_s: None,
            gpu: ManualGpu::default(),
            strict: false,
            source_kind: SourceKind::Record,
            command: running.source.command.clone(),
        };
        match analyze::build_metadata(&req) {
            Ok(m) => {
                imported = Some(m);
                output_state = "imported";
            }
            Err(e) => {
                eprintln!("warning: run {id}: the results file could not be read: {e:#}");
                output_state = "unreadable";
            }
        }
    }

    let mut meta = running.clone();
    if let Some(m) = imported {
        meta.results = m.results;
        meta.test.num_requests = m.test.num_requests;
        meta.source.format = m.source.format;
    }
    meta.results.total_time_seconds = crate::metrics::round(total_time_s, 3);
    // The results go into raw/<id>.jsonl (unless the command wrote them there).
    let raw_path = match (&results, output_state) {
        (Some(path), "imported" | "unreadable") => {
            if let Some(rel) = analyze::already_in_raw(store, path) {
                meta.test.output_file = rel;
                store.resolve(&meta.test.output_file)
            } else {
                let target = store.resolve(&format!("raw/{id}.jsonl"));
                let (tmp, _, _) = analyze::copy_to_temp(
                    store,
                    path,
                    None,
                    "the results file changed while it was copied",
                )?;
                let linked = atomic::link_exclusive(&tmp, &target);
                let _ = std::fs::remove_file(&tmp);
                linked.map_err(|e| store_io(&target, "create", e))?;
                atomic::sync_dir(&store.raw_dir())
                    .map_err(|e| store_io(&store.raw_dir(), "sync", e))?;
                meta.test.output_file = format!("raw/{id}.jsonl");
                target
            }
        }
        _ => {
            meta.test.output_file = log_rel.clone();
            meta.test.num_requests = 0;
            log.clone()
        }
    };
    let (sha, bytes) =
        nofollow::sha256_regular(&raw_path).map_err(|e| store_io(&raw_path, "read", e))?;
    meta.test.raw_sha256 = Some(sha);
    meta.test.raw_bytes = Some(bytes);
    if let Some(Value::Object(block)) = meta.extra.get_mut("command") {
        block.insert("output".into(), json!(output_state));
        block.insert("log_file".into(), json!(log_rel));
        if let Ok(md) = std::fs::symlink_metadata(&log) {
            block.insert("log_bytes".into(), json!(md.len()));
        }
        block.insert("recovered".into(), json!(true));
        block.remove("pid");
    }
    let mut note = Map::new();
    note.insert("records".into(), json!(meta.test.num_requests));
    note.insert(
        "total_time".into(),
        json!("approximate: start to the last write of the results file or log"),
    );
    super::finish(store, &mut meta, note, lock)?;
    Ok(Recovered {
        metadata_path: store.metadata_path(&id),
        raw_path,
        metadata: meta,
        torn: None,
        corrupt: Vec::new(),
    })
}
