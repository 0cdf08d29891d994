//! Archiving a run: moving its files out of the live store into `archive/` (same sub-layout:
//! `archive/metadata/<id>.json`, `archive/raw/<id>.*`) and back, never deleting or
//! overwriting anything.
//!
//! Protocol (both directions, under the store lock): every file of the run is moved one by
//! one, raw files first and the metadata file last, each as: hard-link the file under its
//! new name (fails if the name is taken), fsync the new directory, remove the old name,
//! fsync the old directory. The metadata file is the run's marker: while it is still in
//! the source folder the move is not done. A crash at any step leaves
//! - the run fully live or fully archived, or
//! - one file under both names (the same inode: the next `archive`/`restore` of the id
//!   removes the old name), or
//! - a run split between `raw/` and `archive/raw/`, which `verify` reports with the
//!   command that finishes the move (`benchkeep archive ID`) or undoes it
//!   (`benchkeep restore ID`). Both commands resume from any of these states.
//!
//! Test hook: `BENCHKEEP_CRASH_AT=archive-linked` aborts after the first link,
//! `archive-raw-moved` after the raw files moved and before the metadata file.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Error;
use crate::schema::{Metadata, Status};
use crate::store::atomic::{crash_point, sync_dir};
use crate::store::verify::Problem;
use crate::store::{Store, store_io};

/// The folder archived runs live in, under the store root.
pub const ARCHIVE_DIR: &str = "archive";

/// Which way a run moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Live store -> `archive/`.
    Archive,
    /// `archive/` -> live store.
    Restore,
}

/// What one archive or restore did.
#[derive(Debug, Clone)]
pub struct Moved {
    pub test_id: String,
    /// Store-relative paths of the files now in their new place (metadata last).
    pub files: Vec<String>,
}

fn archive_root(store: &Store) -> PathBuf {
    store.root().join(ARCHIVE_DIR)
}

/// `archive/metadata/<id>.json`.
pub fn archived_metadata_path(store: &Store, id: &str) -> PathBuf {
    archive_root(store)
        .join("metadata")
        .join(format!("{id}.json"))
}

/// Whether `name` (a file in `raw/`) belongs to run `id`: `<id>.jsonl`, `<id>.log`,
/// `<id>.gpu.jsonl`, `<id>.server.jsonl`, `<id>.jsonl.torn-<offset>`, or the run's own
/// results file.
fn belongs(name: &str, id: &str, output_name: Option<&str>) -> bool {
    if Some(name) == output_name {
        return true;
    }
    let Some(rest) = name.strip_prefix(id) else {
        return false;
    };
    matches!(rest, ".jsonl" | ".log" | ".gpu.jsonl" | ".server.jsonl")
        || rest.starts_with(".jsonl.torn-")
}

