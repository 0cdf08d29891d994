//! The derived files: lock, load, stamp, render, write, prune.
//!
//! `analysis/summary.json`, `analysis/sweeps/<id>.json`, `reports/COMPARISON.md`,
//! `reports/charts/*.svg` and `reports/index.html` are pure functions of the metadata (and, for the HTML page, the raw
//! files), rendered by [`crate::report`]; they are never the only copy of anything
//! (RELIABILITY P5). This module decides when to rebuild them and writes them:
//!
//! 1. take the store lock (concurrent writers rebuild one at a time, P7);
//! 2. load every run;
//! 3. compare the stamp `analysis/.derived-from` (a fingerprint of the metadata files read,
//!    plus the settings) with what the files were last built from: equal means fresh;
//! 4. render, and write each file atomically unless it already holds those bytes;
//! 5. remove chart files of groups that no longer exist (only `reports/charts/*.svg`) and
//!    the conclusions of sweeps that no longer exist (only `analysis/sweeps/*.json`);
//! 6. write the new stamp.
//!
//! The CLI calls [`refresh`] once after a producer (`run`, `record`, `analyze`,
//! `recover`) returns; producers never render.

use std::collections::BTreeSet;
use std::fs;

use anyhow::Result;

use crate::report::{self, CHARTS_DIR, DERIVED_FILES, Rendered, TIER1_PREFIXES, TIER2_PREFIXES};
use crate::store::{Runs, Store, atomic, catalog_file, nofollow, store_io};

pub use crate::report::h2h::Settings;

/// The stamp file: what the derived files were last built from.
pub const STAMP_PATH: &str = "analysis/.derived-from";

/// Rebuild the metadata-derived files if they are stale, under the store lock. Returns
/// the warnings of a rebuild (charts that could not be drawn).
pub fn refresh(store: &Store, settings: &Settings) -> Result<Vec<String>> {
    let _lock = store.lock()?;
    let runs = store.load_all()?;
    let warnings = refresh_with(store, &runs, settings)?;
    // Keep an existing catalog in step with the run just written (one more row, not a
    // rebuild); a catalog that cannot be written now is brought in step by the next reader.
    let _ = catalog_file::update_locked(store);
    Ok(warnings)
}

/// [`refresh`] from runs already loaded (the caller holds the store lock).
pub fn refresh_with(store: &Store, runs: &Runs, settings: &Settings) -> Result<Vec<String>> {
    store.check_layout()?;
    if is_fresh(store, runs, settings) {
        return Ok(Vec::new());
    }
    let stamp = stamp(runs, settings);
    let (files, warnings) = report::tier1_files(runs, settings.clone());
    write_all(store, &files, &TIER1_PREFIXES)?;
    write_stamp(store, &stamp)?;
    Ok(warnings)
}

/// Whether the derived files were built from exactly these metadata files (the runs'
/// fingerprint) with these settings, and are all there: [`refresh_with`] has nothing to
/// do. `compare` asks first, so that runs from the catalog (trimmed) are never rendered.
pub fn is_fresh(store: &Store, runs: &Runs, settings: &Settings) -> bool {
    let stamp = stamp(runs, settings);
    nofollow::read_bounded(&store.root().join(STAMP_PATH), 4096)
        .is_ok_and(|s| s.is_some_and(|s| s == stamp.as_bytes()))
        && DERIVED_FILES.iter().all(|rel| {
            fs::symlink_metadata(store.root().join(rel)).is_ok_and(|m| m.file_type().is_file())
        })
}

/// Render and write every derived file including `reports/index.html` (the caller holds
/// the store lock): what `benchkeep report` does.
pub fn write_report(store: &Store, runs: &Runs, settings: &Settings) -> Result<Rendered> {
    let rendered = report::report_files(store, runs, settings.clone());
    let all: Vec<&str> = TIER1_PREFIXES
        .iter()
        .chain(&TIER2_PREFIXES)
        .copied()
        .collect();
    write_all(store, &rendered.files, &all)?;
    write_stamp(store, &stamp(runs, settings))?;
    Ok(rendered)
}

/// The settings that shape the derived files are part of what they were built from.
fn stamp(runs: &Runs, settings: &Settings) -> String {
    let baseline = settings.baseline_platform.clone().unwrap_or_default();
    format!(
        "{:016x} baseline={baseline:?} gpu_hourly_usd={:?}\n",
        runs.fingerprint, settings.gpu_hourly_usd
    )
}

fn write_stamp(store: &Store, stamp: &str) -> Result<()> {
    let path = store.root().join(STAMP_PATH);
    atomic::write_atomic(&path, stamp.as_bytes()).map_err(|e| store_io(&path, "write", e))
}

fn write_all(store: &Store, files: &[report::File], chart_prefixes: &[&str]) -> Result<()> {
    for (rel, bytes) in files {
        write_file(store, rel, bytes)?;
    }
    let charts: BTreeSet<&str> = files
        .iter()
        .filter_map(|(rel, _)| rel.strip_prefix(CHARTS_DIR)?.strip_prefix('/'))
        .collect();
    prune_charts(store, &charts, chart_prefixes)?;
    prune_sweeps(store, files)
}

/// Remove `analysis/sweeps/*.json` files of sweeps that no longer exist (their points
/// were removed). Only that folder is ever touched; the points themselves never are.
fn prune_sweeps(store: &Store, files: &[report::File]) -> Result<()> {
    let keep: BTreeSet<&str> = files
        .iter()
        .filter_map(|(rel, _)| {
            rel.strip_prefix(report::sweep::SWEEPS_DIR)?
                .strip_prefix('/')
        })
        .collect();
    let dir = store.root().join(report::sweep::SWEEPS_DIR);
    store.check_layout()?;
    // A link where the folder belongs is never followed (P11).
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".json") && !keep.contains(name) {
            fs::remove_file(entry.path())
                .map_err(|e| store_io(&entry.path(), "remove stale sweep analysis", e))?;
        }
    }
    Ok(())
}

/// Write a derived file atomically (path relative to the store root), unless it already
/// holds exactly these bytes.
pub fn write_file(store: &Store, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = store.root().join(rel);
    // Never read through a symlink or block on a FIFO left where a derived file belongs;
    // the rename below replaces such an entry itself, never what it points to.
    if nofollow::read_bounded(&path, bytes.len() as u64)
        .is_ok_and(|old| old.is_some_and(|old| old == bytes))
    {
        return Ok(());
    }
    store.check_layout()?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| store_io(dir, "create directory", e))?;
        // `analysis/sweeps/` is no layout folder: refuse a link there too (P11).
        nofollow::real_dir(dir).map_err(crate::error::Error::StoreIo)?;
    }
    // A folder of the store that is a link to somewhere else is refused (P11).
    store.check_layout()?;
    atomic::write_atomic(&path, bytes).map_err(|e| store_io(&path, "write", e))
}

/// Remove chart files with one of `prefixes` that this build did not write (a group that
/// no longer exists). Only `reports/charts/*.svg` is ever touched.
fn prune_charts(store: &Store, keep: &BTreeSet<&str>, prefixes: &[&str]) -> Result<()> {
    let dir = store.root().join(CHARTS_DIR);
    store.check_layout()?;
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".svg")
            && prefixes.iter().any(|p| name.starts_with(p))
            && !keep.contains(name)
        {
            fs::remove_file(entry.path())
                .map_err(|e| store_io(&entry.path(), "remove stale chart", e))?;
        }
    }
    Ok(())
}
