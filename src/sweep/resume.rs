//! A sweep's identity in the store: its id, reserved before the first point, and the
//! points already stored under it (for `--resume`), with any point a crash left `running`
//! finished by `recover` first.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use super::shard::Shard;
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
    own_points(store, id, fingerprint, None, false)
}

/// Claim a sweep id the user gave (`--sweep-id`): the note `raw/.sweep-<id>.json` is
/// created when it is not there; another shard's note is fine (the shards share the id).
pub fn claim(store: &Store, id: &str, fingerprint: &str, command: Option<&str>) -> Result<()> {
    store.ensure_layout()?;
    let path = note_path(store, id);
    let note = json!({
        "sweep_id": id,
        "plan_sha256": fingerprint,
        "command": command,
        "created": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    match atomic::publish_new(&path, format!("{note}\n").as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(store_io(&path, "write", e)),
    }
}

/// The stored points of sweep `id` that `shard` runs (all with no shard), as
/// [`stored_points`]; `may_be_empty`: a sweep joined by `--sweep-id` may have none yet.
/// Every stored point of the id must be of the same plan, and split into as many shards.
pub fn own_points(
    store: &Store,
    id: &str,
    fingerprint: &str,
    shard: Option<&Shard>,
    may_be_empty: bool,
) -> Result<(Stored, Vec<String>)> {
    let all = store.load_all()?;
    all.warn_skipped();
    let mut points: Stored = BTreeMap::new();
    let mut seen = 0usize;
    let this_host = crate::schema::HostInfo::this().hostname;
    let what = if may_be_empty {
        format!("--sweep-id {id}")
    } else {
        format!("--resume {id}")
    };
    for m in all.runs {
        let Some(link) = m.sweep.as_ref().filter(|s| s.id == id) else {
            continue;
        };
        seen += 1;
        check_split(&what, &m, shard)?;
        check_plan(&what, &m, fingerprint)?;
        let index = link.index;
        if !shard.is_none_or(|s| s.owns(index)) {
            continue;
        }
        // A fleet's shard retried on another machine (a Job's pod rescheduled): a point its
        // first try left `running` there cannot be finished here (its log was on that
        // machine), so it runs again; the report takes the finished run of the index.
        if may_be_empty && m.status == Status::Running && m.host.hostname != this_host {
            eprintln!(
                "warning: point {} ({} {}) of sweep {id} was left running on host {:?}; it runs again here (the old run stays `running`; `benchkeep recover --force {}` finishes it)",
                m.test_id, link.axis, link.value, m.host.hostname, m.test_id
            );
            continue;
        }
        // In load order; of two runs of one repeat slot, a finished one wins over one left
        // running (`repeats::slots`).
        points.entry(index).or_default().push(m);
    }
    if seen == 0 && !may_be_empty {
        return Err(Error::NotFound(format!(
            "no point of sweep {id:?} in {}; list the sweeps with `benchkeep query` or start a new sweep without --resume",
            store.root().display()
        ))
        .into());
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

/// A stored point of another plan (another fingerprint): exit 2, naming its command.
fn check_plan(what: &str, m: &Metadata, fingerprint: &str) -> Result<()> {
    let theirs = m
        .sweep
        .as_ref()
        .and_then(|s| s.extra.get("plan_sha256"))
        .and_then(|v| v.as_str());
    if theirs.is_some_and(|t| t != fingerprint) {
        return Err(Error::usage(format!(
            "{what}: these flags plan a different sweep than the one stored (its point {} ran `{}`); pass the same target, workload, load and sweep flags as the first time (every shard of a fleet runs the same plan)",
            m.test_id,
            m.source.command.as_deref().unwrap_or("?")
        ))
        .into());
    }
    Ok(())
}

/// A stored point split into another number of shards than this one (or not split when
/// this one is, or the other way round): exit 2, naming the split it had.
fn check_split(what: &str, m: &Metadata, shard: Option<&Shard>) -> Result<()> {
    let theirs = m.sweep.as_ref().and_then(|s| s.shard_parts());
    let ours = shard.map(|s| s.count);
    if theirs.map(|(_, n)| n) == ours {
        return Ok(());
    }
    let said = |n: Option<u32>| {
        n.map_or("not split".to_string(), |n| {
            format!("split into {n} shards")
        })
    };
    Err(Error::usage(format!(
        "{what}: its stored point {} was {}, this command is {}; every shard of a sweep must give the same --shard-count (or start a new sweep with another --sweep-id)",
        m.test_id,
        said(theirs.map(|(_, n)| n)),
        said(ours)
    ))
    .into())
}
