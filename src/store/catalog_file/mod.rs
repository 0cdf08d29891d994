//! The derived catalog `analysis/catalog/part-NN.jsonl`: one small JSON line per metadata
//! file (its name and stat, the fields filters use and the run's headline figures), so
//! that `query` and `compare` read a few files instead of every metadata file, and a
//! shared store serves it as a few objects.
//!
//! It is never the only copy of anything: every row is rebuilt from `metadata/`. The
//! staleness check is cheap: the state file records the `metadata/` folder's inode, size
//! and mtime as they were before the listing the parts reflect; while they are the same
//! (and that listing was not racy: `disk::RACY_NS`) the rows are trusted without looking
//! at any metadata file. Otherwise `metadata/` is listed (one `lstat` per entry), each row
//! whose recorded stat still matches its file is kept, only new or changed files are
//! read, rows of files that are gone are dropped, and only the parts holding a changed row
//! are rewritten (atomically, under the store lock when it is free; a busy or read-only
//! store is just not written). A missing catalog is rebuilt; a corrupt one is rebuilt
//! with a warning. The hole: a metadata file edited in place (not replaced by rename)
//! does not move the folder's mtime, so its row stays until the next listing; `verify`
//! reports it, and deleting `analysis/catalog/` rebuilds it.

mod check;
pub mod disk;
pub mod lean;
pub mod row;
mod scan;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;

use serde_json::Value;

use crate::schema::Metadata;
use crate::store::{
    Runs, Skipped, Store, oldest_first, parallel_fill, parallel_map, read_with_stat,
};

pub use check::{Mismatch, check};
pub use disk::{CATALOG_DIR, OLD_CATALOG, STATE_FILE};
pub use row::{CATALOG_VERSION, Head, Row, project};

use disk::{LineAt, PARTS, State, part_of, with_part_bytes};
use row::{head_of, line_of, row_of};

/// The `part` of a line made now (from its metadata file), not read from a part: its
/// `range.start` is its index in [`Catalog::made`].
const MADE: usize = usize::MAX;

/// How a reader knew its rows were in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// By the state file alone: `metadata/` had not changed (no file looked at).
    State,
    /// By listing `metadata/` (one `lstat` per file).
    Listing,
}

/// The catalog in step with `metadata/`: one line per metadata file (part by part; in
/// file-name order within a part, [`Catalog::ordered`] for the whole).
#[derive(Debug)]
pub struct Catalog {
    /// Each part's open file (by part number): lines are read from it when needed, never
    /// held all at once.
    files: Vec<Option<File>>,
    /// The rows, as read (no copy of what the parts gave) or made ([`MADE`]).
    lines: Vec<LineAt>,
    /// The bytes of the rows made now.
    made: Vec<Vec<u8>>,
    /// How the rows were found in step.
    pub checked: Checked,
    /// Metadata files read because their row was missing or stale.
    pub reread: usize,
    /// Rows dropped because their file is gone.
    pub dropped: usize,
    /// Whether any part (or the state) was written.
    pub written: bool,
    /// Why the whole catalog was rebuilt (missing, corrupt, another version), if it was.
    pub rebuilt: Option<String>,
    /// [`Catalog::fingerprint`], once computed (it sorts every file name).
    fingerprint: std::sync::OnceLock<u64>,
}

