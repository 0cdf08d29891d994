//! `benchkeep report`: rebuild every derived file, including the self-contained HTML page
//! `reports/index.html` with its charts from the raw files.

use anyhow::Result;
use clap::Args;

use crate::cli::common::gpu_price;
use crate::cli::print_out;
use crate::cli::{BASELINE_ENV, PRICE_ENV};
use crate::derive::{self, Settings};
use crate::error::exit;
use crate::report;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The platform head-to-head ratios are computed against (default: ollama*, else the
    /// alphabetically first platform of each group).
    #[arg(long, value_name = "NAME", env = BASELINE_ENV)]
    pub baseline_platform: Option<String>,
    /// Price of one GPU hour in US dollars: adds cost per 1M output tokens and per 1,000
    /// requests to the decision summary (overrides a run's label or config value
    /// gpu_hourly_usd).
    #[arg(long, value_name = "USD", env = PRICE_ENV, allow_hyphen_values = true)]
    pub gpu_hourly_usd: Option<String>,
}

pub fn run(store: &Store, args: ReportArgs) -> Result<i32> {
    let price = gpu_price(args.gpu_hourly_usd.as_deref())?;
    store.ensure_layout()?;
    let _lock = store.lock()?;
    let runs = store.load_all()?;
    runs.warn_skipped();
    for note in
        crate::report::names::same_engine_notes(runs.runs.iter().map(|m| m.platform.as_str()))
    {
        eprintln!("{note}");
    }
    let settings = Settings {
        baseline_platform: args.baseline_platform,
        gpu_hourly_usd: price,
    };
    let written = derive::write_report(store, &runs, &settings)?;
    for w in &written.warnings {
        eprintln!("warning: {w}");
    }
    let root = store.root();
    print_out(&format!(
        "Report saved: {}\n  {} run(s), {} like-for-like group(s), {} chart(s) in {}\n  also {} and {}\n",
        root.join(report::HTML_PATH).display(),
        written.runs,
        written.groups,
        written.charts,
        root.join(report::CHARTS_DIR).display(),
        root.join(report::COMPARISON_PATH).display(),
        root.join(report::SUMMARY_PATH).display(),
    ))?;
    Ok(exit::OK)
}
