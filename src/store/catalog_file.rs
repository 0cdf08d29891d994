//! The derived catalog `analysis/catalog.jsonl`: one JSON line per metadata file (its
//! name, inode, size and mtime, and the run's metadata without its bulky parts), so that
//! `query` and `compare` read one file instead of every metadata file, and a shared store
//! can be fetched as one object.
//!
//! It is never the only copy of anything: every row is rebuilt from `metadata/`. A reader
//! lists `metadata/` once (one `lstat` per entry), keeps each row whose recorded stat still
//! matches its file, re-reads only the files that changed or are new, drops the rows of
//! files that are gone, and rewrites the catalog atomically when anything changed (under the
//! store lock when it is free; a busy or read-only store is just not written). A missing
//! catalog is rebuilt; a corrupt one is rebuilt with a warning.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::schema::{Metadata, Status};
use crate::store::{FileStat, Runs, Store, atomic, nofollow, parallel_map, read_with_stat};

/// The catalog, relative to the store root.
pub const CATALOG_PATH: &str = "analysis/catalog.jsonl";
/// The row format; a catalog of another version is rebuilt.
pub const CATALOG_VERSION: u32 = 1;
/// A catalog larger than this is not read (rebuilt from the metadata instead).
const MAX_CATALOG_BYTES: u64 = 4 << 30;

/// One line of the catalog. The fields filters use come first, repeated from `run`
/// (handy columns for engines, and a reader that only filters parses just that head);
/// `run` comes last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// [`CATALOG_VERSION`].
    pub catalog: u32,
    /// The metadata file's name in `metadata/`.
    pub file: String,
    /// What the file was when this row was made from it.
    pub stat: FileStat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Why the file could not be used (readers skip it and say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The run, without the parts no listing uses (see [`trim`]); absent when the file
    /// could not be used. Read back like a metadata file: unknown figures are NaN.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "run_as_loaded"
    )]
    pub run: Option<Metadata>,
}

/// A row's run as `parse_metadata` gives it (figures a source lacked are NaN in memory).
fn run_as_loaded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Metadata>, D::Error> {
    let mut run = <Option<Metadata> as serde::Deserialize>::deserialize(d)?;
    if let Some(m) = run.as_mut() {
        m.results.apply_unknown();
    }
    Ok(run)
}

/// The head of a row: everything before `run`.
#[derive(Debug, Deserialize)]
pub struct Head {
    pub catalog: u32,
    pub file: String,
    pub stat: FileStat,
    #[serde(default)]
    pub test_id: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub skipped: Option<String>,
}

/// The run as the catalog keeps it: the metadata without the writer's process (`pid`,
/// `process`), the server's own description (`server`), the free-form top-level keys
/// (`extra`: the command, steady-state windows and the like) and the per-phase server
/// timings. Everything `query`'s headline figures, the filters, sorting, the comparison
/// table and the head-to-head use stays.
pub fn trim(m: &Metadata) -> Metadata {
    let mut t = m.clone();
    t.pid = None;
    t.process = None;
    t.server = None;
    t.extra.clear();
    t.results.server_timings = None;
    t
}

/// Where a line's bytes are: in the catalog as read, or made now.
#[derive(Debug)]
enum Src {
    Read(Range<usize>),
    Made(Vec<u8>),
}

/// The catalog in step with `metadata/`: one line per metadata file, in file-name order.
#[derive(Debug, Default)]
pub struct Catalog {
    buf: Vec<u8>,
    lines: Vec<(String, FileStat, Src)>,
    /// Metadata files read because their row was missing or stale.
    pub reread: usize,
    /// Rows dropped because their file is gone.
    pub dropped: usize,
    /// Whether the catalog file was (re)written.
    pub written: bool,
    /// Why the whole catalog was rebuilt (missing, corrupt, another version), if it was.
    pub rebuilt: Option<String>,
}

