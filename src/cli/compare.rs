//! `benchkeep compare`: every run side by side (the seed's compare_benchmarks.py).

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::exit;
use crate::report::{self, markdown, rows::Row, table};
use crate::select::{self, SortKey};
use crate::store::{Runs, Store};

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Sort order.
    #[arg(long, value_enum, default_value = "date")]
    pub sort: SortKey,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned table for a terminal.
    Table,
    /// GitHub Markdown, as in reports/COMPARISON.md.
    Markdown,
    /// The summary document (analysis/summary.json) of the selected runs.
    Json,
    /// One row per run.
    Csv,
}

pub fn run(store: &Store, args: CompareArgs) -> Result<i32> {
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    if all.runs.is_empty() {
        print_out(&format!(
            "No benchmarks found in {}/metadata/.\nAdd one with `benchkeep analyze --platform vllm-offline --model gemma3-4b --input results.jsonl --total-time 2400`,\nor try `benchkeep demo`.\n",
            store.root().display()
        ))?;
        return Ok(exit::OK);
    }
    // Derived files always describe the whole store, whatever the filter.
    {
        let _lock = store.lock()?;
        store.write_derived_if_stale(&all)?;
    }
    let mut selected: Vec<_> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
    if selected.is_empty() {
        print_out(&format!("No runs match {}.\n", filter.describe()))?;
        return Ok(exit::OK);
    }
    select::sort(&mut selected, args.sort);
    let rows: Vec<Row> = selected.iter().map(Row::from_metadata).collect();
    let text = match args.format {
        OutputFormat::Table => table::terminal(&rows),
        OutputFormat::Markdown => format!("# Benchmark Comparison\n\n{}", markdown::table(&rows)),
        OutputFormat::Csv => table::csv(&rows),
        OutputFormat::Json => {
            let runs = Runs {
                runs: selected,
                skipped: all.skipped,
                fingerprint: all.fingerprint,
            };
            let mut s = serde_json::to_string_pretty(&report::summary::value(&runs))?;
            s.push('\n');
            s
        }
    };
    print_out(&text)?;
    if matches!(args.format, OutputFormat::Table | OutputFormat::Markdown) {
        eprintln!(
            "Report saved: {}",
            store.root().join(report::COMPARISON_PATH).display()
        );
    }
    Ok(exit::OK)
}