impl Catalog {
    /// How many rows (metadata files).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Row `i`'s bytes, read again from its part when it came from one (`None`: the part
    /// cannot be read now, e.g. cut short in place by hand).
    fn line(&self, i: usize) -> Option<Cow<'_, [u8]>> {
        use std::os::unix::fs::FileExt;
        let l = &self.lines[i];
        if l.part == MADE {
            return Some(Cow::Borrowed(&self.made[l.range.start]));
        }
        let file = self.files.get(l.part)?.as_ref()?;
        let mut v = vec![0; l.range.len()];
        file.read_exact_at(&mut v, l.range.start as u64).ok()?;
        Some(Cow::Owned(v))
    }

    /// `f` of rows `idx` with their bytes, in `idx`'s order: each part read once (into a
    /// buffer its thread reuses), the parts in parallel.
    fn each_line<R: Send>(
        &self,
        idx: &[usize],
        f: impl Fn(usize, Option<&[u8]>) -> R + Sync,
    ) -> Vec<R> {
        let mut by_part: Vec<Vec<(usize, usize)>> = vec![Vec::new(); PARTS + 1];
        for (k, &i) in idx.iter().enumerate() {
            by_part[self.lines[i].part.min(PARTS)].push((k, i));
        }
        let groups: Vec<usize> = (0..=PARTS).filter(|&p| !by_part[p].is_empty()).collect();
        let done = parallel_map(&groups, |&p| {
            let rows = &by_part[p];
            let run = |bytes: Option<&[u8]>| -> Vec<(usize, R)> {
                rows.iter()
                    .map(|&(k, i)| {
                        let l = &self.lines[i];
                        let line = match bytes {
                            _ if l.part == MADE => Some(self.made[l.range.start].as_slice()),
                            Some(b) => b.get(l.range.clone()),
                            None => None,
                        };
                        (k, f(i, line))
                    })
                    .collect()
            };
            if p >= PARTS {
                return run(None);
            }
            let len = rows
                .iter()
                .map(|&(_, i)| self.lines[i].range.end)
                .max()
                .unwrap_or(0);
            match self.files[p].as_ref() {
                Some(file) => with_part_bytes(file, len, run),
                None => run(None),
            }
        });
        let mut out: Vec<Option<R>> = (0..idx.len()).map(|_| None).collect();
        for (k, r) in done.into_iter().flatten() {
            out[k] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("every row done"))
            .collect()
    }

    /// The rows in file-name order, as indices.
    pub fn ordered(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by(|&a, &b| self.head(a).file().cmp(self.head(b).file()));
        idx
    }

    /// Row `i`'s head (name, stat, the fields filters use).
    pub fn head(&self, i: usize) -> &Head {
        &self.lines[i].head
    }

    /// Row `i`'s headline figures ([`project`]) with the head's fields at the top, as a
    /// run to look figures up in; `None` for a file that could not be used or a row that
    /// does not parse (ask the metadata file then).
    pub fn run_value(&self, i: usize) -> Option<Value> {
        let line = self.line(i)?;
        let Value::Object(mut row) = serde_json::from_slice::<Value>(&line).ok()? else {
            return None;
        };
        let Some(Value::Object(mut run)) = row.remove("run") else {
            return None;
        };
        for key in row::HEAD_KEYS {
            if let Some(v) = row.remove(*key) {
                run.insert((*key).to_string(), v);
            }
        }
        Some(Value::Object(run))
    }

    /// Every run as a lean `Metadata` built from its row (`lean::lean_metadata`: enough
    /// for the comparison table, its sorts and the head-to-head), oldest first, the
    /// skipped files, and the fingerprint [`Store::load_all`] gives for these files. A
    /// row that does not parse is replaced by a read of its metadata file.
    ///
    /// The heads give each run its place before any run is built (oldest first, as
    /// `Store::load_all` sorts), so each run is built once, in the slot it keeps: at
    /// 100,000 runs, building them on threads and then moving them into one list was
    /// most of `compare`'s time (the kernel zeroing fresh memory for each copy).
    pub fn runs(&self, store: &Store) -> Runs {
        let dir = store.metadata_dir();
        let mut skipped = Vec::new();
        let mut live = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            match self.head(i).skipped() {
                Some(why) => skipped.push((self.head(i).file().to_string(), why.to_string())),
                None => live.push(i),
            }
        }
        let keys: Vec<(&str, &str)> = live
            .iter()
            .map(|&i| (self.head(i).timestamp(), self.head(i).test_id()))
            .collect();
        let slots: Vec<usize> = oldest_first(&keys).into_iter().map(|k| live[k]).collect();
        drop(keys);
        let template = lean::template();
        let mut runs: Vec<Metadata> = vec![template; slots.len()];
        // Rows whose line did not give a run: their metadata file's own reading.
        let fallback = std::sync::Mutex::new(Vec::new());
        parallel_fill(&mut runs, |first, chunk| {
            // Each thread reads every part its chunk has rows in (nearly all: parts go by
            // file name, chunks by time), once, into its reused buffer.
            let mut by_part: Vec<(usize, usize)> = (0..chunk.len())
                .map(|j| (self.lines[slots[first + j]].part, j))
                .collect();
            by_part.sort_unstable();
            let mut failed = Vec::new();
            for rows in by_part.chunk_by(|a, b| a.0 == b.0) {
                let part = rows[0].0;
                let mut fill = |bytes: Option<&[u8]>| {
                    for &(_, j) in rows {
                        let l = &self.lines[slots[first + j]];
                        let line = match bytes {
                            _ if part == MADE => Some(self.made[l.range.start].as_slice()),
                            Some(b) => b.get(l.range.clone()),
                            None => None,
                        };
                        if !line.is_some_and(|line| lean::fill_lean(line, &mut chunk[j])) {
                            failed.push(first + j);
                        }
                    }
                };
                match self.files.get(part).and_then(Option::as_ref) {
                    Some(file) if part != MADE => {
                        let len = rows
                            .iter()
                            .map(|&(_, j)| self.lines[slots[first + j]].range.end);
                        with_part_bytes(file, len.max().unwrap_or(0), fill)
                    }
                    _ => fill(None),
                }
            }
            fallback.lock().expect("no reader panicked").extend(failed);
        });
        let mut fallback = fallback.into_inner().expect("no reader panicked");
        // The stat of each file read now, for the fingerprint (as `Store::load_all`).
        let mut fresh = HashMap::new();
        if !fallback.is_empty() {
            // Rare (a part cut short in place, a row of a future layout): read those
            // files, and drop the runs that cannot be used from the list.
            fallback.sort_unstable();
            let mut keep = vec![true; runs.len()];
            for &k in &fallback {
                let file = self.head(slots[k]).file();
                let (stat, read) = read_with_stat(&dir.join(file));
                fresh.insert(slots[k], stat);
                match read {
                    Ok(m) => runs[k] = m,
                    Err(why) => {
                        keep[k] = false;
                        skipped.push((file.to_string(), why));
                    }
                }
            }
            let mut k = 0;
            runs.retain(|_| {
                k += 1;
                keep[k - 1]
            });
            // A file read now may name another time or id than its row did.
            crate::store::sort_oldest_first(&mut runs);
        }
        skipped.sort();
        Runs {
            runs,
            skipped: skipped
                .into_iter()
                .map(|(file, reason)| Skipped {
                    path: dir.join(file),
                    reason,
                })
                .collect(),
            fingerprint: if fresh.is_empty() {
                self.fingerprint()
            } else {
                crate::store::fingerprint(self.ordered().into_iter().map(|i| {
                    let h = self.head(i);
                    (h.file(), fresh.get(&i).copied().unwrap_or(h.stat))
                }))
            },
        }
    }

    /// The fingerprint [`Store::load_all`] gives for these files (without parsing a row).
    pub fn fingerprint(&self) -> u64 {
        *self.fingerprint.get_or_init(|| {
            let heads = self.ordered().into_iter().map(|i| self.head(i));
            crate::store::fingerprint(heads.map(|h| (h.file(), h.stat)))
        })
    }
}

