//! `verify`: a read-only check of the whole store. Every problem names its path and the
//! command that fixes it. Nothing here writes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::schema::{HostInfo, Metadata, Status};
use crate::store::{Store, atomic::TEMP_PREFIX};

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
    if !store.root().exists() {
        return Ok(report);
    }
    let mut referenced: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    for path in store.metadata_files()? {
        let meta = match Store::read_metadata(&path) {
            Ok(m) => m,
            Err(reason) => {
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
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem != meta.test_id {
            report.problems.push(Problem {
                path: path.clone(),
                message: format!("file name does not match its test_id {:?}", meta.test_id),
                fix: format!(
                    "rename it to metadata/{}.json if that name is free",
                    meta.test_id
                ),
            });
        }
        check_raw(store, &path, &meta, opts, &mut report, &mut referenced);
        check_running(&path, &meta, &mut report);
    }
    check_raw_dir(store, &referenced, &ids, &mut report)?;
    for dir in [
        store.metadata_dir(),
        store.analysis_dir(),
        store.reports_dir(),
        store.raw_dir(),
    ] {
        check_temps(&dir, &mut report);
    }
    Ok(report)
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
    let md = match fs::metadata(&raw) {
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
    if opts.skip_hash {
        return;
    }
    if let Some(expected) = &meta.test.raw_sha256 {
        match sha256_file(&raw) {
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
    let alive = meta.pid.is_some_and(pid_alive);
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
        if name.starts_with('.') || referenced.contains(&name) {
            continue;
        }
        // Companion files of a run: <id>.log, <id>.gpu.jsonl, <id>.jsonl.torn-<offset>.
        let owner = [".gpu.jsonl", ".log"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .or_else(|| name.split_once(".jsonl.torn-").map(|(id, _)| id));
        if owner.is_some_and(|id| ids.contains(id)) {
            continue;
        }
        let path = entry.path();
        let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
        report.problems.push(Problem {
            message: "raw file without metadata".into(),
            fix: format!(
                "if it is a benchkeep run log: `benchkeep recover {stem}`; otherwise import it: `benchkeep analyze --input {} --platform P --model M --total-time S`",
                path.display()
            ),
            path,
        });
    }
    Ok(())
}

fn check_temps(dir: &Path, report: &mut Report) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        let writer_alive = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(pid_alive);
        if writer_alive {
            continue; // a write in progress
        }
        report.problems.push(Problem {
            path: entry.path(),
            message: "temp file left by an interrupted write".into(),
            fix: format!(
                "nothing refers to it; remove it: rm {}",
                entry.path().display()
            ),
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
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// sha256 (lowercase hex) and length of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((crate::import::hex(&h.finalize()), n_total))
}
