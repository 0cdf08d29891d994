//! The catalog on disk: its parts `analysis/catalog/part-NN.jsonl` (rows spread by a hash
//! of the file name, so that a change rewrites one part, not the whole catalog) and its
//! state `analysis/catalog/.state.json` (what `metadata/` looked like when the parts were
//! last brought in step: the cheap staleness check, with the racy rule).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::row::{CATALOG_VERSION, Head, head_of};
use crate::store::{FileStat, Store, atomic, nofollow, parallel_map};

/// The catalog's folder, relative to the store root.
pub const CATALOG_DIR: &str = "analysis/catalog";
/// The state file in it (hidden: engines read `*.jsonl`, a shared store never gets it).
pub const STATE_FILE: &str = ".state.json";
/// The catalog of version 1 (one file); removed when the parts are written.
pub const OLD_CATALOG: &str = "analysis/catalog.jsonl";
/// How many parts the rows are spread over.
pub const PARTS: usize = 64;
/// A part larger than this is not read (the catalog is rebuilt from the metadata).
const MAX_PART_BYTES: u64 = 1 << 30;
/// The racy rule: a `metadata/` modified less than this long before it was listed may
/// change again without its mtime moving (timestamps are coarse: 1-2 s on some file
/// systems, a clock tick on others), so that listing is not trusted next time.
pub const RACY_NS: i128 = 2_000_000_000;

/// The part a metadata file's row goes to (FNV-1a of its name).
pub fn part_of(file: &str) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in file.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % PARTS as u64) as usize
}

pub fn part_name(part: usize) -> String {
    format!("part-{part:02}.jsonl")
}

/// What identifies one state of the `metadata/` folder: its inode, size and mtime (any
/// file created, removed or renamed in it moves its mtime).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirStat {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

/// The folder's stat now (`None`: no folder).
pub fn dir_stat(store: &Store) -> Option<DirStat> {
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(store.metadata_dir()).ok()?;
    Some(DirStat {
        ino: md.ino(),
        size: md.len(),
        mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
    })
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// `analysis/catalog/.state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub catalog: u32,
    /// `metadata/` as it was just before the listing the parts reflect.
    pub dir: DirStat,
    /// That listing came within [`RACY_NS`] of the folder's last change: not trusted.
    pub racy: bool,
    /// Each part written, with its size in bytes.
    pub parts: Vec<(String, u64)>,
}

impl State {
    /// The state after a listing that began with `dir`.
    pub fn after_listing(dir: DirStat, parts: Vec<(String, u64)>) -> State {
        State {
            catalog: CATALOG_VERSION,
            dir,
            racy: now_ns() - dir.mtime_ns < RACY_NS,
            parts,
        }
    }
}

