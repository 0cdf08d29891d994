//! Keeping the spool (the local working copy) and the object store in step: pull what
//! changed remotely (one LIST, a GET per new or changed object by ETag), push a run's raw
//! files then its final metadata, push the derived files.
//!
//! A pull first asks the metadata packs (`packs.rs`) for the objects it needs; what they
//! lack is fetched one by one and then added to them, so the next fresh spool is fast.
//!
//! `.remote-sync.json` in the spool remembers, per object, the ETag last seen and the
//! local file (length, mtime) it became. A local file that changed since (a run this
//! machine is writing, or finished but could not upload) is never overwritten by a pull:
//! the spool is ahead, and its owner's push (or `recover`) uploads it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::packs::{self, Body, Item};
use super::{Fetch, Fetched, Remote};
use crate::schema::Status;
use crate::store::{Store, atomic, store_io};

const STATE: &str = ".remote-sync.json";
const STATE_LOCK: &str = ".remote-sync.lock";

/// What a pull fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    /// `metadata/` only: enough for `query`, `compare`, `show`, and for new ids.
    Metadata,
    /// `metadata/` and `raw/`: for `verify`, `report`, `bundle`.
    All,
}

/// What a pull did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pulled {
    pub listed: usize,
    /// Objects brought into the spool (from packs or one GET each).
    pub fetched: usize,
    /// Of those, the ones a metadata pack held (no GET of their own).
    pub from_packs: usize,
    /// Packs read.
    pub packs_read: usize,
    /// Lines this pull added to the packs (objects it had to GET one by one).
    pub packed: usize,
    /// Objects whose local copy is ahead (written here, not yet uploaded): left alone.
    pub kept_local: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    etag: Option<String>,
    len: u64,
    mtime_ns: i128,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    entries: BTreeMap<String, Entry>,
}

/// The sync state, locked against other benchkeep processes on the same spool.
struct Locked {
    path: PathBuf,
    state: State,
    _lock: File,
}

impl Locked {
    fn open(spool: &Store) -> Result<Locked> {
        let lock_path = spool.root().join(STATE_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| store_io(&lock_path, "open", e))?;
        lock.lock().map_err(|e| store_io(&lock_path, "lock", e))?;
        let path = spool.root().join(STATE);
        // An unreadable state only costs downloads: start over rather than fail.
        let state = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Locked {
            path,
            state,
            _lock: lock,
        })
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.state)?;
        atomic::write_atomic(&self.path, &bytes).map_err(|e| store_io(&self.path, "write", e))
    }

    fn record(&mut self, rel: &str, etag: Option<String>, local: &Path) {
        if let Some((len, mtime_ns)) = stat(local) {
            self.state.entries.insert(
                rel.to_string(),
                Entry {
                    etag,
                    len,
                    mtime_ns,
                },
            );
        }
    }

    /// Whether the local file is exactly what the last pull or push left.
    fn unchanged(&self, rel: &str, local: &Path) -> bool {
        match (self.state.entries.get(rel), stat(local)) {
            (Some(e), Some((len, mtime_ns))) => e.len == len && e.mtime_ns == mtime_ns,
            _ => false,
        }
    }
}

fn stat(path: &Path) -> Option<(u64, i128)> {
    let m = fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
    let mtime = m.modified().ok()?;
    let ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Some((m.len(), ns))
}

/// A store-relative object path benchkeep mirrors: under `metadata/` or `raw/`, plain
/// components only, never the upload parts of a live run.
fn mirrored(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    matches!(parts.first(), Some(&"metadata") | Some(&"raw"))
        && parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'))
        && !parts.iter().any(|p| p.ends_with(".parts"))
}

