//! Group commit: many new runs written at once (`import`), with one sync for all of them
//! instead of two `fsync`s per file.
//!
//! The protocol (RELIABILITY P3, batched):
//! 1. each run's id is chosen (as [`Store::publish_new`] would: the first free one);
//! 2. every new file, the data files first (`raw/`: content-named copies) then the runs'
//!    metadata, is written to a temp file in its own directory (`create_new`, not synced);
//! 3. one `syncfs` of the store's file system (elsewhere: `sync_all` of each temp) makes
//!    all of them durable at once;
//! 4. the data files get their names (exclusive hard links; a content-named file already
//!    there is the same bytes, from an earlier import cut short) and `raw/` is fsynced;
//! 5. only then does each run's metadata get its name (exclusive hard link), entry by
//!    entry, and `metadata/` is fsynced; the temps are removed.
//!
//! So a metadata file is never visible pointing at a data file that is not durable, and a
//! crash leaves whole runs or nothing (plus temp files `verify` reports and `recover`
//! removes). An id a concurrent writer took between steps 1 and 5 is given up and the run
//! is published the slow way ([`Store::publish_new`]), which picks the next free id.
//! The crash hook's steps are the same as [`atomic`]'s: `temp-written`, `before-publish`,
//! `after-publish` (after the first metadata file got its name).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::atomic::{self, crash_point};
use super::{Store, ids, store_io, to_json};
use crate::schema::Metadata;

/// One entry of a batch: content-named data files (store-relative name, bytes) and the
/// runs that refer to them (each `test_id` is the base of its id; `test.output_file` is
/// set by the caller).
pub struct Entry<'a> {
    pub data: Vec<(String, &'a [u8])>,
    pub runs: Vec<Metadata>,
}

/// A file written to a temp name, waiting for its own.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

/// Write every entry (see the module doc); returns each entry's run ids, in order. An
/// error is a store error; the entries before the one that failed are whole.
pub fn commit(store: &Store, entries: Vec<Entry<'_>>) -> Result<Vec<Vec<String>>> {
    let mut staged: Vec<Staged> = Vec::new();
    let result = commit_staged(store, entries, &mut staged);
    for s in &staged {
        let _ = fs::remove_file(&s.tmp);
    }
    result
}

fn commit_staged(
    store: &Store,
    mut entries: Vec<Entry<'_>>,
    staged: &mut Vec<Staged>,
) -> Result<Vec<Vec<String>>> {
    // 1. ids.
    let mut taken: HashSet<String> = HashSet::new();
    let mut next: HashMap<String, u32> = HashMap::new();
    let mut bases: Vec<Vec<String>> = Vec::with_capacity(entries.len());
    for e in &mut entries {
        let mut b = Vec::with_capacity(e.runs.len());
        for m in &mut e.runs {
            if m.test.output_file.is_empty() {
                return Err(anyhow::anyhow!("a batched run needs its output_file set"));
            }
            let base = m.test_id.clone();
            m.test_id = free_id(store, &base, &mut next, &mut taken)?;
            b.push(base);
        }
        bases.push(b);
    }
    // 2. temps: data, then metadata.
    let mut data = Vec::new();
    for e in &entries {
        for (rel, bytes) in &e.data {
            let target = store.resolve(rel);
            if same_file_there(&target, bytes.len())? {
                continue;
            }
            if data.iter().any(|s: &usize| staged[*s].target == target) {
                continue; // the same copy twice in one batch
            }
            staged.push(write_temp(&target, bytes)?);
            data.push(staged.len() - 1);
        }
    }
    let mut metas: Vec<Vec<usize>> = Vec::with_capacity(entries.len());
    for e in &entries {
        let mut idx = Vec::with_capacity(e.runs.len());
        for m in &e.runs {
            staged.push(write_temp(&store.metadata_path(&m.test_id), &to_json(m)?)?);
            idx.push(staged.len() - 1);
        }
        metas.push(idx);
    }
    crash_point("temp-written");
    // 3. one sync for all.
    sync_all_of(store, staged)?;
    crash_point("before-publish");
    // 4. data names, then their directory.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for &i in &data {
        let s = &staged[i];
        match atomic::link_exclusive(&s.tmp, &s.target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let len = fs::metadata(&s.tmp).map(|m| m.len()).unwrap_or(0);
                same_file_there(&s.target, len as usize)?;
            }
            Err(e) => return Err(store_io(&s.target, "create", e)),
        }
        let dir = atomic::dir_of(&s.target).to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        atomic::sync_dir(dir).map_err(|e| store_io(dir, "sync", e))?;
    }
    // 5. metadata names, entry by entry.
    let mut out = Vec::with_capacity(entries.len());
    let mut first = true;
    for ((e, idx), base) in entries.into_iter().zip(metas).zip(bases) {
        let mut ids = Vec::with_capacity(e.runs.len());
        for ((mut m, i), base) in e.runs.into_iter().zip(idx).zip(base) {
            let s = &staged[i];
            match atomic::link_exclusive(&s.tmp, &s.target) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    // Taken meanwhile by another writer: the slow way, the next free id.
                    store.publish_new(&base, &mut m)?;
                }
                Err(err) => return Err(store_io(&s.target, "write", err)),
            }
            if first {
                crash_point("after-publish");
                first = false;
            }
            ids.push(m.test_id);
        }
        out.push(ids);
    }
    let dir = store.metadata_dir();
    atomic::sync_dir(&dir).map_err(|e| store_io(&dir, "sync", e))?;
    Ok(out)
}

