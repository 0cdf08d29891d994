//! Derived views of the store: pure functions from runs to bytes.
//!
//! `summary.json` and `COMPARISON.md` are rebuilt from metadata after every change; they are
//! never the only copy of anything (RELIABILITY.md P5).

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

/// Write every derived file of the store from `runs` (caller holds the store lock).
pub fn write_derived(store: &Store, runs: &Runs) -> Result<()> {
    let generated_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    store.write_derived_file(SUMMARY_PATH, &summary::render(runs, &generated_at))?;
    store.write_derived_file(
        COMPARISON_PATH,
        markdown::comparison(&runs.runs, &generated_at).as_bytes(),
    )?;
    Ok(())
}
