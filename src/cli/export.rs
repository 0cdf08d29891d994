//! `benchkeep export`: one flat row per run (every metadata field under its dotted name)
//! as CSV or JSON Lines, for pandas, DuckDB and Spark.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::exit;
use crate::report::export;
use crate::store::{Store, outfile};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Write to this file instead of stdout (a regular file is replaced atomically; a
    /// FIFO or device is written to); `-` is stdout. Never a file of the store.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header of dotted column names.
    Csv,
    /// JSON Lines: one flat object per run.
    Jsonl,
}

pub fn run(store: &Store, args: ExportArgs) -> Result<i32> {
    // Refused before any work: a path that leads to a stored file (P3, P11).
    if let Some(path) = args.out.as_deref().filter(|p| p.as_os_str() != "-") {
        outfile::refuse_store_path(store, path, "--out")?;
    }
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let runs: Vec<_> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
    let text = match args.format {
        ExportFormat::Csv => export::csv(&runs),
        ExportFormat::Jsonl => export::jsonl(&runs),
    };
    match args.out.as_deref() {
        None => print_out(&text)?,
        Some(p) if p.as_os_str() == "-" => print_out(&text)?,
        Some(path) => {
            outfile::write_user_file(store, path, text.as_bytes(), "--out")?;
            eprintln!("Exported {} run(s) to {}", runs.len(), path.display());
        }
    }
    Ok(exit::OK)
}
