//! `verify`: a read-only check of the whole store. Every problem names its path and the
//! command that fixes it. Nothing here writes.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::schema::{HostInfo, Metadata, SourceKind, Status};
use crate::store::{Store, atomic::TEMP_PREFIX, catalog_file, nofollow, process};

/// One thing wrong with the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
    pub fix: String,
}

/// What `verify` looked at and found.
#[derive(Debug, Default)]
pub struct Report {
    pub runs_checked: usize,
    pub raw_files_checked: usize,
    pub bytes_hashed: u64,
    pub problems: Vec<Problem>,
    /// Things a rebuild fixes, never data loss (a catalog row out of step with its
    /// metadata file): reported, but the store is fine.
    pub warnings: Vec<Problem>,
    /// Rows of the catalog (`analysis/catalog/`) compared with their metadata files.
    pub catalog_rows_checked: usize,
}

/// Options for [`verify`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Skip the sha256 of raw files (sizes are still checked).
    pub skip_hash: bool,
}

/// Check every metadata file, raw file and temp file of the store.
pub fn verify(store: &Store, opts: Options) -> anyhow::Result<Report> {
    let mut report = Report::default();
    match fs::metadata(store.root()) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            // A file (or FIFO, device) where the store should be: exit 4, as everywhere.
            return Err(store
                .check_layout()
                .expect_err("the root is not a directory"));
        }
        Err(_) => {
            return Err(crate::error::Error::NotFound(format!(
                "no store at {} (give the right --store, or add a run first)",
                store.root().display()
            ))
            .into());
        }
    }
    // The store's own folders must be real directories (P11); what is not is reported
    // and never read through.
    let layout = store.layout_problems();
    let bad_dirs: HashSet<PathBuf> = layout.iter().map(|(p, _)| p.clone()).collect();
    for (path, why) in layout {
        report.problems.push(Problem {
            path,
            message: why,
            fix: "benchkeep refuses to use the store until it is a real directory: remove the link (or file) and put a directory with what it held in its place".into(),
        });
    }
    let mut referenced: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    let metadata_files = if bad_dirs.contains(&store.metadata_dir()) {
        Vec::new()
    } else {
        store.list_metadata()?
    };
    for path in metadata_files {
        let meta = match Store::read_metadata(&path) {
            Ok(m) => m,
            Err(reason) => {
                // Its raw file is still its own, not an orphan.
                if let Some((id, raw)) = loose_ids(&path) {
                    ids.insert(id);
                    referenced.extend(raw);
                }
                report.problems.push(Problem {
                    fix: "inspect the file; benchkeep skips it and never changes it. Move it out of metadata/ if it is not a run".into(),
                    message: reason,
                    path,
                });
                continue;
            }
        };
        report.runs_checked += 1;
        ids.insert(meta.test_id.clone());
        check_raw(store, &path, &meta, opts, &mut report, &mut referenced);
        // `import`'s copy of a per-request file read beside a summary is the run's too.
        referenced.extend(
            side_copy(&meta)
                .and_then(|r| Some(Path::new(r).file_name()?.to_string_lossy().into_owned())),
        );
        check_companions(store, &path, &meta, &mut report);
        check_running(&path, &meta, &mut report);
    }
    if !bad_dirs.contains(&store.raw_dir()) {
        check_raw_dir(store, &referenced, &ids, &mut report)?;
    }
    let charts = store.reports_dir().join("charts");
    for dir in [
        store.root().to_path_buf(),
        store.metadata_dir(),
        store.analysis_dir(),
        store.reports_dir(),
        charts,
        store.raw_dir(),
    ] {
        if bad_dirs.contains(&dir) {
            continue;
        }
        check_temps(&dir, &mut report);
        check_special(store, &dir, &mut report);
    }
    // Archived runs (`benchkeep archive`) and moves cut off halfway.
    report.problems.extend(crate::store::archive::check(store));
    if !bad_dirs.contains(&store.analysis_dir()) && !bad_dirs.contains(&store.metadata_dir()) {
        check_catalog(store, &mut report)?;
    }
    Ok(report)
}