pub fn read_state(store: &Store) -> Option<State> {
    let dir = store.root().join(CATALOG_DIR);
    if !nofollow::real_dir(&dir).unwrap_or(false) {
        return None;
    }
    let path = dir.join(STATE_FILE);
    let bytes = nofollow::read_bounded(&path, 1 << 20).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// One line of a part: its head and where its bytes are.
pub struct LineAt {
    pub head: Head,
    pub part: usize,
    pub range: Range<usize>,
}

/// A plain file name of `metadata/`: no separator, no leading dot, no NUL, ends in `.json`.
fn plain_json_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The parts as read: their bytes (indexed by part number), their lines, and each
/// part's name and size (what the state must list for them to be trusted).
#[derive(Default)]
pub struct Parts {
    pub bufs: Vec<Vec<u8>>,
    pub lines: Vec<LineAt>,
    pub sizes: Vec<(String, u64)>,
}

/// Read every part: `Ok(None)` when there is no catalog folder, `Err(why)` when a part
/// cannot be used (unreadable, a cut line, a head that does not parse, another version).
/// Only heads are parsed here; a row whose `run` does not parse is read again from its
/// metadata file by whoever needs it.
pub fn read_parts(store: &Store) -> Result<Option<Parts>, String> {
    let dir = store.root().join(CATALOG_DIR);
    // A link in place of the folder would read rows from outside the store (P11).
    if !nofollow::real_dir(&dir)? {
        return Ok(None);
    }
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut parts = Parts {
        bufs: vec![Vec::new(); PARTS],
        ..Parts::default()
    };
    let mut read = Vec::with_capacity(names.len());
    let mut held = 0u64;
    for name in names {
        let Some(part) = (0..PARTS).find(|&p| part_name(p) == name) else {
            return Err(format!("{name}: not a part this benchkeep writes"));
        };
        let bytes = match nofollow::read_bounded(&dir.join(&name), MAX_PART_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(format!("{name}: larger than {MAX_PART_BYTES} bytes")),
            Err(e) => return Err(format!("{name}: cannot read: {e}")),
        };
        // Bounded as a whole, not only per part: 64 planted parts must not take 64 GiB.
        held += bytes.len() as u64;
        if held > MAX_PART_BYTES {
            return Err(format!("the parts hold more than {MAX_PART_BYTES} bytes"));
        }
        read.push((part, name, bytes));
    }
    // Sized once: at 100,000 rows, growing these was a good part of a warm read.
    let total: usize = read
        .iter()
        .map(|(_, _, b)| memchr::memchr_iter(b'\n', b).count())
        .sum();
    let mut ranges: Vec<(usize, Range<usize>)> = Vec::with_capacity(total);
    for (part, name, bytes) in read {
        let mut start = 0;
        let before = ranges.len();
        for end in memchr::memchr_iter(b'\n', &bytes) {
            ranges.push((part, start..end + 1));
            start = end + 1;
        }
        if start < bytes.len() {
            return Err(format!(
                "{name} line {}: cut short (no newline at its end)",
                ranges.len() - before + 1
            ));
        }
        parts.sizes.push((name, bytes.len() as u64));
        parts.bufs[part] = bytes;
    }
    let bufs = &parts.bufs;
    let heads = parallel_map(&ranges, |(p, r)| {
        let head = head_of(&bufs[*p][r.clone()]).map_err(|e| e.to_string())?;
        if head.catalog != CATALOG_VERSION {
            return Err(format!(
                "catalog version {} (this benchkeep writes {CATALOG_VERSION})",
                head.catalog
            ));
        }
        Ok(head)
    });
    parts.lines.reserve_exact(ranges.len());
    let mut line_no = vec![0usize; PARTS];
    for ((part, range), head) in ranges.into_iter().zip(heads) {
        line_no[part] += 1;
        match head {
            // A row names its metadata file: a plain `*.json` name, never a path
            // (`metadata/` joined with `/x` or `../x` would leave the store).
            Ok(head) if !plain_json_name(head.file()) => {
                return Err(format!(
                    "{} line {}: {:?} is not a metadata file name",
                    part_name(part),
                    line_no[part],
                    head.file()
                ));
            }
            Ok(head) => parts.lines.push(LineAt { head, part, range }),
            Err(why) => {
                return Err(format!("{} line {}: {why}", part_name(part), line_no[part]));
            }
        }
    }
    Ok(Some(parts))
}

/// Write the given parts (each its full content; an empty one is removed), then the
/// state, each atomically. Never creates a store: `metadata/` must exist.
pub fn write_parts(
    store: &Store,
    changed: &[(usize, Vec<u8>)],
    state: impl FnOnce(Vec<(String, u64)>) -> State,
    kept: Vec<(String, u64)>,
) -> bool {
    let dir = store.root().join(CATALOG_DIR);
    if !store.metadata_dir().is_dir()
        || fs::create_dir_all(&dir).is_err()
        || store.check_layout().is_err()
        || !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
    {
        return false;
    }
    let mut sizes: std::collections::BTreeMap<String, u64> = kept.into_iter().collect();
    for (part, bytes) in changed {
        let name = part_name(*part);
        let path = dir.join(&name);
        if bytes.is_empty() {
            if fs::remove_file(&path).is_err() && path.exists() {
                return false;
            }
            sizes.remove(&name);
        } else {
            if replace_unsynced(&path, bytes).is_err() {
                return false;
            }
            sizes.insert(name, bytes.len() as u64);
        }
    }
    let state = state(sizes.into_iter().collect());
    let bytes = serde_json::to_vec(&state).expect("state serializes");
    if replace_unsynced(&dir.join(STATE_FILE), &bytes).is_err() {
        return false;
    }
    // The one-file catalog of version 1 would mislead an engine: gone once this is here.
    let old = store.root().join(OLD_CATALOG);
    if fs::symlink_metadata(&old).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_file(old);
    }
    true
}

