//! The benchmark store: the seed's `benchmarks/{raw,metadata,analysis,reports}` layout.
//!
//! The store owns every path under its root and every write of a run. Metadata files are
//! the database; `analysis/` and `reports/` are derived from them by [`crate::derive`],
//! under the store's lock. Nothing here ever deletes or overwrites a run: new runs get
//! fresh ids by exclusive creation, and metadata is only ever replaced atomically by the
//! process that owns it. Many new runs at once (`import`) are written by group commit ([`batch`]): one sync for a
//! batch of files, data before the metadata that names it.

pub mod archive;
pub mod atomic;
pub mod batch;
pub mod catalog_file;
pub mod ids;
mod metafile;
pub mod nofollow;
mod order;
pub use metafile::{FileStat, MAX_METADATA_BYTES, is_store_relative, parse_metadata, to_json};
pub(crate) use metafile::{fingerprint, read_with_stat};
pub mod outfile;
pub mod process;
pub mod remote;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::{Error, is_resource_error};
use crate::schema::Metadata;

pub(crate) use order::sort_oldest_first;
pub use order::{Oldest, oldest_first, parallel_fill, parallel_map, permute_in_place};

/// The environment variable that names the store when `--store` is not given.
pub const STORE_ENV: &str = "BENCHKEEP_STORE";
/// The default store directory, relative to the current directory.
pub const DEFAULT_STORE: &str = "benchmarks";

/// A store rooted at a directory (for a store at a URL: its local working copy, whose
/// new ids are also reserved remotely through `reserver`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    reserver: Option<std::sync::Arc<dyn ids::Reserver>>,
}

/// A metadata file that readers skipped, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Every readable run in the store, oldest first, and the files that were skipped.
#[derive(Debug, Default)]
pub struct Runs {
    pub runs: Vec<Metadata>,
    pub skipped: Vec<Skipped>,
    /// Identifies the exact set of metadata files read (names, inodes, sizes, mtimes):
    /// derived files built from the same fingerprint need no rebuild.
    pub fingerprint: u64,
}

impl Runs {
    /// Print one warning line per skipped file to stderr.
    pub fn warn_skipped(&self) {
        for s in &self.skipped {
            eprintln!("warning: skipped {}: {}", s.path.display(), s.reason);
        }
    }
}

