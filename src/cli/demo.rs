//! `benchkeep demo`: a small end-to-end benchmark against the built-in simulator.

use anyhow::Result;
use clap::Args;

use crate::cli::print_out;
use crate::demo::{DemoOptions, demo};
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::report::{self, rows::Row, table};
use crate::schema::Status;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Requests per server.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub requests: u64,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: u32,
    /// No progress bars or notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(store: &Store, settings: &Settings, args: DemoArgs) -> Result<i32> {
    if args.requests == 0 || args.concurrency == 0 {
        return Err(Error::usage("--requests and --concurrency must be at least 1").into());
    }
    let opts = DemoOptions {
        requests: args.requests,
        concurrency: args.concurrency,
        quiet: args.quiet,
        command: Some(crate::redact::command_line(
            &std::env::args().collect::<Vec<_>>(),
        )),
        ..DemoOptions::default()
    };
    let outcomes = crate::cli::run::runtime()?.block_on(demo(store, &opts))?;
    // A run whose final write failed is not reported as saved (its metadata says `running`).
    if let Some(o) = outcomes
        .iter()
        .find(|o| !o.metadata_saved || o.store_error.is_some())
    {
        let cause = o
            .store_error
            .as_ref()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| "the final metadata write failed".into());
        return Err(Error::StoreIo(format!(
            "demo run {} could not be saved: {cause}; `benchkeep recover {}` finishes it once the store is writable",
            o.metadata.test_id, o.metadata.test_id
        ))
        .into());
    }
    if let Err(e) = derive::refresh(store, settings) {
        eprintln!("warning: the runs are saved, but regenerating the reports failed: {e:#}");
    }
    let rows: Vec<Row> = outcomes
        .iter()
        .map(|o| Row::from_metadata(&o.metadata))
        .collect();
    let mut text =
        String::from("\nvLLM vs Ollama (built-in simulators, same synthetic workload)\n\n");
    text.push_str(&table::terminal(&rows));
    // The same head-to-head lines as `benchkeep compare`.
    let metas: Vec<_> = outcomes.iter().map(|o| o.metadata.clone()).collect();
    let h2h = report::h2h::build(&metas, settings);
    for g in &h2h.groups {
        text.push_str(&format!(
            "\nHead-to-head (baseline {}):\n",
            g.baseline().platform
        ));
        for line in g.ratio_sentences() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text.push('\n');
    for o in &outcomes {
        let m = &o.metadata;
        let ttft = m
            .results
            .latency_ms
            .as_ref()
            .and_then(|l| l.ttft.as_ref())
            .map(|t| format!(", TTFT p50 {:.1} ms", t.p50))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {}: {:.0} output tok/s{ttft} -> {}\n",
            m.platform,
            m.results.output_tokens_per_sec,
            o.metadata_path.display()
        ));
    }
    text.push_str(&format!(
        "\nReport: {}\nNext: `benchkeep report` (the HTML page with charts), `benchkeep compare` (every run), `benchkeep show {}` (one run in full)\n",
        store.root().join(report::COMPARISON_PATH).display(),
        outcomes.first().map(|o| o.metadata.test_id.as_str()).unwrap_or("ID"),
    ));
    print_out(&text)?;
    if outcomes.iter().any(|o| o.interrupted) {
        return Ok(exit::INTERRUPTED);
    }
    if outcomes.iter().any(|o| o.metadata.status == Status::Failed) {
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}
