//! A sweep's identity in the store: its id, reserved before the first point, and the
//! points already stored under it (for `--resume`), with any point a crash left `running`
//! finished by `recover` first.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use crate::error::Error;
use crate::schema::{Metadata, Status};
use crate::store::{Store, atomic, ids, store_io};

/// Reserve a new sweep id, `sweep-{platform}-{model}-{date}` then `-2`, `-3`, ...: one no
/// stored point uses, claimed by exclusive creation of `raw/.sweep-<id>.json` (a small
/// note with the plan's fingerprint and the command; `verify` passes over dot files).
pub fn reserve(
    store: &Store,
    platform: &str,
    model: &str,
    fingerprint: &str,
    command: Option<&str>,
) -> Result<String> {
    store.ensure_layout()?;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let base = format!(
        "sweep-{}-{}-{date}",
        ids::file_safe(platform),
        ids::file_safe(model)
    );
    let all = store.load_all()?;
    let used: std::collections::HashSet<&str> = all
        .runs
        .iter()
        .filter_map(|m| m.sweep.as_ref().map(|s| s.id.as_str()))
        .collect();
    for n in 1..=100_000u32 {
        let id = ids::candidate(&base, n);
        if used.contains(id.as_str()) {
            continue;
        }
        let path = note_path(store, &id);
        let note = json!({
            "sweep_id": id,
            "plan_sha256": fingerprint,
            "command": command,
            "created": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        match atomic::publish_new(&path, format!("{note}\n").as_bytes()) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(store_io(&path, "write", e)),
        }
    }
    Err(Error::StoreIo(format!("no free sweep id for {base}")).into())
}

/// A sweep's stored runs by point index (several per index with `--repeat`).
pub type Stored = BTreeMap<u32, Vec<Metadata>>;

fn note_path(store: &Store, id: &str) -> std::path::PathBuf {
    store.raw_dir().join(format!(".sweep-{id}.json"))
}

/// The stored runs of sweep `id`, by point index in load order (a later rerun of an
/// index wins; with `--repeat`, one run per repeat), and the ids of those recovered now. None: exit 3.
/// Points of another plan (another fingerprint): exit 2, naming the command they ran.
/// Points left `running` by a crash whose process is gone are recovered here (status
/// `interrupted`: done, not rerun); one still running refuses the resume.
pub fn stored_points(store: &Store, id: &str, fingerprint: &str) -> Result<(Stored, Vec<String>)> {
    let all = store.load_all()?;
    all.warn_skipped();
    let mut points: BTreeMap<u32, Vec<Metadata>> = BTreeMap::new();
    for m in all.runs {
        let Some(link) = m.sweep.as_ref().filter(|s| s.id == id) else {
            continue;
        };
        let index = link.index;
        points.entry(index).or_default().push(m);
    }
    if points.is_empty() {
        return Err(Error::NotFound(format!(
            "no point of sweep {id:?} in {}; list the sweeps with `benchkeep query` or start a new sweep without --resume",
            store.root().display()
        ))
        .into());
    }
    for m in points.values().flatten() {
        let theirs = m
            .sweep
            .as_ref()
            .and_then(|s| s.extra.get("plan_sha256"))
            .and_then(|v| v.as_str());
        if theirs.is_some_and(|t| t != fingerprint) {
            return Err(Error::usage(format!(
                "--resume {id}: these flags plan a different sweep than the one stored (its point {} ran `{}`); pass the same target, workload, load and sweep flags as the first time",
                m.test_id,
                m.source.command.as_deref().unwrap_or("?")
            ))
            .into());
        }
    }
    let mut recovered = Vec::new();
    for m in points.values_mut().flatten() {
        if m.status != Status::Running {
            continue;
        }
        crate::recover::check_recoverable(m, false).map_err(|e| {
            Error::usage(format!(
                "--resume {id}: point {} cannot be finished: {e}",
                m.test_id
            ))
        })?;
        crate::recover::check_writable(store, m)?;
        let done = crate::recover::recover(store, m.clone())?;
        *m = done.metadata;
        recovered.push(m.test_id.clone());
    }
    Ok((points, recovered))
}