/// The derived catalog against the metadata files: each difference is a warning (the
/// catalog is derived: deleting it loses nothing, the next reader rebuilds it).
fn check_catalog(store: &Store, report: &mut Report) -> anyhow::Result<()> {
    let (mismatches, checked) = catalog_file::check(store)?;
    report.catalog_rows_checked = checked;
    for m in mismatches {
        let path = if m.file == catalog_file::CATALOG_DIR {
            store.root().join(&m.file)
        } else {
            store.metadata_dir().join(&m.file)
        };
        report.warnings.push(Problem {
            path,
            message: m.message,
            fix: format!(
                "nothing is lost ({}/ is derived from metadata/): delete that folder and the next `benchkeep query` or `benchkeep compare` rebuilds it (a file added, replaced or removed is brought in step by the next reader by itself; a file edited in place is not: docs/catalog.md)",
                catalog_file::CATALOG_DIR
            ),
        });
    }
    Ok(())
}

fn check_raw(
    store: &Store,
    meta_path: &Path,
    meta: &Metadata,
    opts: Options,
    report: &mut Report,
    referenced: &mut HashSet<String>,
) {
    let rel = &meta.test.output_file;
    if rel.is_empty() {
        report.problems.push(Problem {
            path: meta_path.to_path_buf(),
            message: "test.output_file is empty: the run names no raw file".into(),
            fix: "re-import the results with `benchkeep analyze`".into(),
        });
        return;
    }
    let raw = store.resolve(rel);
    if let Some(name) = raw.file_name() {
        referenced.insert(name.to_string_lossy().into_owned());
    }
    let input_hint = meta
        .test
        .input_file
        .as_deref()
        .map(|i| format!(" (original input: {i})"))
        .unwrap_or_default();
    let md = match fs::symlink_metadata(&raw) {
        Ok(md) if !md.file_type().is_file() => {
            // Entries of raw/ itself are reported by `check_special`.
            if nofollow::real_dir(crate::store::atomic::dir_of(&raw)) != Ok(true)
                || crate::store::atomic::dir_of(&raw) != store.raw_dir()
            {
                report.problems.push(Problem {
                    path: raw.clone(),
                    message: format!(
                        "raw file of {} is {}, not a regular file; benchkeep does not follow or open it",
                        meta.test_id,
                        nofollow::kind_of(md.file_type())
                    ),
                    fix: "remove it and restore the real file from a backup".into(),
                });
            }
            return;
        }
        Ok(md) => md,
        Err(_) => {
            report.problems.push(Problem {
                path: raw.clone(),
                message: format!("raw file of {} is missing{input_hint}", meta.test_id),
                fix: "restore it from a backup, or import the original again with `benchkeep analyze --input ...`".into(),
            });
            return;
        }
    };
    report.raw_files_checked += 1;
    if meta.status == Status::Running {
        return; // still being written
    }
    if let Some(bytes) = meta.test.raw_bytes
        && bytes != md.len()
    {
        report.problems.push(Problem {
            path: raw.clone(),
            message: format!("size is {} bytes, metadata says {bytes}", md.len()),
            fix: "the raw file was changed after it was stored: restore it from a backup".into(),
        });
        return;
    }
    // A log benchkeep wrote itself must be a gap-free run log (P2). An imported file is
    // kept byte for byte as it was accepted: a cut last line and a `seq` that restarts (two
    // logs joined) were accepted on import, so they are accepted here; its size and sha256
    // guard it. A line that is not a record is reported in both.
    if meta.source.format == "benchkeep" {
        check_run_log(&raw, meta.source.kind != SourceKind::Run, report);
    }
    if opts.skip_hash {
        return;
    }
    if let Some(expected) = &meta.test.raw_sha256 {
        match nofollow::sha256_regular(&raw) {
            Ok((sha, n)) => {
                report.bytes_hashed += n;
                if &sha != expected {
                    report.problems.push(Problem {
                        path: raw,
                        message: format!("sha256 is {sha}, metadata says {expected}"),
                        fix:
                            "the raw file was changed after it was stored: restore it from a backup"
                                .into(),
                    });
                }
            }
            Err(e) => report.problems.push(Problem {
                path: raw,
                message: format!("cannot read: {e}"),
                fix: "check the file's permissions".into(),
            }),
        }
    }
}

