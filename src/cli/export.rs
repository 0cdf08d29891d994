//! `benchkeep export`: one flat row per run (every metadata field under its dotted name)
//! as CSV or JSON Lines, for pandas, DuckDB and Spark; or the input of a tracker (Bencher's
//! BMF, github-action-benchmark's custom JSON).

use std::path::PathBuf;

use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};

use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::{Error, exit};
use crate::report::{export, trackers};
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
    /// With `--format github-action-benchmark`: the action's `tool`, which takes one
    /// direction per file (throughputs are bigger-is-better, latencies smaller-is-better).
    #[arg(long, value_name = "TOOL", value_parser = PossibleValuesParser::new(["customBiggerIsBetter", "customSmallerIsBetter"]))]
    pub tool: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header of dotted column names.
    Csv,
    /// JSON Lines: one flat object per run.
    Jsonl,
    /// Bencher Metric Format, for `bencher run --adapter json --file FILE`: per benchmark
    /// (platform/model/input/load) its latest finished run's figures.
    Bmf,
    /// github-action-benchmark's custom JSON (`--tool customBiggerIsBetter` or
    /// `customSmallerIsBetter`): per benchmark its latest finished run's figures.
    GithubActionBenchmark,
    /// Parquet (needs --out FILE; in builds with the cargo feature `parquet`).
    Parquet,
}

pub fn run(store: &Store, args: ExportArgs) -> Result<i32> {
    // Refused before any work: a path that leads to a stored file (P3, P11).
    if let Some(path) = args.out.as_deref().filter(|p| p.as_os_str() != "-") {
        outfile::refuse_store_path(store, path, "--out")?;
    }
    let tool = match (args.format, args.tool.as_deref()) {
        (ExportFormat::GithubActionBenchmark, Some("customSmallerIsBetter")) => {
            Some(trackers::GabTool::Smaller)
        }
        (ExportFormat::GithubActionBenchmark, Some(_)) => Some(trackers::GabTool::Bigger),
        (ExportFormat::GithubActionBenchmark, None) => {
            return Err(Error::usage(
                "--format github-action-benchmark needs --tool customBiggerIsBetter (throughputs) or --tool customSmallerIsBetter (latencies): the action takes one direction per file, so export twice",
            )
            .into());
        }
        (_, Some(_)) => {
            return Err(Error::usage(
                "--tool is for --format github-action-benchmark only; drop it or add --format github-action-benchmark",
            )
            .into());
        }
        (_, None) => None,
    };
    if args.format == ExportFormat::Parquet {
        if args.out.as_deref().is_none_or(|p| p.as_os_str() == "-") {
            return Err(Error::usage(
                "--format parquet writes a binary file: give --out FILE (e.g. --out runs.parquet)",
            )
            .into());
        }
        if !cfg!(feature = "parquet") {
            return Err(Error::usage(
                "--format parquet: this benchkeep was built without Parquet support; rebuild it with `cargo build --release --features parquet`, or export --format jsonl, which DuckDB, Polars and Spark read as well (docs/engines.md)",
            )
            .into());
        }
    }
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let runs: Vec<_> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
    let bytes: Vec<u8> = match args.format {
        ExportFormat::Csv => export::csv(&runs).into_bytes(),
        ExportFormat::Jsonl => export::jsonl(&runs).into_bytes(),
        ExportFormat::Parquet => parquet_bytes(&runs)?,
        ExportFormat::Bmf => trackers::bmf(&runs).into_bytes(),
        ExportFormat::GithubActionBenchmark => {
            trackers::github_action_benchmark(&runs, tool.expect("checked above")).into_bytes()
        }
    };
    match args.out.as_deref() {
        None => print_out(&String::from_utf8_lossy(&bytes))?,
        Some(p) if p.as_os_str() == "-" => print_out(&String::from_utf8_lossy(&bytes))?,
        Some(path) => {
            outfile::write_user_file(store, path, &bytes, "--out")?;
            eprintln!("Exported {} run(s) to {}", runs.len(), path.display());
        }
    }
    Ok(exit::OK)
}

#[cfg(feature = "parquet")]
fn parquet_bytes(runs: &[crate::schema::Metadata]) -> Result<Vec<u8>> {
    crate::report::parquet::parquet(runs)
}

#[cfg(not(feature = "parquet"))]
fn parquet_bytes(_: &[crate::schema::Metadata]) -> Result<Vec<u8>> {
    unreachable!("refused before any work without the parquet feature")
}