/// Load the catalog, bringing it in step with `metadata/` first (written only if the
/// store lock is free now).
pub fn load(store: &Store) -> anyhow::Result<Catalog> {
    sync(store, false)
}

/// Bring an existing catalog in step with `metadata/`, the caller holding the store lock
/// (`derive::refresh` after a producer): the rows of the files that changed, in the parts
/// that hold them. No catalog yet: nothing is done (the first `query` or `compare` builds
/// it).
pub fn update_locked(store: &Store) -> anyhow::Result<Option<Catalog>> {
    if !store.root().join(CATALOG_DIR).is_dir() {
        return Ok(None);
    }
    sync(store, true).map(Some)
}

fn sync(store: &Store, locked: bool) -> anyhow::Result<Catalog> {
    store.check_layout()?;
    // Before anything is read: a change made while we read moves it past what we record.
    let dir0 = disk::dir_stat(store);
    let state = disk::read_state(store);
    let (parts, rebuilt) = match disk::read_parts(store, false) {
        Ok(Some(p)) => (p, None),
        Ok(None) => (
            disk::Parts::default(),
            Some("it did not exist yet".to_string()),
        ),
        Err(why) => (disk::Parts::default(), Some(why)),
    };
    if let Some(why) = rebuilt.as_deref().filter(|w| !w.starts_with("it did not")) {
        eprintln!(
            "warning: the catalog {} is unusable ({why}); rebuilding it from metadata/ (nothing is lost: it is derived)",
            store.root().join(CATALOG_DIR).display()
        );
    }
    let trusted = rebuilt.is_none()
        && dir0.is_some()
        && state.as_ref().is_some_and(|s| {
            s.catalog == CATALOG_VERSION && Some(s.dir) == dir0 && !s.racy && s.parts == parts.sizes
        });
    let disk::Parts {
        files,
        lines: read,
        sizes,
        dup,
        misplaced,
        ..
    } = parts;
    if dup {
        // Two rows for one file (parts edited by hand): list and rewrite every part.
        return relist(
            store,
            locked,
            dir0,
            files,
            Vec::new(),
            sizes,
            Some("a file has two rows".into()),
        );
    }
    if misplaced {
        // A row out of its part: every part is rewritten (rows whose file did not change
        // are kept; a second row of a file is found by name across parts).
        let why = Some("a row is not in its part".to_string());
        return relist(store, locked, dir0, files, read, sizes, why);
    }
    if trusted {
        // Each part's rows come sorted and a file's row can only be in its own part: no
        // sort of the whole, no search for a second row of a file across parts.
        return Ok(Catalog {
            files,
            lines: read,
            made: Vec::new(),
            checked: Checked::State,
            reread: 0,
            dropped: 0,
            written: false,
            rebuilt: None,
            fingerprint: Default::default(),
        });
    }
    relist(store, locked, dir0, files, read, sizes, rebuilt)
}