/// The first free id for `base` that this batch has not handed out yet.
fn free_id(
    store: &Store,
    base: &str,
    next: &mut HashMap<String, u32>,
    taken: &mut HashSet<String>,
) -> Result<String> {
    let start = *next
        .entry(base.to_string())
        .or_insert_with(|| store.first_free(base));
    for n in start..=100_000u32 {
        let id = ids::candidate(base, n);
        if taken.contains(&id)
            || store.raw_dir().join(format!("{id}.jsonl")).exists()
            || store.metadata_path(&id).exists()
        {
            continue;
        }
        next.insert(base.to_string(), n + 1);
        taken.insert(id.clone());
        return Ok(id);
    }
    Err(crate::error::Error::StoreIo(format!(
        "no free test id for {base} in {}",
        store.root().display()
    ))
    .into())
}

/// A content-named file already at `target`: true when it is there with the expected
/// size (the same bytes: the name is their hash), an error when another file holds the
/// name, false when the name is free.
fn same_file_there(target: &Path, len: usize) -> Result<bool> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_file() && m.len() == len as u64 => Ok(true),
        Ok(_) => Err(crate::error::Error::StoreIo(format!(
            "{} is already there but is not the copy benchkeep would write (another size or not a regular file); move it aside and import again",
            target.display()
        ))
        .into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(store_io(target, "read", e)),
    }
}

/// Write `bytes` to a fresh temp file next to `target`, not synced.
fn write_temp(target: &Path, bytes: &[u8]) -> Result<Staged> {
    let tmp = atomic::temp_path_for(target);
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(store_io(&tmp, "write", e));
    }
    Ok(Staged {
        tmp,
        target: target.to_path_buf(),
    })
}

/// Make every staged temp durable: one `syncfs` on Linux, else `sync_all` of each.
fn sync_all_of(store: &Store, staged: &[Staged]) -> Result<()> {
    sync_temps(store.root(), staged.iter().map(|s| s.tmp.as_path()))
}

/// Make files written under `root` durable before they are renamed into place: one
/// `syncfs` of `root`'s file system on Linux (thousands of files, one sync), else
/// `sync_all` of each of `temps`. Shared by every batch of files (this module, the
/// spool's pulls from packs).
pub(crate) fn sync_temps<'a>(
    root: &std::path::Path,
    temps: impl Iterator<Item = &'a std::path::Path>,
) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = temps;
        let dir = File::open(root).map_err(|e| store_io(root, "open", e))?;
        // SAFETY: syncfs takes any open descriptor of the file system; `dir` outlives it.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(store_io(root, "sync", io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = root;
        for t in temps {
            File::open(t)
                .and_then(|f| f.sync_all())
                .map_err(|e| store_io(t, "sync", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SourceKind;

    fn run(base: &str, raw: &str) -> Metadata {
        let mut m = Metadata::new(SourceKind::Import, "f", "p", "m", chrono::Utc::now());
        m.test_id = base.into();
        m.test.output_file = raw.into();
        m
    }

    #[test]
    fn data_first_ids_free_and_nothing_left_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s"));
        store.ensure_layout().unwrap();
        let raw = "raw/import-0123456789abcdef.json";
        let entries = vec![
            Entry {
                data: vec![(raw.to_string(), b"{}".as_slice())],
                runs: vec![run("p-m-2-day", raw), run("p-m-2-day", raw)],
            },
            Entry {
                // The same copy again (a second file of the same bytes): one file.
                data: vec![(raw.to_string(), b"{}".as_slice())],
                runs: vec![run("p-m-2-day", raw)],
            },
        ];
        let ids = commit(&store, entries).unwrap();
        assert_eq!(
            ids,
            [
                vec!["p-m-2-day".to_string(), "p-m-2-day-2".into()],
                vec!["p-m-2-day-3".to_string()]
            ]
        );
        for id in ids.iter().flatten() {
            let m = Store::read_metadata(&store.metadata_path(id)).unwrap();
            assert_eq!(&m.test_id, id);
        }
        assert_eq!(fs::read(store.resolve(raw)).unwrap(), b"{}");
        // Again: the copy is there already (an import cut short), ids go on.
        let again = commit(
            &store,
            vec![Entry {
                data: vec![(raw.to_string(), b"{}".as_slice())],
                runs: vec![run("p-m-2-day", raw)],
            }],
        )
        .unwrap();
        assert_eq!(again, [vec!["p-m-2-day-4".to_string()]]);
        for d in [store.raw_dir(), store.metadata_dir()] {
            for e in fs::read_dir(d).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with(atomic::TEMP_PREFIX), "{name}");
            }
        }
        // A different file under a copy's name is refused, nothing written.
        let err = commit(
            &store,
            vec![Entry {
                data: vec![(raw.to_string(), b"{\"a\":1}".as_slice())],
                runs: vec![run("p-m-2-day", raw)],
            }],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("move it aside"), "{err:#}");
        assert!(!store.metadata_path("p-m-2-day-5").exists());
    }
}
