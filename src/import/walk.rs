//! The files named on the command line: folders walked recursively (sorted, symlinks not
//! followed), each regular file once.

use std::path::{Path, PathBuf};

/// One entry found: a file to look at, or a path skipped with the reason.
pub enum Found {
    File(PathBuf),
    Skipped(PathBuf, String),
}

/// Every file under `paths`, in a stable order.
pub fn walk(paths: &[PathBuf]) -> Vec<Found> {
    let mut out = Vec::new();
    for p in paths {
        visit(p, true, &mut out);
    }
    out
}

fn visit(path: &Path, top: bool, out: &mut Vec<Found>) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            out.push(Found::Skipped(path.into(), format!("cannot be read ({e})")));
            return;
        }
    };
    let ft = meta.file_type();
    if ft.is_symlink() && !top {
        out.push(Found::Skipped(
            path.into(),
            "a symbolic link (not followed)".into(),
        ));
    } else if ft.is_dir() || (top && path.is_dir()) {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                out.push(Found::Skipped(
                    path.into(),
                    format!("cannot be listed ({e})"),
                ));
                return;
            }
        };
        entries.sort();
        for e in entries {
            visit(&e, false, out);
        }
    } else if ft.is_file() || (top && path.is_file()) {
        out.push(Found::File(path.into()));
    } else {
        out.push(Found::Skipped(path.into(), "not a regular file".into()));
    }
}