/// The listing path: keep rows whose stat matches, read the rest, rewrite what changed.
fn relist(
    store: &Store,
    locked: bool,
    dir0: Option<disk::DirStat>,
    files: Vec<Option<File>>,
    read: Vec<LineAt>,
    sizes: Vec<(String, u64)>,
    rebuilt: Option<String>,
) -> anyhow::Result<Catalog> {
    let listing = disk::list(store)?;
    let mut by_name: HashMap<String, LineAt> = HashMap::with_capacity(read.len());
    let mut dup = false;
    for l in read {
        if let Some(_twice) = by_name.insert(l.head.file().to_string(), l) {
            dup = true;
        }
    }
    let mut lines: Vec<Option<LineAt>> = Vec::with_capacity(listing.len());
    let mut stale: Vec<(usize, String)> = Vec::new();
    let mut changed: BTreeSet<usize> = BTreeSet::new();
    for (i, (name, stat)) in listing.into_iter().enumerate() {
        match (by_name.remove(&name), stat) {
            (Some(l), Some(now)) if l.head.stat == now => lines.push(Some(l)),
            _ => {
                changed.insert(part_of(&name));
                lines.push(None);
                stale.push((i, name));
            }
        }
    }
    let dropped = by_name.len();
    changed.extend(by_name.keys().map(|n| part_of(n)));
    let dir = store.metadata_dir();
    let fresh = parallel_map(&stale, |(_, name)| {
        let (stat, result) = read_with_stat(&dir.join(name));
        let line = line_of(&row_of(name, stat, result));
        let head = head_of(&line).expect("a row just made parses");
        (head, line)
    });
    let reread = fresh.len();
    let mut made = Vec::with_capacity(fresh.len());
    for ((i, _), (head, line)) in stale.into_iter().zip(fresh) {
        let range = made.len()..made.len() + 1;
        made.push(line);
        lines[i] = Some(LineAt {
            head,
            part: MADE,
            range,
        });
    }
    let mut cat = Catalog {
        files,
        lines: lines
            .into_iter()
            .map(|l| l.expect("every line filled"))
            .collect(),
        made,
        checked: Checked::Listing,
        reread,
        dropped,
        written: false,
        rebuilt,
        fingerprint: Default::default(),
    };
    if cat.rebuilt.is_some() || dup {
        changed.extend(0..PARTS);
    }
    cat.written = write(store, &cat, locked, dir0, &changed, sizes);
    Ok(cat)
}

