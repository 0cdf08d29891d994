//! Derived views of the store: pure functions from runs to bytes.
//!
//! `summary.json` and `COMPARISON.md` are rebuilt from metadata after every change; they are
//! never the only copy of anything (RELIABILITY.md P5).

pub mod detail;
pub mod markdown;
pub mod rows;
pub mod summary;
pub mod table;

use anyhow::Result;

use crate::store::{Runs, Store};

/// Store-relative path of the summary.
pub const SUMMARY_PATH: &str = "analysis/summary.json";
/// Store-relative path of the comparison report.
pub const COMPARISON_PATH: &str = "reports/COMPARISON.md";

/// The derived files `write_derived` produces (store-relative).
pub const DERIVED_FILES: &[&str] = &[SUMMARY_PATH, COMPARISON_PATH];

/// Write every derived file of the store from `runs` (caller holds the store lock).
///
/// The files are pure functions of the metadata (no clock inside), so a file whose bytes
/// would not change is left alone: `compare` on a large, unchanged store writes nothing.
pub fn write_derived(store: &Store, runs: &Runs) -> Result<()> {
    store.write_derived_file(SUMMARY_PATH, &summary::render(runs))?;
    store.write_derived_file(COMPARISON_PATH, markdown::comparison(&runs.runs).as_bytes())?;
    Ok(())
}
