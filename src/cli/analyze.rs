//! `benchkeep analyze`: import an existing results file (the seed's analyze_benchmark.py).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::analyze::{self, AnalyzeRequest, ManualGpu};
use crate::cli::common::{parse_config, parse_labels};
use crate::cli::{parse, print_out};
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::ingest::{self, Input, InputFormat};
use crate::schema::{SourceKind, Status};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Platform name: vllm-offline, vllm-serve, ollama, ... (first part of the test id).
    #[arg(long)]
    pub platform: String,
    /// Model name as you call it (gemma3-4b, google/gemma-3-4b-it, gemma3:12b).
    #[arg(long)]
    pub model: String,
    /// The results file (JSONL). It is copied into the store, never moved or changed.
    #[arg(long)]
    pub input: PathBuf,
    /// The request file the results came from (e.g. batch_5k.jsonl): its sha256 is recorded
    /// as test.input_sha256, so runs on the same requests are compared head to head.
    #[arg(long, value_name = "FILE")]
    pub requests: Option<PathBuf>,
    /// Server or engine settings: a JSON object, or @file.json.
    #[arg(long)]
    pub config: Option<String>,
    /// Total processing time in seconds (wall time of the benchmark). Optional when the
    /// file carries its own timings (benchkeep raw logs).
    #[arg(long, allow_negative_numbers = true)]
    pub total_time: Option<f64>,
    /// Model load time in seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub model_load_time: Option<f64>,
    /// A key=value label to filter and group by later (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Force the input format instead of detecting it: a line format (openai,
    /// openai-batch, ollama, vllm-offline, benchkeep), or a whole-document format
    /// (vllm-bench-serve: `vllm bench serve --save-result` / `--append-result` JSON, one file
    /// holding one or several runs, each imported as its own run).
    #[arg(long, value_name = "FORMAT", value_parser = input_format)]
    pub format: Option<InputFormat>,
    /// GPU name, for offline runs whose GPU was noted by hand (e.g. "RTX 4080").
    #[arg(long)]
    pub gpu_name: Option<String>,
    /// GPU memory in GB.
    #[arg(long, allow_negative_numbers = true)]
    pub vram_total_gb: Option<f64>,
    /// Peak GPU memory used in GB.
    #[arg(long, allow_negative_numbers = true)]
    pub vram_used_gb: Option<f64>,
    /// Mean GPU utilization in percent.
    #[arg(long, allow_negative_numbers = true)]
    pub gpu_util: Option<f64>,
    /// Treat unparseable lines as an error (nothing is written) instead of a warning.
    #[arg(long)]
    pub strict: bool,
}

/// The shortest `--total-time` taken: below a millisecond, throughput figures are absurd.
const MIN_TOTAL_TIME_S: f64 = 0.001;
/// The longest time taken (about 31 years): above it, rounding is no longer exact.
const MAX_SECONDS: f64 = 1e9;
/// The largest GPU memory figure taken, in GB.
const MAX_GB: f64 = 1e6;

pub fn run(store: &Store, settings: &Settings, args: AnalyzeArgs) -> Result<i32> {
    if let Some(t) = args.total_time
        && !(t.is_finite() && (MIN_TOTAL_TIME_S..=MAX_SECONDS).contains(&t))
    {
        return Err(Error::usage(format!(
            "--total-time {t}: must be a number of seconds from {MIN_TOTAL_TIME_S} to {MAX_SECONDS:e} (figures derived from it must stay finite and sensible), e.g. --total-time 2400"
        ))
        .into());
    }
    if let Some(t) = args.model_load_time
        && !(t.is_finite() && (0.0..=MAX_SECONDS).contains(&t))
    {
        return Err(Error::usage(format!(
            "--model-load-time {t}: must be a number of seconds from 0 to {MAX_SECONDS:e}"
        ))
        .into());
    }
    for (flag, v) in [
        ("--vram-total-gb", args.vram_total_gb),
        ("--vram-used-gb", args.vram_used_gb),
        ("--gpu-util", args.gpu_util),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && (0.0..=MAX_GB).contains(&v))
        {
            return Err(
                Error::usage(format!("{flag} {v}: must be a number from 0 to {MAX_GB:e}")).into(),
            );
        }
    }
    if args.gpu_util.is_some_and(|u| u > 100.0) {
        return Err(Error::usage("--gpu-util: a percentage, 0 to 100").into());
    }
    let config = parse_config(args.config.as_deref())?;
    let labels = parse_labels(&args.labels)?;
    let gpu = ManualGpu {
        name: args.gpu_name,
        vram_total_gb: args.vram_total_gb,
        vram_used_gb: args.vram_used_gb,
        utilization_percent: args.gpu_util,
    };
    ingest::check_regular_file(&args.input)?;
    let input = ingest::detect_input(&args.input, args.format)?;
    let argv: Vec<String> = std::env::args().collect();
    let req = AnalyzeRequest {
        platform: args.platform,
        model: args.model,
        input: args.input,
        requests: args.requests,
        format: match &input {
            Input::Lines(f) => Some(*f),
            Input::Document(_) => None,
        },
        config,
        labels,
        total_time_s: args.total_time,
        model_load_time_s: args.model_load_time,
        gpu,
        strict: args.strict,
        source_kind: SourceKind::Analyze,
        command: Some(crate::redact::command_line(&argv)),
    };
    let imported = match &input {
        Input::Lines(_) => vec![analyze::analyze_file(store, req.clone())?],
        Input::Document(doc) => analyze::analyze_document(store, &req, doc)?,
    };
    let derived = derive::refresh(store, settings);
    let mut text = String::new();
    for (i, run) in imported.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&crate::report::detail::seed_summary(
            &run.metadata,
            &run.metadata_path,
        ));
    }
    if let Input::Document(_) = input {
        let n = imported.len();
        text.push_str(&format!(
            "\nImported {n} run{} from {}\n",
            if n == 1 { "" } else { "s" },
            req.input.display()
        ));
    }
    print_out(&text)?;
    if let Err(e) = derived {
        eprintln!("warning: the run is saved, but regenerating the reports failed: {e:#}");
        return Ok(exit::STORE_IO);
    }
    if imported.iter().all(|r| r.metadata.status == Status::Failed) {
        match input {
            Input::Lines(_) => eprintln!(
                "error: every request in {} failed; the run is saved with status `failed`",
                imported[0]
                    .metadata
                    .test
                    .input_file
                    .as_deref()
                    .unwrap_or("the input")
            ),
            Input::Document(_) => eprintln!(
                "error: every request of every run in {} failed; the runs are saved with status `failed`",
                req.input.display()
            ),
        }
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// `--format`: a line format or a whole-document format.
fn input_format(s: &str) -> Result<InputFormat, String> {
    parse::named("format", s, &InputFormat::names(), InputFormat::from_name)
}