/// Write the changed parts and the state, if the caller holds the store lock or it is
/// free right now. Returns whether it was written.
fn write(
    store: &Store,
    cat: &Catalog,
    locked: bool,
    dir0: Option<disk::DirStat>,
    changed: &BTreeSet<usize>,
    sizes: Vec<(String, u64)>,
) -> bool {
    let Some(dir0) = dir0 else { return false };
    let _lock = if locked {
        None
    } else {
        match disk::try_lock(store) {
            Some(l) => Some(l),
            None => return false,
        }
    };
    let mut bytes: BTreeMap<usize, Vec<u8>> = changed.iter().map(|&p| (p, Vec::new())).collect();
    // Only the changed parts' rows, in file-name order (as each part keeps them).
    let mut idx: Vec<usize> = (0..cat.len())
        .filter(|&i| bytes.contains_key(&part_of(cat.head(i).file())))
        .collect();
    idx.sort_by(|&a, &b| cat.head(a).file().cmp(cat.head(b).file()));
    let lines = cat.each_line(&idx, |_, line| line.map(<[u8]>::to_vec));
    for (&i, line) in idx.iter().zip(lines) {
        // A part that cannot be read again now: the catalog is not written.
        let Some(line) = line else { return false };
        if let Some(out) = bytes.get_mut(&part_of(cat.head(i).file())) {
            out.extend_from_slice(&line);
        }
    }
    let names: BTreeSet<String> = changed.iter().map(|&p| disk::part_name(p)).collect();
    let kept = sizes
        .into_iter()
        .filter(|(n, _)| !names.contains(n))
        .collect();
    let changed: Vec<(usize, Vec<u8>)> = bytes.into_iter().collect();
    disk::write_parts(store, &changed, |s| State::after_listing(dir0, s), kept)
}

/// The catalog's rows (for `verify`): `Ok(None)` when there is none; a row that does not
/// parse is an error.
pub fn read_rows(store: &Store) -> Result<Option<Vec<Row>>, String> {
    let Some(parts) = disk::read_parts(store, true)? else {
        return Ok(None);
    };
    let mut rows = Vec::with_capacity(parts.lines.len());
    for l in &parts.lines {
        let line = &parts.bufs[l.part][l.range.clone()];
        rows.push(serde_json::from_slice(line).map_err(|e| {
            format!(
                "{}: the row of {}: {e}",
                disk::part_name(l.part),
                l.head.file()
            )
        })?);
    }
    rows.sort_by(|a: &Row, b: &Row| a.file.cmp(&b.file));
    Ok(Some(rows))
}

/// A whole run as its metadata file holds it now, by file name.
pub fn read_whole(store: &Store, file: &str) -> Result<Metadata, String> {
    Store::read_metadata(&store.metadata_dir().join(file))
}
