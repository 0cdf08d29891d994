//! One metadata file: its size limit, reading it (never through a link, never past the
//! limit however it grows), parsing and the safety checks readers apply, writing it as
//! JSON, and the stat and fingerprint that say which version of which files was read.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

use super::nofollow;
use crate::schema::{Metadata, SCHEMA_VERSION};

/// Metadata files larger than this are not read (a run's metadata is a few KB).
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

fn too_big(len: u64) -> String {
    format!("{len} bytes is too large for a metadata file (limit {MAX_METADATA_BYTES}); not read")
}

/// Refuse metadata whose id or raw path could lead outside the store (RELIABILITY P10), or
/// whose file name is not its id: readers skip it, `verify` reports it.
fn check_safe(m: Metadata, path: &Path) -> std::result::Result<Metadata, String> {
    let id = &m.test_id;
    if id.is_empty() || id.starts_with('.') || id.len() > 255 || id.contains(['/', '\\', '\0']) {
        return Err(format!("unsafe test_id {id:?}: not a plain file name"));
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy());
    if stem.as_deref() != Some(id.as_str()) {
        return Err(format!(
            "file name does not match its test_id {id:?}; rename it to metadata/{id}.json if that name is free"
        ));
    }
    if !is_store_relative(&m.test.output_file) {
        return Err(format!(
            "unsafe test.output_file {:?}: must be a path inside the store like raw/<test_id>.jsonl",
            m.test.output_file
        ));
    }
    Ok(m)
}

/// A relative path with only normal components (no `/` root, no `..`).
pub fn is_store_relative(rel: &str) -> bool {
    use std::path::Component;
    Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Parse metadata bytes, rejecting future schema versions with a clear reason.
pub fn parse_metadata(bytes: &[u8]) -> std::result::Result<Metadata, String> {
    match serde_json::from_slice::<Metadata>(bytes) {
        Ok(m) if m.schema_version > SCHEMA_VERSION => Err(format!(
            "schema_version {} is newer than this benchkeep understands ({SCHEMA_VERSION}); upgrade benchkeep",
            m.schema_version
        )),
        Ok(mut m) => {
            // Figures a source did not have are NaN in memory (0 on disk).
            m.results.apply_unknown();
            Ok(m)
        }
        Err(e) => {
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                return Err("empty file".into());
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
                && let Some(ver) = v.get("schema_version").and_then(|v| v.as_u64())
                && ver > SCHEMA_VERSION as u64
            {
                return Err(format!(
                    "schema_version {ver} is newer than this benchkeep understands ({SCHEMA_VERSION}); upgrade benchkeep"
                ));
            }
            Err(format!("not benchkeep metadata: {e}"))
        }
    }
}

/// Serialize metadata as pretty JSON with a final newline.
///
/// Refuses metadata that would not read back: serde_json writes a non-finite number
/// (infinity, NaN) as `null`, which no reader takes where a number belongs.
pub fn to_json(meta: &Metadata) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(meta).context("serializing metadata")?;
    if let Err(e) = serde_json::from_slice::<Metadata>(&bytes) {
        return Err(crate::error::Error::usage(format!(
            "run {}: a figure is not a finite number (infinite or NaN), so its metadata would not read back ({e}); nothing was written: check the numbers given (e.g. --total-time)",
            meta.test_id
        ))
        .into());
    }
    bytes.push(b'\n');
    Ok(bytes)
}

/// What identifies one version of a metadata file: inode, size and mtime (seconds and
/// nanoseconds). A replaced file (atomic rename) always gets a new inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl FileStat {
    pub fn of(md: &fs::Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            ino: md.ino(),
            size: md.len(),
            mtime: md.mtime(),
            mtime_nsec: md.mtime_nsec(),
        }
    }

    fn tuple(&self) -> (u64, u64, i64, i64) {
        (self.ino, self.size, self.mtime, self.mtime_nsec)
    }
}

/// The fingerprint of a set of metadata files, from their names and stats in file-name
/// order: what `Store::load_all` and `Catalog::runs` stamp runs with.
pub(crate) fn fingerprint<'a>(files: impl Iterator<Item = (&'a str, FileStat)>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    for (name, stat) in files {
        // As `path.file_name()` (an `Option<&OsStr>`) always hashed.
        Some(std::ffi::OsStr::new(name)).hash(&mut hasher);
        stat.tuple().hash(&mut hasher);
    }
    hasher.finish()
}

/// Read and parse one metadata file (never through a link, never over
/// [`MAX_METADATA_BYTES`]), with the stat of what was read (all zeros when it could not be
/// opened).
pub(crate) fn read_with_stat(p: &Path) -> (FileStat, std::result::Result<Metadata, String>) {
    let read = (|| {
        let f = nofollow::open_read(p)?;
        let md = f.metadata()?;
        let bytes = nofollow::read_open_bounded(f, md.len(), MAX_METADATA_BYTES)?;
        Ok::<_, io::Error>((md, bytes))
    })();
    match read {
        Ok((md, bytes)) => (
            FileStat::of(&md),
            match bytes {
                Some(bytes) => parse_metadata(&bytes).and_then(|m| check_safe(m, p)),
                None => Err(too_big(md.len().max(MAX_METADATA_BYTES + 1))),
            },
        ),
        Err(e) => (FileStat::default(), Err(format!("cannot read: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that grew after its size was taken is read only up to the limit plus one
    /// byte (enough to tell it is over), and then refused as too large.
    #[test]
    fn a_file_grown_past_the_limit_is_read_no_further_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grown.json");
        let over = MAX_METADATA_BYTES as usize + 4096;
        fs::write(&path, vec![b' '; over]).unwrap();
        let f = fs::File::open(&path).unwrap();
        // As if fstat had said 10 bytes before the file grew.
        let bytes = nofollow::read_open_bounded(f, 10, MAX_METADATA_BYTES).unwrap();
        assert_eq!(bytes, None);
        let (_, result) = read_with_stat(&path);
        assert!(result.unwrap_err().contains("too large"));
    }
}