/// Bring the spool up to date with the object store (see the module notes).
pub fn pull(remote: &Remote, spool: &Store, what: Pull) -> Result<Pulled> {
    let mut listed = remote.list("metadata")?;
    let live: HashSet<String> = listed.iter().map(|(rel, _, _)| rel.clone()).collect();
    if what == Pull::All {
        listed.extend(remote.list("raw")?);
    }
    let mut locked = Locked::open(spool)?;
    let mut done = Pulled {
        listed: listed.len(),
        ..Pulled::default()
    };
    let mut want = Vec::new();
    for (rel, size, etag) in listed {
        if !mirrored(&rel) {
            continue;
        }
        let local = spool.resolve(&rel);
        if !local.exists() {
            want.push((rel, size, etag));
        } else if locked.unchanged(&rel, &local) {
            let seen = locked
                .state
                .entries
                .get(&rel)
                .and_then(|e| e.etag.as_deref());
            if !matches!((seen, etag.as_deref()), (Some(a), Some(b)) if super::same_etag(a, b)) {
                want.push((rel, size, etag));
            }
        } else {
            done.kept_local += 1;
        }
    }
    // The packs first: a fresh spool gets its metadata in a few requests.
    let served = packs::serve(remote, spool, &want, &live)?;
    done.packs_read = served.packs_read;
    let from_packs: HashSet<&str> = served.written.iter().map(|(r, _)| r.as_str()).collect();
    for (rel, etag) in &served.written {
        locked.record(rel, etag.clone(), &spool.resolve(rel));
        done.from_packs += 1;
        done.fetched += 1;
    }
    want.retain(|(rel, _, _)| !from_packs.contains(rel.as_str()));
    let mut unpacked = Vec::new();
    // Streamed to disk, a chunk at a time (remote/transfer.rs): memory does not grow with
    // an object's size; a metadata object is refused past the metadata file limit.
    for chunk in want.chunks(256) {
        let fetches = chunk
            .iter()
            .map(|(rel, _, _)| Fetch {
                rel: rel.clone(),
                dest: spool.resolve(rel),
                limit: if rel.starts_with("metadata/") {
                    crate::store::MAX_METADATA_BYTES
                } else {
                    u64::MAX
                },
            })
            .collect();
        for ((rel, _, etag), got) in chunk.iter().zip(remote.fetch_many(fetches)?) {
            // Gone since the listing (archived, or a race): nothing to mirror.
            let Fetched::Written { e_tag } = got else {
                continue;
            };
            locked.record(rel, etag.clone(), &spool.resolve(rel));
            done.fetched += 1;
            // Added to its pack with the ETag of the version read (the object may have
            // changed since the LIST), read back from the spool under the sync lock.
            if let Some(e_tag) = e_tag
                && served.missing.contains(rel)
            {
                unpacked.push(Item {
                    key: rel.clone(),
                    etag: e_tag,
                    body: Body::File(spool.resolve(rel)),
                });
            }
        }
    }
    locked.save()?;
    if !unpacked.is_empty() || !served.prune.is_empty() {
        done.packed = packs::add(remote, unpacked, &served.prune, Some(&live)).lines;
    }
    Ok(done)
}

/// Upload runs (each by [`upload_run`], in order), then add their lines to their metadata
/// packs in one pass (a pack is read and rewritten once, not once per run; best effort:
/// without its line a fresh spool GETs a run). The runs uploaded before a failure still
/// get their lines.
pub fn push_runs(remote: &Remote, spool: &Store, ids: &[String]) -> Result<()> {
    let mut lines = Vec::new();
    let mut result = Ok(());
    for id in ids {
        match upload_run(remote, spool, id) {
            Ok(line) => lines.extend(line),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if !lines.is_empty() {
        packs::add(remote, lines, &BTreeSet::new(), None);
    }
    result
}

/// Upload one run: its raw files (the log, side files `raw/<id>.*`), then its metadata
/// (so that a reader never sees final metadata pointing at a log not yet there), then
/// drop the upload parts of its live run. Its pack line, when its metadata went up in
/// one PUT.
fn upload_run(remote: &Remote, spool: &Store, id: &str) -> Result<Option<Item>> {
    let meta_path = spool.metadata_path(id);
    let meta = Store::read_metadata(&meta_path)
        .map_err(|why| crate::error::Error::input(&meta_path, why))?;
    let mut files: Vec<String> = Vec::new();
    if let Ok(entries) = fs::read_dir(spool.raw_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{id}.")) && entry.path().is_file() {
                files.push(format!("raw/{name}"));
            }
        }
    }
    let out = &meta.test.output_file;
    if out.starts_with("raw/") && !files.contains(out) && mirrored(out) {
        files.push(out.clone());
    }
    files.sort();
    let mut locked = Locked::open(spool)?;
    for rel in &files {
        let local = spool.resolve(rel);
        if locked.unchanged(rel, &local) {
            continue;
        }
        let etag = remote.put_file(rel, &local)?;
        locked.record(rel, etag, &local);
    }
    let rel = format!("metadata/{id}.json");
    let (etag, sent) = put_metadata(remote, &rel, &meta_path)?;
    locked.record(&rel, etag.clone(), &meta_path);
    locked.save()?;
    drop(locked);
    if meta.status != Status::Running {
        let parts = format!("raw/{id}.jsonl.parts");
        for (rel, _, _) in remote.list(&parts)? {
            remote.delete(&rel)?;
        }
    }
    Ok(match (etag, sent) {
        (Some(etag), Some(body)) => Some(Item {
            key: rel,
            etag,
            body: Body::Bytes(body),
        }),
        _ => None,
    })
}