fn raw_names(dir: &Path, id: &str, output_name: Option<&str>) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && belongs(&name, id, output_name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Move one file without ever replacing another: link, sync, unlink, sync. A target that is
/// already the same file (a crash after the link) only loses its old name.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    let src = fs::symlink_metadata(from).map_err(|e| store_io(from, "read", e))?;
    match fs::symlink_metadata(to) {
        Ok(dst) if dst.ino() == src.ino() && dst.dev() == src.dev() => {}
        Ok(_) => {
            return Err(Error::usage(format!(
                "{} already exists and is a different file; benchkeep never overwrites it. Move one of the two aside by hand, then run the command again",
                to.display()
            ))
            .into());
        }
        Err(_) => {
            fs::hard_link(from, to).map_err(|e| store_io(to, "link", e))?;
            sync_dir(parent(to)).map_err(|e| store_io(to, "sync", e))?;
            crash_point("archive-linked");
        }
    }
    fs::remove_file(from).map_err(|e| store_io(from, "remove the old name of", e))?;
    sync_dir(parent(from)).map_err(|e| store_io(from, "sync", e))?;
    Ok(())
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Resolve `id_or_prefix` to a run id on the side it moves from (a unique prefix works for
/// live runs; archived runs need the whole id), and the metadata file to read it from.
fn locate(store: &Store, id_or_prefix: &str, dir: Direction) -> Result<(String, PathBuf)> {
    let archived = archived_metadata_path(store, id_or_prefix);
    let live = store.metadata_path(id_or_prefix);
    match dir {
        Direction::Archive => {
            if live.is_file() {
                return Ok((id_or_prefix.to_string(), live));
            }
            if archived.is_file() {
                // Resume: the metadata moved; raw files may be left behind by a crash.
                return Ok((id_or_prefix.to_string(), archived));
            }
            let meta = store.find(id_or_prefix)?;
            let path = store.metadata_path(&meta.test_id);
            Ok((meta.test_id, path))
        }
        Direction::Restore => {
            if archived.is_file() {
                return Ok((id_or_prefix.to_string(), archived));
            }
            let left =
                raw_names(&archive_root(store).join("raw"), id_or_prefix, None).unwrap_or_default();
            if live.is_file() && !left.is_empty() {
                // Resume: the metadata moved back; raw files may be left in the archive.
                return Ok((id_or_prefix.to_string(), live));
            }
            if live.is_file() {
                return Err(Error::NotFound(format!(
                    "{id_or_prefix} is live, not archived: nothing to restore"
                ))
                .into());
            }
            Err(Error::NotFound(format!(
                "no archived run {id_or_prefix:?} in {} (list them with `benchkeep archive --list`; give the whole id)",
                archive_root(store).display()
            ))
            .into())
        }
    }
}

/// Move run `id_or_prefix` into `archive/` or back (see the module doc for the protocol).
/// A run that is still `running` is refused; nothing is ever overwritten or deleted.
pub fn transfer(store: &Store, id_or_prefix: &str, dir: Direction) -> Result<Moved> {
    store.check_layout()?;
    let _lock = store.lock()?;
    let (id, meta_path) = locate(store, id_or_prefix, dir)?;
    let meta: Metadata =
        Store::read_metadata(&meta_path).map_err(|r| Error::input(&meta_path, r))?;
    if dir == Direction::Archive && meta.status == Status::Running {
        return Err(Error::usage(format!(
            "{id} is still running; wait for it to finish, or `benchkeep recover {id}` if its process is gone, then archive it"
        ))
        .into());
    }
    let output_name = meta
        .test
        .output_file
        .strip_prefix("raw/")
        .filter(|n| !n.contains('/'))
        .map(str::to_string);
    let root = archive_root(store);
    let (from_root, to_root) = match dir {
        Direction::Archive => (store.root().to_path_buf(), root.clone()),
        Direction::Restore => (root.clone(), store.root().to_path_buf()),
    };
    for sub in ["raw", "metadata"] {
        let d = to_root.join(sub);
        fs::create_dir_all(&d).map_err(|e| store_io(&d, "create directory", e))?;
    }
    let mut files = Vec::new();
    let names = raw_names(&from_root.join("raw"), &id, output_name.as_deref())
        .map_err(|e| store_io(&from_root.join("raw"), "read", e))?;
    for name in names {
        move_file(
            &from_root.join("raw").join(&name),
            &to_root.join("raw").join(&name),
        )?;
        files.push(rel(store, &to_root.join("raw").join(&name)));
    }
    crash_point("archive-raw-moved");
    let meta_from = from_root.join("metadata").join(format!("{id}.json"));
    let meta_to = to_root.join("metadata").join(format!("{id}.json"));
    if meta_from.exists() {
        move_file(&meta_from, &meta_to)?;
    }
    files.push(rel(store, &meta_to));
    Ok(Moved { test_id: id, files })
}

fn rel(store: &Store, p: &Path) -> String {
    p.strip_prefix(store.root())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// Every archived run, by id, oldest first; unreadable files are skipped with a reason.
pub fn list(store: &Store) -> Result<Vec<std::result::Result<Metadata, (PathBuf, String)>>> {
    let dir = archive_root(store).join("metadata");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(store_io(&dir, "read", e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut out: Vec<_> = paths
        .into_iter()
        .map(|p| Store::read_metadata(&p).map_err(|r| (p, r)))
        .collect();
    out.sort_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => a.timestamp.cmp(&b.timestamp),
        _ => std::cmp::Ordering::Equal,
    });
    Ok(out)
}

/// `verify`'s view of `archive/`: archived metadata that does not parse, archived runs
/// whose results file is missing or of the wrong size, runs split between the live store
/// and the archive (a crash mid-move), and raw files in `archive/raw/` without a run.
pub fn check(store: &Store) -> Vec<Problem> {
    let mut problems = Vec::new();
    let root = archive_root(store);
    if !root.exists() {
        return problems;
    }
    let mut ids = Vec::new();
    let mut outputs = Vec::new();
    for entry in list(store).unwrap_or_default() {
        match entry {
            Err((path, reason)) => problems.push(Problem {
                path,
                message: reason,
                fix: "inspect the file; benchkeep never changes it".into(),
            }),
            Ok(meta) => {
                let id = meta.test_id.clone();
                if store.metadata_path(&id).exists() {
                    problems.push(Problem {
                        path: store.metadata_path(&id),
                        message: format!("run {id} is both live and archived"),
                        fix: format!("compare the two files; `benchkeep archive {id}` finishes an archive if they are the same file"),
                    });
                }
                let out = meta.test.output_file.strip_prefix("raw/").unwrap_or("");
                let path = root.join("raw").join(out);
                if out.is_empty() || !path.is_file() {
                    if store.resolve(&meta.test.output_file).is_file() {
                        problems.push(half(store, &id, path));
                    } else {
                        problems.push(Problem {
                            path,
                            message: format!("results file of archived run {id} is missing"),
                            fix: "restore the file from a backup into archive/raw/; the run has no raw data without it".into(),
                        });
                    }
                } else if let (Some(size), Ok(md)) = (meta.test.raw_bytes, fs::metadata(&path))
                    && md.len() != size
                {
                    problems.push(Problem {
                        path,
                        message: format!("size {} differs from the recorded {size}", md.len()),
                        fix: "the archived results file changed; restore it from a backup".into(),
                    });
                }
                outputs.push(out.to_string());
                ids.push(id);
            }
        }
    }
    // Live runs whose raw files already moved (a crash during archive), or archived raw
    // files of no run at all.
    if let Ok(entries) = fs::read_dir(root.join("raw")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = ids
                .iter()
                .zip(&outputs)
                .any(|(id, out)| belongs(&name, id, Some(out.as_str())));
            if owner {
                continue;
            }
            let live = store
                .list_metadata()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .find(|id| belongs(&name, id, None));
            problems.push(match live {
                Some(id) => half(store, &id, entry.path()),
                None => Problem {
                    path: entry.path(),
                    message: "archived raw file without metadata".into(),
                    fix: "inspect it; benchkeep never deletes it".into(),
                },
            });
        }
    }
    problems
}

fn half(_store: &Store, id: &str, path: PathBuf) -> Problem {
    Problem {
        path,
        message: format!(
            "run {id} is split between the live store and archive/ (a move was cut off)"
        ),
        fix: format!(
            "finish it with `benchkeep archive {id}`, or undo it with `benchkeep restore {id}`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::belongs;

    #[test]
    fn a_runs_files_are_its_own_and_no_other_runs() {
        let id = "vllm-m-5-2026-12-02";
        for name in [
            "vllm-m-5-2026-12-02.jsonl",
            "vllm-m-5-2026-12-02.log",
            "vllm-m-5-2026-12-02.gpu.jsonl",
            "vllm-m-5-2026-12-02.server.jsonl",
            "vllm-m-5-2026-12-02.jsonl.torn-120",
            "results.jsonl",
        ] {
            assert!(belongs(name, id, Some("results.jsonl")), "{name}");
        }
        for name in [
            "vllm-m-5-2026-12-02-2.jsonl",
            "vllm-m-5-2026-12-02.txt",
            "x.jsonl",
        ] {
            assert!(!belongs(name, id, Some("results.jsonl")), "{name}");
        }
    }
}
