//! The command line: clap definitions and glue, one file per command.
//!
//! Each command turns its flags into validated library values, calls the library, and
//! prints. [`main`] prints the error chain and maps it to the documented exit code.

mod analyze;
mod archive;
mod bundle;
mod common;
mod compare;
mod decide;
mod demo;
mod export;
mod gate;
mod import;
mod init;
mod parse;
mod push;
mod query;
mod record;
mod recover;
mod remote;
mod report;
mod requests;
pub mod run;
mod show;
pub mod simulate;
mod sweep;
mod sweep_matrix;
mod sweep_shard;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::derive::Settings;
use crate::error::{exit, exit_code_for};
use crate::store::Store;

/// The environment variable that sets the baseline platform for every derived file.
pub const BASELINE_ENV: &str = "BENCHKEEP_BASELINE_PLATFORM";

/// The environment variable that sets the price of one GPU hour (US dollars) for the cost
/// figures of every derived file.
pub const PRICE_ENV: &str = "BENCHKEEP_GPU_HOURLY_USD";

/// Run, record, analyze and compare LLM inference benchmarks, and never lose a result.
#[derive(Debug, Parser)]
#[command(name = "benchkeep", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The store: a directory (its raw/, metadata/, analysis/ and reports/ are created on
    /// first write), or a URL made by `benchkeep init`: s3://bucket/prefix, file:///dir
    /// (gs://, az:// in builds with those features); credentials from the provider's
    /// variables (AWS_ACCESS_KEY_ID, ...), never in the URL.
    #[arg(
        long,
        global = true,
        env = "BENCHKEEP_STORE",
        default_value = "benchmarks",
        value_name = "DIR|URL"
    )]
    pub store: String,

    /// The local working copy of a URL store (default: under ~/.cache/benchkeep/spool/).
    #[arg(long, global = true, env = "BENCHKEEP_SPOOL", value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// The platform head-to-head ratios are computed against in the derived files that
    /// every command refreshes (`report` and `compare` also take --baseline-platform).
    #[arg(
        long = "derived-baseline-platform",
        global = true,
        hide = true,
        env = BASELINE_ENV,
        value_name = "NAME"
    )]
    pub baseline_platform: Option<String>,

    /// The price of one GPU hour for the cost figures of the derived files that every
    /// command refreshes (`report` and `decide` also take --gpu-hourly-usd).
    #[arg(
        long = "derived-gpu-hourly-usd",
        global = true,
        hide = true,
        env = PRICE_ENV,
        value_name = "USD"
    )]
    pub gpu_hourly_usd: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive a benchmark against a live server and record everything as it happens.
    Run(Box<run::RunArgs>),
    /// Import an existing results file (the seed's analyze_benchmark.py, same flags).
    Analyze(analyze::AnalyzeArgs),
    /// Import every benchmark other tools already ran (vllm bench, GuideLLM, AIPerf,
    /// genai-perf, inference-benchmarker, llmperf): files and folders, one run per benchmark.
    Import(import::ImportArgs),
    /// Run an offline benchmark command (vllm run-batch, your script) and record it.
    Record(record::RecordArgs),
    /// All runs side by side, the head-to-head, or deltas against a baseline run
    /// (--baseline); writes reports/COMPARISON.md and analysis/summary.json.
    Compare(compare::CompareArgs),
    /// Judge the latest run against the history of its platform, model, input and load:
    /// a change beyond --threshold AND significant at --alpha fails (exit 1); exit 6 when
    /// there is not enough data to tell.
    Gate(gate::GateArgs),
    /// Rebuild every derived file, including the self-contained HTML report
    /// (reports/index.html) with charts.
    Report(report::ReportArgs),
    /// The decision summary: per like-for-like group, who wins each figure, by how much,
    /// how sure, at what cost, and the caveats (exit 3 when nothing is comparable).
    Decide(decide::DecideArgs),
    /// An upstream bug report for one run: ISSUE.md, metadata, config, failing requests,
    /// log tail, secrets redacted; a folder and a .tar.gz.
    Bundle(bundle::BundleArgs),
    /// One flat row per run (every metadata field, dotted names) as CSV or JSON Lines.
    Export(export::ExportArgs),
    /// Send runs to a tracker you already run (MLflow): params, metrics, tags; once each.
    Push(push::PushArgs),
    /// One run in full.
    Show(show::ShowArgs),
    /// "What was the throughput for X?": the latest matching run's figures.
    Query(query::QueryArgs),
    /// Many runs under a rising load (a list, --auto, or the max-goodput search under
    /// --slo), each a normal run linked by sweep.id; stops at saturation; --resume.
    Sweep(Box<sweep::SweepArgs>),
    /// Built-in OpenAI + Ollama server with set latencies (tests, dry runs, demos).
    Simulate(simulate::SimulateArgs),
    /// Check the store read-only: files parse, checksums match, nothing orphaned.
    Verify(verify::VerifyArgs),
    /// Finish runs that were cut off (kill -9, power loss) from their raw log.
    Recover(recover::RecoverArgs),
    /// A small end-to-end benchmark against the built-in simulator (start here).
    Demo(demo::DemoArgs),
    /// Write a request file (OpenAI Batch input lines) for `run --input` and `vllm run-batch`.
    Requests(requests::RequestsArgs),
    /// Move runs out of the live store into archive/ (out of every report; never deleted).
    Archive(archive::ArchiveArgs),
    /// Bring archived runs back into the live store.
    Restore(archive::RestoreArgs),
    /// Make a shared store at a URL (s3://bucket/prefix): write its manifest after
    /// proving the backend refuses a second create of the same object.
    Init(init::InitArgs),
}

