//! The import's own metadata keys, and the names of the copies in `raw/`.
//!
//! Keys: `source.sha256` (the source file as it was), `source.stored_sha256` (the copy in
//! `raw/`, which differs only when secrets were removed), `source.redacted` (JSON pointers,
//! never values), `source.definitions` (what the tool's figures mean where that differs
//! from benchkeep's), `source.recomputed` (where benchkeep's figures come from),
//! `source.warmup`, `test.workload` (the input identity the tool recorded) with
//! `test.input_sha256` the hash of it, so runs of different tools on one workload pair;
//! `sweep` for the points of a sweep; `timestamp` the run's own time, with
//! `source.imported_at`, `source.timestamp_from` and `source.file_runs` (how many runs the
//! file gave, so a file whose runs are all in the store is skipped unread).

use std::path::Path;

use chrono::FixedOffset;
use serde_json::{Map, Value};

use super::when;
use crate::ingest::{Document, DocumentFormat, DocumentRun};
use crate::schema::{Metadata, SweepLink};
use crate::store::ids;

/// The source file's hash and its stored copy's.
pub struct Copy<'a> {
    pub sha: &'a str,
    pub stored_sha: &'a str,
    pub redacted: &'a [String],
    pub stored_bytes: u64,
    /// The copy's store-relative name ([`raw_rel`]).
    pub rel: &'a str,
}

/// The hash that names a workload identity for pairing: the identity without its seed
/// (tools generate different prompts from the same seed, and lengths are what is shared).
pub fn workload_sha(identity: &Map<String, Value>) -> String {
    let mut m = identity.clone();
    m.remove("seed");
    let canon: std::collections::BTreeMap<_, _> = m.into_iter().collect();
    crate::digest::sha256_hex(format!(
        "benchkeep-import-workload\n{}",
        serde_json::to_string(&canon).unwrap_or_default()
    ))
}

/// The sweep a run belongs to: what the tool calls it, else the file (or a `vllm bench
/// sweep` experiment folder).
fn sweep_link(
    meta: &Metadata,
    run: &DocumentRun,
    path: &Path,
    index: usize,
    format: DocumentFormat,
) -> Option<SweepLink> {
    let mut point = run.sweep.clone();
    let mut group = point.as_ref().and_then(|p| p.group.clone());
    if format == DocumentFormat::VllmBenchServe && run.notes.contains_key("run_number") {
        let combo = path.parent()?;
        let (axis, value) = super::sides::vllm_combo(combo).or_else(|| {
            match (run.load.max_concurrency, run.load.request_rate) {
                (Some(c), _) => Some(("concurrency", c as f64)),
                (None, Some(r)) if r.is_finite() => Some(("rate", r)),
                _ => None,
            }
        })?;
        point = Some(crate::ingest::SweepPoint {
            group: None,
            axis,
            value,
            role: "point",
        });
        let experiment = combo.parent().unwrap_or(combo);
        group = Some(format!(
            "vllm-sweep:{}",
            experiment
                .canonicalize()
                .unwrap_or(experiment.into())
                .display()
        ));
    }
    let p = point?;
    let group = group.unwrap_or_else(|| format!("file:{}", path.display()));
    // The import's date, not the runs' own (the points of one sweep may straddle midnight,
    // and a `vllm bench sweep` folder's files are read one at a time).
    let date = meta
        .source
        .extra
        .get("imported_at")
        .and_then(Value::as_str)
        .unwrap_or(&meta.timestamp)
        .get(..10)
        .unwrap_or("");
    let id = format!(
        "sweep-{}-{}-{}-{}",
        ids::file_safe(&meta.platform),
        ids::file_safe(&meta.model),
        date,
        &crate::digest::sha256_hex(&group)[..8]
    );
    let index = run
        .notes
        .get("run_number")
        .and_then(Value::as_u64)
        .map_or(index, |n| n as usize);
    Some(SweepLink {
        id,
        index: index as u32,
        axis: p.axis.into(),
        value: p.value,
        role: p.role.into(),
        ..Default::default()
    })
}