impl Catalog {
    /// How many rows (metadata files).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn line(&self, i: usize) -> &[u8] {
        match &self.lines[i].2 {
            Src::Read(r) => &self.buf[r.clone()],
            Src::Made(v) => v,
        }
    }

    /// Every row's head, parsed from the bytes before `run` only (in parallel).
    pub fn heads(&self) -> Vec<Head> {
        let idx: Vec<usize> = (0..self.len()).collect();
        parallel_map(&idx, |&i| head_of(self.line(i)).expect("checked when read"))
    }

    /// The full row `i`.
    pub fn row(&self, i: usize) -> Row {
        serde_json::from_slice(self.line(i)).expect("checked when read")
    }

    /// Every run (trimmed), oldest first, the skipped files, and the same fingerprint
    /// [`Store::load_all`] gives for these files.
    pub fn runs(&self, store: &Store) -> Runs {
        let idx: Vec<usize> = (0..self.len()).collect();
        let rows = parallel_map(&idx, |&i| self.row(i));
        let named = rows
            .into_iter()
            .map(|r| (r.file, r.stat, result_of(r.run, r.skipped)))
            .collect();
        store.collect_runs(named)
    }

    /// The fingerprint [`Store::load_all`] gives for these files (without parsing a row).
    pub fn fingerprint(&self, store: &Store) -> u64 {
        let named = self
            .lines
            .iter()
            .map(|(name, stat, _)| (name.clone(), *stat, Err(String::new())))
            .collect();
        store.collect_runs(named).fingerprint
    }
}

fn result_of(run: Option<Metadata>, skipped: Option<String>) -> Result<Metadata, String> {
    match run {
        Some(m) => Ok(m),
        None => Err(skipped.unwrap_or_else(|| "unusable".into())),
    }
}

/// The head of a line: the bytes before `,"run":{` (which cannot occur earlier: strings
/// escape their quotes and no head field holds an object of objects), closed with `}`;
/// the whole line when `run` is not last.
fn head_of(line: &[u8]) -> Result<Head, serde_json::Error> {
    match memchr::memmem::find(line, b",\"run\":{") {
        Some(at) => {
            let mut prefix = Vec::with_capacity(at + 1);
            prefix.extend_from_slice(&line[..at]);
            prefix.push(b'}');
            // Rewritten by another tool with its keys in another order: read it whole.
            match serde_json::from_slice::<Head>(&prefix) {
                Ok(h) if h.status.is_some() && !h.test_id.is_empty() => Ok(h),
                _ => serde_json::from_slice(line),
            }
        }
        None => serde_json::from_slice(line),
    }
}

/// Load every run through the catalog, bringing it in step with `metadata/` first (the
/// catalog is written only if the store lock is free now).
pub fn load(store: &Store) -> anyhow::Result<Catalog> {
    sync(store, false)
}

/// Bring an existing catalog in step with `metadata/`, the caller holding the store lock
/// (`derive::refresh` after a producer). No catalog yet: nothing is done (the first
/// `query` or `compare` builds it).
pub fn update_locked(store: &Store) -> anyhow::Result<Option<Catalog>> {
    if !store.root().join(CATALOG_PATH).exists() {
        return Ok(None);
    }
    sync(store, true).map(Some)
}