/// Parse the command line, run it, print any error, and return the exit code.
pub fn main() -> i32 {
    ignore_sigxfsz();
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => exit::OK,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit_code_for(&err)
        }
    }
}

/// Parse the process arguments. `simulate` never touches a store, so the global `--store`
/// is hidden from its help (it is still accepted, and ignored, there).
fn parse_args() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    cmd.build();
    let cmd = cmd.mut_subcommand("simulate", |s| s.mut_arg("store", |a| a.hide(true)));
    let matches = cmd.try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// Run one parsed command; `Ok` carries the exit code of a command that finished.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = Settings {
        baseline_platform: cli.baseline_platform.filter(|s| !s.trim().is_empty()),
        // An invalid value is refused by `report` and `decide`; elsewhere it is ignored.
        gpu_hourly_usd: common::gpu_price(cli.gpu_hourly_usd.as_deref())
            .ok()
            .flatten(),
    };
    if let Command::Init(args) = cli.command {
        return init::run(&cli.store, args);
    }
    if crate::store::remote::is_url(&cli.store) {
        return remote::run(&cli.store, cli.spool, &settings, cli.command);
    }
    dispatch(&Store::new(cli.store), &settings, cli.command)
}

/// Run a command on a store directory (a local store, or the spool of a URL store).
fn dispatch(store: &Store, settings: &Settings, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Analyze(args) => analyze::run(store, settings, args),
        Command::Import(args) => import::run(store, settings, args),
        Command::Record(args) => record::run(store, settings, args),
        Command::Compare(args) => compare::run(store, args),
        Command::Gate(args) => gate::run(store, args),
        Command::Report(args) => report::run(store, args),
        Command::Decide(args) => decide::run(store, args),
        Command::Bundle(args) => bundle::run(store, args),
        Command::Export(args) => export::run(store, args),
        Command::Push(args) => push::run(store, args),
        Command::Show(args) => show::run(store, args),
        Command::Query(args) => query::run(store, args),
        Command::Verify(args) => verify::run(store, args),
        Command::Run(args) => run::run(store, settings, *args),
        Command::Sweep(args) => sweep::run(store, settings, *args),
        Command::Recover(args) => recover::run(store, settings, args),
        Command::Demo(args) => demo::run(store, settings, args),
        Command::Requests(args) => requests::run(store, args),
        Command::Archive(args) => archive::run_archive(store, settings, args),
        Command::Restore(args) => archive::run_restore(store, settings, args),
        Command::Simulate(args) => simulate::run(args).map(|()| exit::OK),
        Command::Init(_) => Err(crate::error::Error::usage(
            "init takes a store URL: benchkeep init --store s3://bucket/prefix",
        )
        .into()),
    }
}

/// `ulimit -f` must give EFBIG (handled as a store error), not kill us (RELIABILITY P6).
fn ignore_sigxfsz() {
    // SAFETY: setting a signal to SIG_IGN at startup, before any threads exist.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Write to stdout; a closed pipe (`| head`) surfaces as a `BrokenPipe` error that [`main`]
/// treats as success.
pub(crate) fn print_out(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
