//! One file made ready to import, without touching the store (so files are prepared on
//! several threads at once): read whole, hashed once, parsed once (the parse serves
//! detection, the runs and the secret scan), per-request data from the file beside it, the
//! redacted copies and every run's metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::analyze;
use crate::ingest::{self, Document, DocumentFormat, MAX_DOCUMENT_BYTES};
use crate::schema::Metadata;

use super::{ImportOptions, Known, Outcome, failed, meta, secrets, sides, skipped};

/// A file ready to be written.
pub struct Plan {
    pub path: PathBuf,
    pub sha: String,
    pub tool: String,
    pub version: Option<String>,
    pub redacted: Vec<String>,
    /// Every run's metadata; `test_id` is the base of its id, `test.output_file` the copy.
    pub metas: Vec<Metadata>,
    /// The (redacted) copy of the file: its store-relative name and bytes.
    pub raw: (String, Vec<u8>),
    /// The (redacted) copy of the per-request file beside it, when there is one.
    pub side: Option<(String, Vec<u8>)>,
}

/// What preparing one file gave.
pub enum Prepared {
    /// Skipped or failed: nothing to write.
    Done(Outcome),
    Plan(Box<Plan>),
}

/// Prepare `path`. `known` is the store's sources when the import began (a file wholly in
/// it is skipped here, before it is parsed).
pub fn prepare(opts: &ImportOptions, path: &Path, known: &HashMap<String, Known>) -> Prepared {
    match plan(opts, path, known) {
        Ok(p) => Prepared::Plan(Box::new(p)),
        Err(o) => Prepared::Done(o),
    }
}

fn plan(
    opts: &ImportOptions,
    path: &Path,
    known: &HashMap<String, Known>,
) -> Result<Plan, Outcome> {
    let bytes = match crate::store::nofollow::read_bounded(path, MAX_DOCUMENT_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(skipped(
                path,
                format!(
                    "over the {} MiB limit for result files read whole; split it or import its runs separately",
                    MAX_DOCUMENT_BYTES >> 20
                ),
            ));
        }
        Err(e) => return Err(failed(path, format!("cannot be read ({e})"))),
    };
    let sha = crate::digest::sha256_hex(&bytes);
    if let Some(k) = known.get(&sha)
        && k.whole()
    {
        return Err(k.skipped(path));
    }
    let mut secret = false;
    let (doc, all_seen) = ingest::parse_document_seen(&bytes, None, sha.clone(), &mut |v| {
        secret = secret || secrets::has_secret(v);
    });
    let Some(mut doc) = doc else {
        return Err(unclaimed(path, &bytes));
    };
    if let Some(why) = sides::same_report(path, &doc) {
        return Err(skipped(path, why));
    }
    let whole_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if let Some(why) = sides::covered(path, doc.format, whole_array) {
        // A sweep summary whose run=N.json files are all there adds nothing; runs missing
        // from the folder are imported from it.
        let present = path.parent().map(sides::run_files).unwrap_or_default();
        let number = |r: &ingest::DocumentRun| r.notes.get("run_number").and_then(|v| v.as_u64());
        doc.runs
            .retain(|r| number(r).is_none_or(|n| !present.contains(&n)));
        if doc.runs.is_empty() || doc.format != DocumentFormat::VllmBenchServe {
            return Err(skipped(path, why));
        }
        for r in &mut doc.runs {
            r.warnings
                .push("its run=N.json file is missing: imported from summary.json".into());
        }
    }
    if doc.runs.is_empty() {
        return Err(no_runs(path, &doc));
    }
    let side = super::attach_partner(path, &mut doc).map_err(|why| failed(path, why))?;
    let side = side
        .map(|s| super::side_copy(&s, &mut doc))
        .transpose()
        .map_err(|why| failed(path, why))?;
    // The copy: the file itself unless a secret was seen (or part of it was not JSON).
    let (stored, redacted) = if all_seen && !secret {
        (bytes, Vec::new())
    } else {
        secrets::redacted_copy(&bytes)
    };
    let req = super::request(opts, path, &doc);
    let metas = analyze::document_metadata(&req, &doc).map_err(|e| {
        let e = format!("{e:#}");
        failed(
            path,
            match e.contains("--total-time") {
                true => format!(
                    "{} records no duration for a run; import it alone with `benchkeep analyze --total-time SECONDS`",
                    doc.tool
                ),
                false => e,
            },
        )
    })?;
    let stored_sha = if redacted.is_empty() {
        sha.clone() // nothing cut: the copy is the file, byte for byte
    } else {
        crate::digest::sha256_hex(&stored)
    };
    let raw_rel = meta::raw_rel(&stored_sha, path);
    let metas = meta::finish(
        metas,
        &doc,
        path,
        &meta::Copy {
            sha: &sha,
            stored_sha: &stored_sha,
            redacted: &redacted,
            stored_bytes: stored.len() as u64,
            rel: &raw_rel,
        },
        opts.local_offset,
    );
    Ok(Plan {
        path: path.into(),
        sha,
        tool: doc.tool.clone(),
        version: doc.tool_version.clone(),
        redacted,
        metas,
        raw: (raw_rel, stored),
        side,
    })
}

/// Why a file no document format claims is skipped (or failed: broken JSON).
fn unclaimed(path: &Path, bytes: &[u8]) -> Outcome {
    if let Some(why) = sides::side_file(path, bytes) {
        return skipped(path, why);
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
        .trim_start()
        .to_string();
    if text.starts_with('{') || text.starts_with('[') {
        return match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => failed(path, format!("not valid JSON ({e}): a cut or broken file?")),
            Ok(_) => skipped(path, "JSON in no format benchkeep knows (unknown file)"),
        };
    }
    skipped(path, "not a result file benchkeep knows (unknown file)")
}

/// A claimed file without a run in it: skipped when it holds none, failed when none of
/// its runs could be read.
fn no_runs(path: &Path, doc: &Document) -> Outcome {
    if doc.unparseable == 0 {
        return skipped(
            path,
            format!("a {} file that holds no benchmarks", doc.tool),
        );
    }
    let why = doc
        .first_unparseable
        .first()
        .map(|u| format!("line {}: {}", u.line, u.reason));
    failed(
        path,
        format!(
            "a {} file, but none of its runs could be read ({})",
            doc.tool,
            why.unwrap_or_default()
        ),
    )
}
