//! Durable file writes: atomic replace, exclusive publish, directory fsync.
//!
//! Every whole file benchkeep writes goes through here (RELIABILITY.md P3): the bytes go to
//! a temp file in the same directory (created with `create_new`), are `sync_all`ed, then the
//! temp is renamed over the target (or hard-linked to a new name, which fails if the name is
//! taken) and the directory is fsynced. A reader sees the old or the new file, never a part.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of temp files; `verify` reports leftovers with it, readers ignore them.
pub const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Test-only fault injection: when `BENCHKEEP_CRASH_AT` names this step, the process aborts
/// right here, as a power cut would stop it. Steps: `temp-written` (bytes written, not
/// synced), `before-publish` (temp synced, not yet renamed or linked), `after-publish`
/// (target in place, temp not yet removed, directory not synced).
pub(crate) fn crash_point(step: &str) {
    if let Some(at) = std::env::var_os("BENCHKEEP_CRASH_AT")
        && at == step
    {
        eprintln!("benchkeep: BENCHKEEP_CRASH_AT={step}: aborting");
        std::process::abort();
    }
}

/// A fresh temp path next to `target` (same directory, so rename stays atomic).
pub fn temp_path_for(target: &Path) -> PathBuf {
    let dir = dir_of(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "{TEMP_PREFIX}{}-{n}-{nanos:x}-{name}",
        std::process::id()
    ))
}

/// The directory a path lives in; `.` for a bare file name (whose `parent()` is `""`).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// fsync a directory so a rename or new entry in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `bytes` to a new temp file next to `target`, synced. Returns the temp path.
fn write_temp(target: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = temp_path_for(target);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        crash_point("temp-written");
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Atomically replace (or create) `target` with `bytes`, durably.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(target, bytes)?;
    replace_with(&tmp, target)
}

/// Atomically replace (or create) `target` with `tmp`, a complete and synced temp file
/// made at [`temp_path_for`]`(target)` by a writer that streams its bytes; durably. The
/// temp is removed if the rename fails.
pub fn replace_with(tmp: &Path, target: &Path) -> io::Result<()> {
    crash_point("before-publish");
    if let Err(e) = fs::rename(tmp, target) {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    crash_point("after-publish");
    sync_dir(dir_of(target))
}

/// Atomically create `target` with `bytes`, failing with `AlreadyExists` if the name is
/// taken: this is how test ids are reserved, so two processes can never get one name.
pub fn publish_new(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(target, bytes)?;
    crash_point("before-publish");
    let linked = link_exclusive(&tmp, target);
    if linked.is_ok() {
        crash_point("after-publish");
    }
    let _ = fs::remove_file(&tmp);
    linked?;
    sync_dir(dir_of(target))
}

/// Give the synced file `src` the new name `target` without ever replacing an existing file.
/// Uses a hard link; on file systems without hard links, falls back to `create_new` + copy.
pub fn link_exclusive(src: &Path, target: &Path) -> io::Result<()> {
    match fs::hard_link(src, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e)
            if e.kind() == io::ErrorKind::Unsupported
                || matches!(e.raw_os_error(), Some(libc::EPERM | libc::EXDEV)) =>
        {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)?;
            let copied = io::copy(&mut File::open(src)?, &mut out).and_then(|_| out.sync_all());
            if let Err(e) = copied {
                let _ = fs::remove_file(target);
                return Err(e);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_file_names_live_in_the_current_directory() {
        assert_eq!(dir_of(Path::new("runs.csv")), Path::new("."));
        assert_eq!(dir_of(Path::new("a/runs.csv")), Path::new("a"));
        assert_eq!(dir_of(Path::new("/runs.csv")), Path::new("/"));
    }

    #[test]
    fn atomic_replace_and_exclusive_publish() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");

        let q = dir.path().join("b.json");
        publish_new(&q, b"first").unwrap();
        let err = publish_new(&q, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&q).unwrap(), b"first");

        // no temp files are left behind
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TEMP_PREFIX)),
            "{names:?}"
        );
    }
}