fn check_running(meta_path: &Path, meta: &Metadata, report: &mut Report) {
    if meta.status != Status::Running {
        return;
    }
    let same_host = meta.host.hostname == HostInfo::this().hostname;
    // A pid now owned by another process (another start time or boot) is gone (P12).
    let alive = meta
        .pid
        .is_some_and(|p| process::owner_alive(p, meta.process.as_deref()));
    if same_host && !alive {
        report.problems.push(Problem {
            path: meta_path.to_path_buf(),
            message: format!(
                "run {} is marked running but its process{} is gone",
                meta.test_id,
                meta.pid.map(|p| format!(" ({p})")).unwrap_or_default()
            ),
            fix: format!("benchkeep recover {}", meta.test_id),
        });
    }
}

fn check_raw_dir(
    store: &Store,
    referenced: &HashSet<String>,
    ids: &HashSet<String>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Ok(entries) = fs::read_dir(store.raw_dir()) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || referenced.contains(&name)
            || !entry.file_type().is_ok_and(|t| t.is_file())
        {
            continue; // what is not a regular file is reported by `check_special`
        }
        // Companion files of a run: <id>.log, <id>.gpu.jsonl, <id>.server.jsonl,
        // <id>.jsonl.torn-<offset>.
        let owner = [".gpu.jsonl", ".server.jsonl", ".log"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .or_else(|| name.split_once(".jsonl.torn-").map(|(id, _)| id));
        if owner.is_some_and(|id| ids.contains(id)) {
            continue;
        }
        let path = entry.path();
        report.problems.push(Problem {
            message: "raw file without metadata".into(),
            fix: format!(
                "import it as a run: `benchkeep analyze --input {} --platform P --model M` (add --total-time S unless it is a benchkeep run log, which carries its own timings)",
                path.display()
            ),
            path,
        });
    }
    Ok(())
}

/// Temp files in `dir` whose writer (the pid in the name) is gone.
fn dead_temps(dir: &Path) -> Vec<fs::DirEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
                return false;
            };
            !rest
                .split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(pid_alive)
        })
        .collect()
}

/// Remove the temp files that interrupted writes left in the store's folders (nothing
/// refers to them: P3). Only regular files this user owns are removed: in a shared
/// store, another user's leftovers are theirs to remove (P11). Returns the paths removed.
pub fn remove_dead_temps(store: &Store) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    if !store.layout_problems().is_empty() {
        return removed;
    }
    for dir in [
        store.metadata_dir(),
        store.analysis_dir(),
        store.reports_dir(),
        store.reports_dir().join("charts"),
        store.raw_dir(),
    ] {
        for entry in dead_temps(&dir) {
            let path = entry.path();
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file() && m.uid() == me)
                && fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed
}

fn check_temps(dir: &Path, report: &mut Report) {
    for entry in dead_temps(dir) {
        report.problems.push(Problem {
            path: entry.path(),
            message: "temp file left by an interrupted write".into(),
            fix: format!(
                "nothing refers to it; `benchkeep recover` removes it, or: rm {}",
                entry.path().display()
            ),
        });
    }
}

