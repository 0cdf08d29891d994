//! Writing a file the user named (`export --out FILE`): never a file of the store, and
//! never by renaming over something that is not a regular file (RELIABILITY P3, P11).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Store, atomic, store_io};
use crate::error::Error;

/// Where `path` really leads: the file it names after every symlink, or (when it does not
/// exist yet) its real directory joined with its name.
fn real_target(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = fs::canonicalize(path) {
        return Some(p);
    }
    let dir = fs::canonicalize(atomic::dir_of(path)).ok()?;
    Some(dir.join(path.file_name()?))
}

/// Refuse (exit 2) a path that leads into the store's own files: a run's raw log, its
/// metadata, a derived file, the lock. `flag` names the option in the message.
pub fn refuse_store_path(store: &Store, path: &Path, flag: &str) -> Result<(), Error> {
    let Ok(root) = fs::canonicalize(store.root()) else {
        return Ok(()); // no store yet: nothing to overwrite
    };
    let Some(real) = real_target(path) else {
        return Ok(());
    };
    let own = ["raw", "metadata", "analysis", "reports", "archive", ".lock"];
    if let Ok(rel) = real.strip_prefix(&root)
        && let Some(first) = rel.components().next()
        && own.iter().any(|o| first.as_os_str() == *o)
    {
        return Err(Error::usage(format!(
            "{flag} {} is {} in the store {}, a stored file that would be overwritten; write to a file outside the store's raw/ metadata/ analysis/ reports/",
            path.display(),
            rel.display(),
            store.root().display()
        )));
    }
    Ok(())
}

/// Write `bytes` to the user-named `path`: a regular file (or a new name) is replaced
/// atomically, through a symlink the file it leads to (the link stays); a FIFO, a
/// character device (`/dev/null`, `/dev/stdout`) is opened and written, never replaced.
/// A directory or a block device is refused (exit 2).
pub fn write_user_file(store: &Store, path: &Path, bytes: &[u8], flag: &str) -> Result<()> {
    refuse_store_path(store, path, flag)?;
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::usage(format!(
            "{flag} {} is a directory; name a file",
            path.display()
        ))
        .into()),
        Ok(m) if m.file_type().is_block_device() => Err(Error::usage(format!(
            "{flag} {} is a block device; name a file",
            path.display()
        ))
        .into()),
        Ok(m) if !m.is_file() => {
            // FIFO, character device, socket: open and write, never rename over it.
            let mut f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| store_io(path, "open", e))?;
            f.write_all(bytes)
                .and_then(|_| f.flush())
                .map_err(|e| store_io(path, "write", e))
        }
        Ok(_) => {
            let target = fs::canonicalize(path).map_err(|e| store_io(path, "resolve", e))?;
            atomic::write_atomic(&target, bytes).map_err(|e| store_io(&target, "write", e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                // A dangling symlink: create nothing through it.
                return Err(Error::usage(format!(
                    "{flag} {} is a symbolic link to nothing; remove it or name another file",
                    path.display()
                ))
                .into());
            }
            atomic::write_atomic(path, bytes).map_err(|e| store_io(path, "write", e))
        }
        Err(e) => Err(store_io(path, "inspect", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_store_and_keeps_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s"));
        store.ensure_layout().unwrap();
        let raw = store.raw_dir().join("a.jsonl");
        fs::write(&raw, b"{}\n").unwrap();
        let err = write_user_file(&store, &raw, b"x", "--out").unwrap_err();
        assert!(format!("{err:#}").contains("raw/a.jsonl"), "{err:#}");
        // through a link, too
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&raw, &link).unwrap();
        assert!(write_user_file(&store, &link, b"x", "--out").is_err());
        assert_eq!(fs::read(&raw).unwrap(), b"{}\n");
        // a link to a file outside the store: the file is replaced, the link stays
        let out = dir.path().join("out.csv");
        fs::write(&out, b"old").unwrap();
        let link2 = dir.path().join("link2.csv");
        std::os::unix::fs::symlink(&out, &link2).unwrap();
        write_user_file(&store, &link2, b"new", "--out").unwrap();
        assert!(
            fs::symlink_metadata(&link2)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&out).unwrap(), b"new");
        // the store root itself may hold an export
        write_user_file(&store, &dir.path().join("s/runs.csv"), b"r", "--out").unwrap();
    }
}