fn sync(store: &Store, locked: bool) -> anyhow::Result<Catalog> {
    store.check_layout()?;
    let listing = list(store)?;
    let (buf, read, rebuilt) = match read_lines(store) {
        Ok(Some((buf, lines))) => (buf, lines, None),
        Ok(None) => (
            Vec::new(),
            Vec::new(),
            Some("it did not exist yet".to_string()),
        ),
        Err(why) => (Vec::new(), Vec::new(), Some(why)),
    };
    if let Some(why) = rebuilt.as_deref().filter(|w| !w.starts_with("it did not")) {
        eprintln!(
            "warning: {} is unusable ({why}); rebuilding it from metadata/ (nothing is lost: it is derived)",
            store.root().join(CATALOG_PATH).display()
        );
    }
    let known = read.len();
    let mut by_name: HashMap<String, (FileStat, Range<usize>)> =
        read.into_iter().map(|(n, s, r)| (n, (s, r))).collect();
    // Each listed file: its row when the stat matches, else a fresh read.
    let mut lines: Vec<(String, FileStat, Option<Src>)> = Vec::with_capacity(listing.len());
    let mut stale: Vec<usize> = Vec::new();
    for (i, (name, stat)) in listing.into_iter().enumerate() {
        match (by_name.remove(&name), stat) {
            (Some((old, range)), Some(now)) if old == now => {
                lines.push((name, now, Some(Src::Read(range))))
            }
            (_, stat) => {
                lines.push((name, stat.unwrap_or_default(), None));
                stale.push(i);
            }
        }
    }
    let dropped = by_name.len();
    let dir = store.metadata_dir();
    let fresh = parallel_map(&stale, |&i| {
        let name = &lines[i].0;
        let (stat, result) = read_with_stat(&dir.join(name));
        (stat, line_of(&row_of(name, stat, result)))
    });
    let reread = fresh.len();
    for (i, (stat, line)) in stale.into_iter().zip(fresh) {
        lines[i].1 = stat;
        lines[i].2 = Some(Src::Made(line));
    }
    let mut cat = Catalog {
        buf,
        lines: lines
            .into_iter()
            .map(|(n, s, src)| (n, s, src.expect("every line filled")))
            .collect(),
        reread,
        dropped,
        written: false,
        rebuilt,
    };
    let changed = reread > 0 || dropped > 0 || cat.rebuilt.is_some() || known != cat.len();
    if changed {
        cat.written = write(store, &cat, locked);
    }
    Ok(cat)
}

/// A row from a fresh read of a metadata file. A file that could not be opened (a link,
/// a FIFO, no permission) has an all-zero stat, which no file has: it is read again next
/// time.
fn row_of(name: &str, stat: FileStat, result: Result<Metadata, String>) -> Row {
    let (run, skipped) = match result {
        Ok(m) => (Some(trim(&m)), None),
        Err(why) => (None, Some(why)),
    };
    Row {
        catalog: CATALOG_VERSION,
        file: name.to_string(),
        stat,
        test_id: run.as_ref().map(|m| m.test_id.clone()),
        timestamp: run.as_ref().map(|m| m.timestamp.clone()),
        platform: run.as_ref().map(|m| m.platform.clone()),
        model: run.as_ref().map(|m| m.model.clone()),
        status: run.as_ref().map(|m| m.status),
        labels: run.as_ref().map(|m| m.labels.clone()),
        skipped,
        run,
    }
}