/// For a metadata file benchkeep cannot use (a newer schema, a bad field): its id and the
/// file name of its raw file, read loosely, so its raw file is not called an orphan.
fn loose_ids(path: &Path) -> Option<(String, Vec<String>)> {
    let bytes = nofollow::read_bounded(path, crate::store::MAX_METADATA_BYTES).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let id = v.get("test_id")?.as_str()?.to_string();
    let raw = v
        .pointer("/test/output_file")
        .and_then(|o| o.as_str())
        .and_then(|o| Path::new(o).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    Some((id, raw.into_iter().collect()))
}

/// `import`'s copy of a per-request side file (`source.notes.per_request_copy`).
fn side_copy(meta: &Metadata) -> Option<&str> {
    meta.source
        .extra
        .get("notes")?
        .get("per_request_copy")?
        .as_str()
}

/// Files the metadata names besides the raw log: `record`'s log, a GPU series.
fn check_companions(store: &Store, meta_path: &Path, meta: &Metadata, report: &mut Report) {
    let mut named: Vec<String> = Vec::new();
    if let Some(series) = meta
        .gpu
        .as_ref()
        .and_then(|g| g.extra.get("series_file"))
        .and_then(|v| v.as_str())
    {
        named.push(series.to_string());
    }
    if let Some(series) = meta
        .results
        .server_view
        .as_ref()
        .and_then(|v| v.series.as_ref())
    {
        named.push(series.file.clone());
    }
    if let Some(log) = meta
        .extra
        .get("command")
        .and_then(|c| c.get("log_file"))
        .and_then(|v| v.as_str())
    {
        named.push(log.to_string());
    }
    named.extend(side_copy(meta).map(str::to_string));
    for rel in named {
        if !crate::store::is_store_relative(&rel) {
            report.problems.push(Problem {
                path: meta_path.to_path_buf(),
                message: format!("names a file outside the store: {rel:?}"),
                fix: "inspect the file; benchkeep does not follow such paths".into(),
            });
        } else if !fs::symlink_metadata(store.resolve(&rel)).is_ok_and(|m| m.file_type().is_file())
        {
            report.problems.push(Problem {
                path: store.resolve(&rel),
                message: format!("file named by run {} is missing", meta.test_id),
                fix: "restore it from a backup; the run's figures are intact in its metadata"
                    .into(),
            });
        }
    }
}

/// A benchkeep run log must be complete lines that parse, with a strictly increasing `seq`
/// (RELIABILITY P2): report the first bad line.
fn check_run_log(raw: &Path, imported: bool, report: &mut Report) {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    let Ok(f) = nofollow::open_read(raw) else {
        return;
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let mut line = Vec::new();
    let (mut n, mut offset, mut last) = (0u64, 0u64, None::<u64>);
    loop {
        line.clear();
        let Ok(read) = reader.read_until(b'\n', &mut line) else {
            return;
        };
        if read == 0 {
            return;
        }
        n += 1;
        let complete = line.ends_with(b"\n");
        let bad = if !complete {
            if imported {
                return; // the import counted it as unparseable
            }
            Some("the last line is cut short (a torn write)".to_string())
        } else {
            match serde_json::from_slice::<Seq>(&line) {
                Ok(r) if imported || last.is_none_or(|l| r.seq > l) => {
                    last = Some(r.seq);
                    None
                }
                Ok(r) => Some(format!("seq {} does not increase", r.seq)),
                Err(e) => Some(format!("not a record: {e}")),
            }
        };
        if let Some(why) = bad {
            report.problems.push(Problem {
                path: raw.to_path_buf(),
                message: format!("corrupt run log at line {n} (byte {offset}): {why}"),
                fix:
                    "restore the file from a backup; benchkeep never rewrites a finished run's log"
                        .into(),
            });
            return;
        }
        offset += read as u64;
    }
}

/// Every entry of a store folder that is not what belongs there: a symlink, a FIFO, a
/// device or a socket anywhere; a directory anywhere but the layout's own (P11).
fn check_special(store: &Store, dir: &Path, report: &mut Report) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let layout: HashSet<PathBuf> = [
        store.raw_dir(),
        store.metadata_dir(),
        store.analysis_dir(),
        store.reports_dir(),
        store.reports_dir().join("charts"),
    ]
    .into_iter()
    .collect();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_file() || layout.contains(&path) {
            continue;
        }
        if ft.is_dir() && dir != store.raw_dir() {
            continue; // a folder of the user's own beside the layout
        }
        report.problems.push(Problem {
            message: format!(
                "{} inside the store, where only regular files belong; benchkeep never follows or opens it",
                nofollow::kind_of(ft)
            ),
            fix: format!(
                "remove it (rm {}); if it stood for a run's file, restore the real file from a backup",
                path.display()
            ),
            path,
        });
    }
}

/// Whether a process with this pid exists (on this host).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as i32, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    exists && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // "pid (comm) S ...": the state follows the last ')'.
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(false)
}