/// Replace `target` with `bytes` atomically (a temp file renamed over it) but without an
/// `fsync`: the catalog is derived, and a part a crash lost or emptied is caught by the
/// next reader (its size differs from the state's, or a line does not parse) and its rows
/// are read again from `metadata/`. 64 parts synced one by one cost seconds.
fn replace_unsynced(target: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = atomic::temp_path_for(target);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The store lock, if it is free now (never waits: a reader does not queue behind a
/// writer to refresh a cache).
pub fn try_lock(store: &Store) -> Option<File> {
    let path = store.root().join(".lock");
    let file = nofollow::open_with(
        &path,
        OpenOptions::new().create(true).truncate(false).write(true),
    )
    .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Every metadata file name (as [`Store::metadata_files`] selects them), sorted, with its
/// `lstat` when it is a regular file (`None`: always read afresh).
pub fn list(store: &Store) -> anyhow::Result<Vec<(String, Option<FileStat>)>> {
    let files = store.metadata_files()?;
    let stats = parallel_map(&files, |p| {
        fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.file_type().is_file())
            .map(|m| FileStat::of(&m))
    });
    Ok(files
        .iter()
        .zip(stats)
        .map(|(p, s)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, s)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::row::{Row, head_of, line_of, row_of};
    use crate::store::FileStat;

    /// A compact head gives back every field of the row, escaped strings and labels
    /// included, and a skipped file's reason.
    #[test]
    fn a_head_keeps_every_field_escapes_included() {
        let stat = FileStat {
            ino: 7,
            size: 9,
            mtime: 1,
            mtime_nsec: 2,
        };
        let mut row: Row = row_of("a\"b.json", stat, Err("bad \\ json".into()));
        let line = line_of(&row);
        let h = head_of(&line).unwrap();
        assert_eq!(h.file(), "a\"b.json");
        assert_eq!(h.skipped(), Some("bad \\ json"));
        assert_eq!(h.stat, stat);
        assert_eq!(h.labels().count(), 0);
        row.skipped = None;
        row.test_id = Some("t\u{e9}\"1".into());
        row.platform = Some("ollama".into());
        row.model = Some("m".into());
        row.timestamp = Some("2026-01-01T00:00:00Z".into());
        row.status = Some(crate::schema::Status::Completed);
        row.labels = Some(
            [("gpu", "h\"100"), ("b", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        row.run = Some(serde_json::json!({"results": {}}));
        let h = head_of(&line_of(&row)).unwrap();
        assert_eq!(
            (h.test_id(), h.platform(), h.model(), h.timestamp()),
            ("t\u{e9}\"1", "ollama", "m", "2026-01-01T00:00:00Z")
        );
        assert_eq!(h.skipped(), None);
        assert_eq!(h.label("gpu"), Some("h\"100"));
        assert_eq!(h.label("b"), Some(""));
        assert_eq!(h.label("x"), None);
        assert_eq!(h.labels_map(), row.labels.clone().unwrap());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// A link in place of `analysis/catalog` is never read through, and a row whose file
    /// is a path (absolute, or `..`) makes the catalog unusable (rebuilt), never followed.
    #[test]
    fn a_linked_folder_and_a_path_in_a_row_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("s"));
        fs::create_dir_all(store.root().join("analysis")).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, store.root().join(CATALOG_DIR)).unwrap();
        assert!(read_parts(&store).is_err(), "a linked folder is refused");
        assert!(read_state(&store).is_none());
        fs::remove_file(store.root().join(CATALOG_DIR)).unwrap();
        fs::create_dir_all(store.root().join(CATALOG_DIR)).unwrap();
        for bad in ["/tmp/x.json", "../x.json", "a/b.json", ".x.json", "x.txt"] {
            assert!(!plain_json_name(bad), "{bad}");
        }
        assert!(plain_json_name("vllm-m-1-2026-12-03.json"));
        let file = "../x.json";
        let line = format!(
            "{{\"catalog\":{CATALOG_VERSION},\"file\":\"{file}\",\"stat\":{{\"ino\":1,\"size\":1,\"mtime\":1,\"mtime_nsec\":0}}}}\n"
        );
        let part = part_name(part_of(file));
        fs::write(store.root().join(CATALOG_DIR).join(part), line).unwrap();
        let err = read_parts(&store)
            .err()
            .expect("a path in a row is refused");
        assert!(err.contains("not a metadata file name"), "{err}");
    }
}