/// Upload a metadata file: its new ETag, and the exact bytes sent when it went up in one
/// PUT (what its pack line holds; a file past one part is left to GETs).
fn put_metadata(
    remote: &Remote,
    rel: &str,
    local: &Path,
) -> Result<(Option<String>, Option<Vec<u8>>)> {
    let limit = super::transfer::PART_BYTES as u64;
    let read = crate::store::nofollow::read_bounded(local, limit);
    let Some(bytes) = read.map_err(|e| store_io(local, "read", e))? else {
        return Ok((remote.put_file(rel, local)?, None));
    };
    let etag = remote.put(rel, bytes.clone())?;
    Ok((etag, Some(bytes)))
}

/// Runs whose metadata in the spool is finished but differs from what the object store
/// was last given or gave (a crash or failed upload after the run ended here): what
/// `recover` uploads.
pub fn ahead(spool: &Store) -> Result<Vec<String>> {
    let locked = Locked::open(spool)?;
    let mut ids = Vec::new();
    let Ok(entries) = fs::read_dir(spool.metadata_dir()) else {
        return Ok(ids);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
        let rel = format!("metadata/{name}");
        if locked.unchanged(&rel, &entry.path()) {
            continue;
        }
        match Store::read_metadata(&entry.path()) {
            Ok(m) if m.status != Status::Running => ids.push(id.to_string()),
            _ => {}
        }
    }
    ids.sort();
    Ok(ids)
}

/// Upload the derived files (`analysis/`, `reports/`) that changed since the last push.
pub fn push_derived(remote: &Remote, spool: &Store) -> Result<usize> {
    let mut files = Vec::new();
    for dir in ["analysis", "reports"] {
        walk(&spool.resolve(dir), dir, &mut files);
    }
    let mut locked = Locked::open(spool)?;
    let mut sent = 0;
    for rel in files {
        let local = spool.resolve(&rel);
        if locked.unchanged(&rel, &local) {
            continue;
        }
        let etag = remote.put_file(&rel, &local)?;
        locked.record(&rel, etag, &local);
        sent += 1;
    }
    locked.save()?;
    Ok(sent)
}

/// Regular files under `dir` (no links, no hidden files: locks, temps, stamps stay local).
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = entry.file_type() else { continue };
        let child = format!("{rel}/{name}");
        if ft.is_dir() {
            walk(&entry.path(), &child, out);
        } else if ft.is_file() {
            out.push(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layout_is_mirrored() {
        assert!(mirrored("metadata/a.json"));
        assert!(mirrored("raw/a.jsonl"));
        assert!(!mirrored("raw/a.jsonl.parts/000001"));
        assert!(!mirrored("benchkeep.json"));
        assert!(!mirrored("raw/../x"));
        assert!(!mirrored("metadata"));
        assert!(!mirrored("analysis/summary.json"));
    }
}