/// Add the import's keys to the metadata of each run of `doc` (in the document's order),
/// and give each run its own time ([`when`]); times without a zone are read in `local`.
pub fn finish(
    metas: Vec<Metadata>,
    doc: &Document,
    path: &Path,
    copy: &Copy<'_>,
    local: Option<FixedOffset>,
) -> Vec<Metadata> {
    let file_runs = metas.len();
    let mut out = Vec::with_capacity(metas.len());
    for (i, (mut m, run)) in metas.into_iter().zip(&doc.runs).enumerate() {
        let extra = &mut m.source.extra;
        // The run's own time as `timestamp`; the import time is kept beside it.
        extra.insert("imported_at".into(), m.timestamp.clone().into());
        let from = match when::own_time(run.started.as_deref(), path, local) {
            Some((t, from)) => {
                m.timestamp = t;
                from
            }
            None => when::Origin::ImportTime,
        };
        extra.insert("timestamp_from".into(), from.name().into());
        extra.insert("file_runs".into(), file_runs.into());
        extra.insert("sha256".into(), copy.sha.into());
        extra.insert("stored_sha256".into(), copy.stored_sha.into());
        if !copy.redacted.is_empty() {
            extra.insert("redacted".into(), copy.redacted.to_vec().into());
        }
        if !run.definitions.is_empty() {
            extra.insert("definitions".into(), Value::Object(run.definitions.clone()));
        }
        let recomputed = if !run.records.is_empty() {
            format!("from the file's {} per-request records", run.records.len())
        } else if run.latency.is_some() {
            "counts and tokens from the tool's totals; latency summaries from the tool's statistics of the same definition".into()
        } else {
            "counts and tokens from the tool's totals (the file has no per-request data)".into()
        };
        extra.insert("recomputed".into(), recomputed.into());
        if run.warmup {
            extra.insert("warmup".into(), true.into());
        }
        m.source.format = doc.format.name().into();
        m.test.output_file = copy.rel.into();
        m.test.raw_sha256 = Some(copy.stored_sha.into());
        m.test.raw_bytes = Some(copy.stored_bytes);
        if run.records.is_empty()
            && let Some(lat) = &run.latency
        {
            m.results.latency_ms = Some(Box::new(lat.clone()));
        }
        if doc.format == DocumentFormat::VllmBenchThroughput
            && let Some(t) = run.figures.get("tokens_per_second").and_then(Value::as_f64)
        {
            m.results.throughput_tokens_per_sec = crate::schema::round(t, 2);
            // The file counts prompt and output tokens together: output tok/s is unknown,
            // not 0 (a 0 would read as a measurement and enter the head-to-head's ratios).
            for figure in crate::schema::UNKNOWABLE {
                m.results.mark_unknown(figure);
            }
        }
        if !run.workload.is_empty() {
            m.test
                .extra
                .insert("workload".into(), Value::Object(run.workload.clone()));
            m.test.input_sha256 = Some(workload_sha(&run.workload));
        }
        m.sweep = if run.warmup {
            None
        } else {
            sweep_link(&m, run, path, i, doc.format).map(Box::new)
        };
        out.push(m);
    }
    out
}

/// The store-relative name of the (redacted) copy of an imported file: named by its
/// content (`raw/import-<16 hex of its sha256>.<ext>`), so the name is known before any run
/// is written, and an import cut short and run again finds its copy already there.
pub fn raw_rel(stored_sha: &str, source: &Path) -> String {
    let ext = source
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| ["json", "jsonl", "yaml", "yml", "csv"].contains(&e.as_str()))
        .unwrap_or_else(|| "json".into());
    format!("raw/import-{}.{ext}", &stored_sha[..16])
}

/// The store-relative name of the copy of a per-request side file: named by its stored
/// content, so the name is known before any run is written and a second copy of the same
/// bytes is the same file.
pub fn side_rel(stored_sha: &str, ext: &str) -> String {
    format!("raw/import-{}.per-request.{ext}", &stored_sha[..16])
}
