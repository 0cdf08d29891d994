//! `recover`: finish runs cut off by kill -9, a crash or power loss, without losing a
//! finished request (RELIABILITY P2, P4).
//!
//! One entry point, [`recover`], for every kind of run that can be left `running`: a
//! `benchkeep run` is finished from its raw log ([`raw`]), a `record` from what its command
//! wrote ([`record`]). Both end the same way ([`finish`]): a `recovered` note in `test`,
//! status `interrupted`, no pid, the metadata replaced atomically under the store lock.
//! Which runs may be recovered ([`check_recoverable`], [`abandoned`]) is decided here too.

pub mod raw;
pub mod record;

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::schema::{HostInfo, Metadata, SourceKind, Status};
use crate::store::process::{owner_alive, start_time};
use crate::store::verify::pid_alive;
use crate::store::{Store, StoreLock};

pub use raw::{BadLine, RawScan, scan_raw};

/// A finished recovery.
#[derive(Debug)]
pub struct Recovered {
    pub metadata: Metadata,
    pub metadata_path: PathBuf,
    pub raw_path: PathBuf,
    /// Where the torn tail was moved, and its size.
    pub torn: Option<(PathBuf, u64)>,
    /// Corrupt lines left in place (the command reports them and exits non-zero).
    pub corrupt: Vec<BadLine>,
}

/// Finish one run, whatever made it. The caller has checked [`check_recoverable`].
pub fn recover(store: &Store, meta: Metadata) -> Result<Recovered> {
    if meta.source.kind == SourceKind::Record {
        record::recover_record(store, meta)
    } else {
        raw::recover_run(store, meta)
    }
}

/// The end step of every recovery: note what was done (`test.recovered`, with the time),
/// mark the run `interrupted`, drop its pid, replace the metadata; then release the lock.
fn finish(
    store: &Store,
    meta: &mut Metadata,
    mut note: Map<String, Value>,
    lock: StoreLock,
) -> Result<()> {
    note.insert(
        "at".into(),
        json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    meta.test
        .extra
        .insert("recovered".into(), Value::Object(note));
    meta.status = Status::Interrupted;
    meta.pid = None;
    meta.process = None;
    store.replace(meta)?;
    drop(lock);
    Ok(())
}

/// Why a run cannot be recovered (or needs no recovery).
pub fn check_recoverable(meta: &Metadata, force: bool) -> Result<(), Error> {
    if meta.status != Status::Running {
        return Err(Error::usage(format!(
            "run {} is already finished (status {}); nothing to recover",
            meta.test_id, meta.status
        )));
    }
    if matches!(meta.source.kind, SourceKind::Analyze | SourceKind::Import) {
        return Err(Error::usage(format!(
            "run {} was imported (by `analyze` or `import`); there is nothing to recover (import the file again)",
            meta.test_id
        )));
    }
    let same_host = meta.host.hostname == HostInfo::this().hostname;
    // A record run's command may outlive benchkeep and still be writing its results.
    let command = meta.extra.get("command");
    let command_pid = command
        .and_then(|c| c.get("pid"))
        .and_then(Value::as_u64)
        .map(|p| p as u32);
    // With its start time recorded, a pid now owned by another process is not the command.
    let command_start = command
        .and_then(|c| c.get("pid_start_time"))
        .and_then(Value::as_u64);
    let command_alive = |pid: u32| {
        pid_alive(pid) && command_start.is_none_or(|t| start_time(pid).is_none_or(|now| now == t))
    };
    if same_host
        && !force
        && let Some(pid) = command_pid.filter(|p| command_alive(*p))
    {
        return Err(Error::usage(format!(
            "run {}: its command (pid {pid}) is still running and may still write its results; wait for it to end, or pass --force",
            meta.test_id
        )));
    }
    if same_host
        && let Some(pid) = meta
            .pid
            .filter(|p| owner_alive(*p, meta.process.as_deref()))
    {
        if force && pid != std::process::id() {
            return Ok(());
        }
        return Err(Error::usage(format!(
            "run {} is still running (pid {pid}); stop it first (Ctrl-C finishes it cleanly), or pass --force if that pid is now another process",
            meta.test_id
        )));
    }
    if !same_host && !force {
        return Err(Error::usage(format!(
            "run {} was started on host {:?}; its process may still be running there. Recover it on that host, or pass --force",
            meta.test_id, meta.host.hostname
        )));
    }
    Ok(())
}

/// Runs of this store that `recover` without an id finishes: status `running`, made by
/// `benchkeep run` or `record` on this host, whose process is gone.
pub fn abandoned(store: &Store) -> Result<Vec<Metadata>> {
    let all = store.load_all()?;
    all.warn_skipped();
    let host = HostInfo::this().hostname;
    Ok(all
        .runs
        .into_iter()
        .filter(|m| {
            m.status == Status::Running
                && matches!(m.source.kind, SourceKind::Run | SourceKind::Record)
                && m.host.hostname == host
                && !m.pid.is_some_and(|p| owner_alive(p, m.process.as_deref()))
        })
        .collect())
}

/// In a shared store, a run whose files this user cannot write is another user's to
/// recover (P11): refuse rather than replace them through the folder's permissions.
pub fn check_writable(store: &Store, meta: &Metadata) -> Result<(), Error> {
    let mut paths = vec![store.metadata_path(&meta.test_id)];
    if crate::store::is_store_relative(&meta.test.output_file) && !meta.test.output_file.is_empty()
    {
        paths.push(store.resolve(&meta.test.output_file));
    }
    for path in paths {
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: access() only reads the path string.
        let denied = unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
        if denied {
            return Err(Error::StoreIo(format!(
                "run {}: you cannot write {}; it belongs to another user of this shared store, who can recover it",
                meta.test_id,
                path.display()
            )));
        }
    }
    Ok(())
}
