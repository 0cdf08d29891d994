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
    (crate::digest::fnv1a(file.as_bytes()) % PARTS as u64) as usize
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
#[derive(Debug)]
pub struct LineAt {
    pub head: Head,
    pub part: usize,
    pub range: Range<usize>,
}

/// A plain file name of `metadata/`: no separator, no leading dot, no NUL, ends in `.json`.
fn plain_json_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The parts as read: their lines (part by part, each part's in file-name order), each
/// part's open file and, when asked for, its bytes, and each part's name and size (what
/// the state must list for them to be trusted).
#[derive(Default)]
pub struct Parts {
    /// Each part's bytes (indexed by part number) when kept; empty otherwise.
    pub bufs: Vec<Vec<u8>>,
    /// Each part's open file (indexed by part number): a line is read again from it
    /// without holding the bytes. A part replaced meanwhile is renamed over, so the open
    /// file still holds exactly what was read.
    pub files: Vec<Option<File>>,
    pub lines: Vec<LineAt>,
    pub sizes: Vec<(String, u64)>,
    /// A part holds two rows for one file (edited by hand).
    pub dup: bool,
    /// A row is not in the part its file name hashes to (edited by hand).
    pub misplaced: bool,
}

thread_local! {
    /// One buffer per reading thread: a part read only for its heads does not take fresh
    /// memory (at 100,000 rows, 90 MB of first-touched pages were half of a query).
    static PART_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Read `len` bytes of an open part into `buf` (its contents replaced).
pub fn read_part(file: &File, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    buf.clear();
    buf.resize(len, 0);
    file.read_exact_at(buf, 0)
}

/// `f` of the first `len` bytes of an open part, read into this thread's buffer (`None`
/// when they cannot be read now).
pub fn with_part_bytes<R>(file: &File, len: usize, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    PART_BUF.with_borrow_mut(|buf| match read_part(file, len, buf) {
        Ok(()) => f(Some(buf)),
        Err(_) => f(None),
    })
}

/// What one part gave: its lines (head, range), whether two name one file, whether a
/// row is not in the part its file name hashes to.
type PartLines = (Vec<(Head, Range<usize>)>, bool, bool);

/// Split one part's bytes into lines and parse their heads, checking each row: this
/// version, a plain metadata file name; sorted by file name (a part that is not is sorted
/// here); whether each is in the part its name hashes to (only then can a file's second
/// row be found within its part).
fn part_lines(part: usize, name: &str, bytes: &[u8]) -> Result<PartLines, String> {
    // Sized once: growing it touched its memory twice over.
    let mut out: Vec<(Head, Range<usize>)> =
        Vec::with_capacity(memchr::memchr_iter(b'\n', bytes).count());
    let mut misplaced = false;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes) {
        let line_no = out.len() + 1;
        let head =
            head_of(&bytes[start..=end]).map_err(|e| format!("{name} line {line_no}: {e}"))?;
        if head.catalog != CATALOG_VERSION {
            return Err(format!(
                "{name} line {line_no}: catalog version {} (this benchkeep writes {CATALOG_VERSION})",
                head.catalog
            ));
        }
        // A row names its metadata file: a plain `*.json` name, never a path (`metadata/`
        // joined with `/x` or `../x` would leave the store).
        if !plain_json_name(head.file()) {
            return Err(format!(
                "{name} line {line_no}: {:?} is not a metadata file name",
                head.file()
            ));
        }
        misplaced |= part_of(head.file()) != part;
        out.push((head, start..end + 1));
        start = end + 1;
    }
    if start < bytes.len() {
        return Err(format!(
            "{name} line {}: cut short (no newline at its end)",
            out.len() + 1
        ));
    }
    if !out.windows(2).all(|w| w[0].0.file() <= w[1].0.file()) {
        out.sort_by(|a, b| a.0.file().cmp(b.0.file()));
    }
    let dup = out.windows(2).any(|w| w[0].0.file() == w[1].0.file());
    Ok((out, dup, misplaced))
}

/// Read every part (in parallel): `Ok(None)` when there is no catalog folder, `Err(why)`
/// when a part cannot be used (unreadable, a cut line, a head that does not parse,
/// another version, a row in the wrong part). Only heads are parsed here; a row whose
/// `run` does not parse is read again from its metadata file by whoever needs it. With
/// `keep`, the parts' bytes are kept (for whoever reads most rows whole); without, only
/// the heads and the open files.
pub fn read_parts(store: &Store, keep: bool) -> Result<Option<Parts>, String> {
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
    let mut opened: Vec<(usize, String, File, usize)> = Vec::with_capacity(names.len());
    let mut held = 0u64;
    for name in names {
        let Some(part) = (0..PARTS).find(|&p| part_name(p) == name) else {
            return Err(format!("{name}: not a part this benchkeep writes"));
        };
        let file = nofollow::open_read(&dir.join(&name))
            .map_err(|e| format!("{name}: cannot read: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("{name}: cannot read: {e}"))?
            .len();
        // Bounded as a whole, not only per part: 64 planted parts must not take 64 GiB.
        held += len;
        if held > MAX_PART_BYTES {
            return Err(format!("the parts hold more than {MAX_PART_BYTES} bytes"));
        }
        opened.push((part, name, file, len as usize));
    }
    let read = parallel_map(&opened, |(part, name, file, len)| {
        let parse = |buf: &mut Vec<u8>| {
            read_part(file, *len, buf).map_err(|e| format!("{name}: cannot read: {e}"))?;
            part_lines(*part, name, buf)
        };
        if keep {
            let mut bytes = Vec::new();
            parse(&mut bytes).map(|l| (l, bytes))
        } else {
            PART_BUF.with_borrow_mut(|buf| parse(buf).map(|l| (l, Vec::new())))
        }
    });
    let mut parts = Parts {
        bufs: vec![Vec::new(); PARTS],
        files: (0..PARTS).map(|_| None).collect(),
        ..Parts::default()
    };
    parts.lines.reserve_exact(
        read.iter()
            .map(|r| r.as_ref().map_or(0, |((l, _, _), _)| l.len()))
            .sum(),
    );
    for ((part, name, file, len), got) in opened.into_iter().zip(read) {
        let ((lines, dup, misplaced), bytes) = got?;
        parts.dup |= dup;
        parts.misplaced |= misplaced;
        parts.lines.extend(
            lines
                .into_iter()
                .map(|(head, range)| LineAt { head, part, range }),
        );
        parts.sizes.push((name, len as u64));
        parts.bufs[part] = bytes;
        parts.files[part] = Some(file);
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
        assert!(
            read_parts(&store, true).is_err(),
            "a linked folder is refused"
        );
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
        let err = read_parts(&store, false)
            .err()
            .expect("a path in a row is refused");
        assert!(err.contains("not a metadata file name"), "{err}");
    }
}
