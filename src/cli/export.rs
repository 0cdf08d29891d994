//! `benchkeep export`: one flat row per run (every metadata field under its dotted name)
//! as CSV or JSON Lines, for pandas, DuckDB and Spark.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::exit;
use crate::report::export;
use crate::store::{Store, atomic, store_io};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Write to this file (replaced atomically) instead of stdout; `-` is stdout.
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
            atomic::write_atomic(path, text.as_bytes()).map_err(|e| store_io(path, "write", e))?;
            eprintln!("Exported {} run(s) to {}", runs.len(), path.display());
        }
    }
    Ok(exit::OK)
}