/// Holds the store-wide advisory lock until dropped.
pub struct StoreLock {
    _file: File,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store {
            root: root.into(),
            reserver: None,
        }
    }

    /// This store, with every new id also claimed from `reserver` before it is used.
    pub fn with_reserver(mut self, reserver: std::sync::Arc<dyn ids::Reserver>) -> Self {
        self.reserver = Some(reserver);
        self
    }

    /// URL store: another process on this spool mirrored the object our create-if-absent
    /// put of `bytes` just made; it is ours (taking the next id would orphan this one).
    fn mirrors_our_reservation(&self, path: &Path, bytes: &[u8]) -> bool {
        let on_disk = || {
            nofollow::read_bounded(path, MAX_METADATA_BYTES)
                .ok()
                .flatten()
        };
        self.reserver.is_some() && on_disk().is_some_and(|b| b == bytes)
    }

    /// Claim `id` from the reserver, if there is one (always ours without one).
    fn reserve(&self, id: &str, bytes: &[u8]) -> Result<bool> {
        match &self.reserver {
            Some(r) => r.reserve(id, bytes),
            None => Ok(true),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn raw_dir(&self) -> PathBuf {
        self.root.join("raw")
    }
    pub fn metadata_dir(&self) -> PathBuf {
        self.root.join("metadata")
    }
    pub fn analysis_dir(&self) -> PathBuf {
        self.root.join("analysis")
    }
    pub fn reports_dir(&self) -> PathBuf {
        self.root.join("reports")
    }
    pub fn metadata_path(&self, test_id: &str) -> PathBuf {
        self.metadata_dir().join(format!("{test_id}.json"))
    }
    /// The raw file of a run, relative to the store root, as `test.output_file` records it.
    pub fn raw_rel(test_id: &str) -> String {
        format!("raw/{test_id}.jsonl")
    }
    /// Resolve a store-relative path (`raw/x.jsonl`) to a real path.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Create the four directories if needed. Fails with a store error (exit 4) that says
    /// what to fix when the location cannot be written.
    pub fn ensure_layout(&self) -> Result<()> {
        self.check_layout()?;
        for dir in [
            self.raw_dir(),
            self.metadata_dir(),
            self.analysis_dir(),
            self.reports_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| store_io(&dir, "create directory", e))?;
        }
        self.check_layout()?;
        // Fail early on a read-only store, before any work is done.
        let probe = atomic::temp_path_for(&self.metadata_dir().join("probe"));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| store_io(&self.metadata_dir(), "write to", e))?;
        let _ = fs::remove_file(&probe);
        Ok(())
    }

    /// The store's own folders (`raw metadata analysis reports reports/charts`) that exist
    /// but are not real directories (a symlink, even to a directory, a file, a FIFO), and
    /// a root that exists but is not a directory: each path with what is wrong.
    pub fn layout_problems(&self) -> Vec<(PathBuf, String)> {
        let mut problems = Vec::new();
        match fs::metadata(&self.root) {
            // Not there (yet), or not reachable: creating it says what is wrong.
            Err(_) => return problems,
            Ok(m) if !m.is_dir() => {
                problems.push((
                    self.root.clone(),
                    format!(
                        "the store {} is {}, not a directory; give --store a directory",
                        self.root.display(),
                        nofollow::kind_of(m.file_type())
                    ),
                ));
                return problems;
            }
            _ => {}
        }
        for dir in self.layout_dirs() {
            if let Err(why) = nofollow::real_dir(&dir) {
                problems.push((dir, why));
            }
        }
        problems
    }

    fn layout_dirs(&self) -> [PathBuf; 5] {
        [
            self.raw_dir(),
            self.metadata_dir(),
            self.analysis_dir(),
            self.reports_dir(),
            self.reports_dir().join("charts"),
        ]
    }

    /// Refuse (exit 4) a store whose root is not a directory or whose own folders are
    /// symlinks or other non-directories (RELIABILITY P11): checked before any read or
    /// write of the store.
    pub fn check_layout(&self) -> Result<()> {
        match self.layout_problems().into_iter().next() {
            None => Ok(()),
            Some((_, why)) => Err(Error::StoreIo(why).into()),
        }
    }

    /// Take the store-wide advisory lock (blocks until it is free).
    pub fn lock(&self) -> Result<StoreLock> {
        self.check_layout()?;
        let path = self.root.join(".lock");
        let file = nofollow::open_with(
            &path,
            OpenOptions::new().create(true).truncate(false).write(true),
        )
        .map_err(|e| store_io(&path, "open lock file", e))?;
        file.lock().map_err(|e| store_io(&path, "lock", e))?;
        Ok(StoreLock { _file: file })
    }

    /// Publish a new run's metadata under a fresh id: `base`, then `base-2`, `base-3`, ...
    /// The id is reserved by exclusive creation of `metadata/<id>.json` (with the complete
    /// content, atomically), skipping ids whose raw file already exists. `meta.test_id` is
    /// set to the chosen id, and so is `meta.test.output_file` when it was left empty (the
    /// raw file will be `raw/<test_id>.jsonl`). Returns the metadata path.
    pub fn publish_new(&self, base: &str, meta: &mut Metadata) -> Result<PathBuf> {
        let own_raw = meta.test.output_file.is_empty();
        for n in self.first_free(base)..=100_000u32 {
            let id = ids::candidate(base, n);
            if self.raw_dir().join(format!("{id}.jsonl")).exists() {
                continue;
            }
            meta.test_id = id.clone();
            if own_raw {
                meta.test.output_file = Self::raw_rel(&id);
            }
            let path = self.metadata_path(&id);
            let bytes = to_json(meta)?;
            if path.exists() || !self.reserve(&id, &bytes)? {
                continue;
            }
            match atomic::publish_new(&path, &bytes) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if self.mirrors_our_reservation(&path, &bytes) {
                        return Ok(path);
                    } // else: the next id
                }
                Err(e) => return Err(store_io(&path, "write", e)),
            }
        }
        Err(Error::StoreIo(format!(
            "no free test id for {base} in {}",
            self.root.display()
        ))
        .into())
    }

    /// Where to look for a free id of `base`: ids are taken in order, so a galloping then
    /// binary search finds the end of the taken run in O(log n) checks (trying every id was
    /// quadratic for big imports). A hole may be passed over; the exclusive create decides.
    fn first_free(&self, base: &str) -> u32 {
        let taken = |n: u32| {
            let id = ids::candidate(base, n);
            self.raw_dir().join(format!("{id}.jsonl")).exists() || self.metadata_path(&id).exists()
        };
        if !taken(1) {
            return 1;
        }
        let (mut lo, mut hi) = (1u32, 2u32);
        while hi < 100_000 && taken(hi) {
            lo = hi;
            hi = hi.saturating_mul(2).min(100_000);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if taken(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// Publish a run's metadata under exactly this id, if `metadata/<id>.json` is free
    /// (exclusive creation); `None` when the id is taken.
    pub fn publish_exact(&self, id: &str, meta: &mut Metadata) -> Result<Option<PathBuf>> {
        meta.test_id = id.to_string();
        let path = self.metadata_path(id);
        let bytes = to_json(meta)?;
        if path.exists() || !self.reserve(id, &bytes)? {
            return Ok(None);
        }
        match atomic::publish_new(&path, &bytes) {
            Ok(()) => Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Ok(self.mirrors_our_reservation(&path, &bytes).then_some(path))
            }
            Err(e) => Err(store_io(&path, "write", e)),
        }
    }

    /// Atomically replace the metadata of an existing run (the run's own writer only).
    pub fn replace(&self, meta: &Metadata) -> Result<()> {
        let path = self.metadata_path(&meta.test_id);
        atomic::write_atomic(&path, &to_json(meta)?).map_err(|e| store_io(&path, "write", e))
    }

    /// Read one metadata file. Errors say why it cannot be used.
    pub fn read_metadata(path: &Path) -> std::result::Result<Metadata, String> {
        read_with_stat(path).1
    }

    /// Every metadata file's path (temp files and other names excluded), sorted by name.
    pub fn metadata_files(&self) -> Result<Vec<PathBuf>> {
        self.check_layout()?;
        self.list_metadata()
    }

    /// [`Store::metadata_files`] without the layout check (for `verify`, which reports it).
    pub(crate) fn list_metadata(&self) -> Result<Vec<PathBuf>> {
        let dir = self.metadata_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") && !name.starts_with('.') {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Load every readable run, oldest first. Unreadable, unknown or future-version files
    /// are listed in `skipped` (never changed or deleted).
    pub fn load_all(&self) -> Result<Runs> {
        let files = self.metadata_files()?;
        let parsed = parallel_map(&files, |p| read_with_stat(p));
        let named: Vec<(String, FileStat, std::result::Result<Metadata, String>)> = files
            .iter()
            .zip(parsed)
            .map(|(p, (stat, r))| (file_name_of(p), stat, r))
            .collect();
        Ok(self.collect_runs(named))
    }

    /// Runs from (file name, stat, parse result) triples in file-name order: the
    /// fingerprint of exactly those files (names, inodes, sizes, mtimes) and the runs
    /// oldest first, for [`Store::load_all`]. `Catalog::runs` computes the same
    /// fingerprint from its rows' stats, so both agree on what the derived files are
    /// stamped with.
    pub(crate) fn collect_runs(
        &self,
        files: Vec<(String, FileStat, std::result::Result<Metadata, String>)>,
    ) -> Runs {
        let mut runs = Runs {
            fingerprint: fingerprint(files.iter().map(|(n, s, _)| (n.as_str(), *s))),
            runs: Vec::with_capacity(files.len()),
            ..Runs::default()
        };
        for (name, _, result) in files {
            match result {
                Ok(m) => runs.runs.push(m),
                Err(reason) => runs.skipped.push(Skipped {
                    path: self.metadata_dir().join(&name),
                    reason,
                }),
            }
        }
        sort_oldest_first(&mut runs.runs);
        runs
    }

    /// Find one run by exact id or unique prefix.
    pub fn find(&self, id_or_prefix: &str) -> Result<Metadata> {
        let exact = self.metadata_path(id_or_prefix);
        if ids::file_safe(id_or_prefix) == id_or_prefix && exact.is_file() {
            return Store::read_metadata(&exact).map_err(|r| Error::input(&exact, r).into());
        }
        let all = self.load_all()?;
        all.warn_skipped();
        let matches: Vec<&Metadata> = all
            .runs
            .iter()
            .filter(|m| m.test_id.starts_with(id_or_prefix))
            .collect();
        match matches.len() {
            0 => Err(Error::NotFound(format!(
                "no run with an id starting with '{id_or_prefix}' in {} (list them with `benchkeep compare`)",
                self.root.display()
            ))
            .into()),
            1 => Ok(matches[0].clone()),
            _ => {
                let list: Vec<String> = matches.iter().map(|m| format!("  {}", m.test_id)).collect();
                Err(Error::usage(format!(
                    "'{id_or_prefix}' matches {} runs; give more of the id:\n{}",
                    matches.len(),
                    list.join("\n")
                ))
                .into())
            }
        }
    }
}

/// A store error (exit code 4) that names the path, the action and what to do.
pub fn store_io(path: &Path, action: &str, e: io::Error) -> anyhow::Error {
    let hint = if is_resource_error(&e) {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                " (disk full: free space, or use --store on another disk)"
            }
            Some(libc::EFBIG) => " (file size limit reached: raise `ulimit -f`)",
            Some(libc::EROFS) => " (read-only file system: use --store with a writable directory)",
            Some(libc::EACCES) | Some(libc::EPERM) => {
                " (permission denied: fix the permissions or use --store)"
            }
            _ => "",
        }
    } else {
        ""
    };
    anyhow::Error::new(e).context(Error::StoreIo(format!(
        "cannot {action} {}{hint}",
        path.display()
    )))
}

fn file_name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