/// A row as one compact JSON line (with its newline).
fn line_of(row: &Row) -> Vec<u8> {
    let mut out = serde_json::to_vec(row).expect("a row serializes");
    out.push(b'\n');
    out
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

/// The catalog's bytes and, per line, its file, stat and byte range (newline included):
/// `Ok(None)` when there is none, `Err(why)` when it cannot be used (unreadable, a line
/// whose head or whole does not parse, another version). Every line is parsed whole once
/// here (in parallel), so that later reads of it cannot fail.
fn read_lines(store: &Store) -> Result<Option<ReadLines>, String> {
    let path = store.root().join(CATALOG_PATH);
    let bytes = match nofollow::read_bounded(&path, MAX_CATALOG_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(format!("larger than {MAX_CATALOG_BYTES} bytes")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &bytes) {
        ranges.push(start..end + 1);
        start = end + 1;
    }
    if start < bytes.len() {
        return Err(format!(
            "line {}: cut short (no newline at its end)",
            ranges.len() + 1
        ));
    }
    let parsed = parallel_map(&ranges, |r| {
        let line = &bytes[r.clone()];
        let head = head_of(line).map_err(|e| e.to_string())?;
        if head.catalog != CATALOG_VERSION {
            return Err(format!(
                "catalog version {} (this benchkeep writes {CATALOG_VERSION})",
                head.catalog
            ));
        }
        serde_json::from_slice::<Row>(line).map_err(|e| e.to_string())?;
        Ok((head.file, head.stat))
    });
    let mut out = Vec::with_capacity(parsed.len());
    for (n, (p, r)) in parsed.into_iter().zip(ranges).enumerate() {
        match p {
            Ok((file, stat)) => out.push((file, stat, r)),
            Err(why) => return Err(format!("line {}: {why}", n + 1)),
        }
    }
    Ok(Some((bytes, out)))
}

type LineAt = (String, FileStat, Range<usize>);
/// The catalog's bytes and its lines.
type ReadLines = (Vec<u8>, Vec<LineAt>);

/// The catalog's rows (for `verify`): `Ok(None)` when there is none.
pub fn read_rows(store: &Store) -> Result<Option<Vec<Row>>, String> {
    let Some((buf, lines)) = read_lines(store)? else {
        return Ok(None);
    };
    Ok(Some(
        lines
            .into_iter()
            .map(|(_, _, r)| serde_json::from_slice(&buf[r]).expect("checked when read"))
            .collect(),
    ))
}

/// Write the catalog atomically if the caller holds the store lock or it is free right
/// now. Returns whether it was written; a busy lock or a store that cannot be written
/// leaves the old catalog (or none), which the next reader brings in step.
fn write(store: &Store, cat: &Catalog, locked: bool) -> bool {
    let _lock = if locked {
        None
    } else {
        match try_lock(store) {
            Some(l) => Some(l),
            None => return false,
        }
    };
    let path = store.root().join(CATALOG_PATH);
    // Never create a store (or its folders) by reading it.
    let dir = store.analysis_dir();
    if !store.metadata_dir().is_dir()
        || fs::create_dir_all(&dir).is_err()
        || store.check_layout().is_err()
    {
        return false;
    }
    let total = (0..cat.len()).map(|i| cat.line(i).len()).sum();
    let mut bytes = Vec::with_capacity(total);
    for i in 0..cat.len() {
        bytes.extend_from_slice(cat.line(i));
    }
    atomic::write_atomic(&path, &bytes).is_ok()
}

/// The store lock, if it is free now (never waits: a reader does not queue behind a
/// writer to refresh a cache).
fn try_lock(store: &Store) -> Option<File> {
    let path = store.root().join(".lock");
    let file = nofollow::open_with(
        &path,
        OpenOptions::new().create(true).truncate(false).write(true),
    )
    .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// How one catalog row disagrees with the store (for `verify`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The metadata file (or the catalog itself).
    pub file: String,
    pub message: String,
}

/// Compare the catalog with the metadata files, read-only: a row for a file that is gone,
/// a file without a row, a row whose stat or run differs from what the file holds now.
/// Empty when there is no catalog (it is optional). Returns the mismatches and the number
/// of rows checked.
pub fn check(store: &Store) -> anyhow::Result<(Vec<Mismatch>, usize)> {
    let rows = match read_rows(store) {
        Ok(Some(rows)) => rows,
        Ok(None) => return Ok((Vec::new(), 0)),
        Err(why) => {
            return Ok((
                vec![Mismatch {
                    file: CATALOG_PATH.into(),
                    message: format!("the catalog is unusable: {why}"),
                }],
                0,
            ));
        }
    };
    let checked = rows.len();
    let listing = list(store)?;
    let mut by_name: HashMap<&str, &Row> = rows.iter().map(|r| (r.file.as_str(), r)).collect();
    let dir = store.metadata_dir();
    let mut out = Vec::new();
    for (name, _) in &listing {
        let Some(row) = by_name.remove(name.as_str()) else {
            out.push(Mismatch {
                file: name.clone(),
                message: "has no row in the catalog".into(),
            });
            continue;
        };
        let (stat, result) = read_with_stat(&dir.join(name));
        let now = row_of(name, stat, result);
        let same_run = match (&row.run, &now.run) {
            (Some(a), Some(b)) => serde_json::to_value(a).ok() == serde_json::to_value(b).ok(),
            (None, None) => true,
            _ => false,
        };
        if !same_run {
            out.push(Mismatch {
                file: name.clone(),
                message: "its catalog row differs from the metadata file".into(),
            });
        } else if row.stat != now.stat {
            out.push(Mismatch {
                file: name.clone(),
                message: "its catalog row was made from an older version of the file (size, mtime or inode differ)".into(),
            });
        }
    }
    let mut gone: Vec<&str> = by_name.into_keys().collect();
    gone.sort_unstable();
    for name in gone {
        out.push(Mismatch {
            file: name.to_string(),
            message: "has a catalog row but no metadata file".into(),
        });
    }
    Ok((out, checked))
}
