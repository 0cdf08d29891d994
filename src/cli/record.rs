//! `benchkeep record -- COMMAND`: run an offline benchmark command and record it.

mod matrix;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::common::{parse_config, parse_labels};
use crate::cli::parse;
use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::ingest::Format;
use crate::record::{self, OutputState, RecordRequest, argv};
use crate::schema::Status;
use crate::store::Store;
use crate::telemetry::GpuMode;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  benchkeep record -- vllm run-batch -i batch_5k.jsonl -o out.jsonl --model google/gemma-3-4b-it\n\nThe command's stdout and stderr still reach the terminal, and are kept in raw/<test_id>.log.\nCtrl-C and SIGTERM go to the command; the run is recorded when it ends. The run is in\nmetadata/<test_id>.json from the start, with status `running`.\n\nExit status: the command's own exit code is passed through (128 + N when signal N ended it),\nso a command that exits 2 or 4 looks like benchkeep's own codes (2 bad flags, 4 store error).\nWhen the command exits 0: 0, or 1 if its results were missing or every request failed.\nbenchkeep's own failures always print a line that starts with `error:` on stderr; the\ncommand's code is also kept in the metadata (`command.exit_code`). See docs/record.md."
)]
pub struct RecordArgs {
    /// Platform name, first part of the test id. Default for `vllm run-batch`: vllm-offline.
    #[arg(long)]
    pub platform: Option<String>,
    /// Model name as you call it. Default: the command's own --model.
    #[arg(long)]
    pub model: Option<String>,
    /// The results file the command writes. Default: the command's -o/--output-file/--output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Server or engine settings: a JSON object, or @file.json. Merged over the engine
    /// flags read from a vLLM command line (--max-model-len, --gpu-memory-utilization, ...).
    #[arg(long)]
    pub config: Option<String>,
    /// A key=value label to filter and group by later (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Force the results format instead of detecting it.
    #[arg(long, value_name = "FORMAT", value_parser = parse::format)]
    pub format: Option<Format>,
    /// A regex: model load time = time from start to the first output line that matches.
    /// Default: vLLM's engine-ready line (`init engine ... took`, `Application startup
    /// complete`), else its `Loading weights took` / `Model loading took` line.
    #[arg(long, value_name = "REGEX")]
    pub load_pattern: Option<String>,
    /// Model load time in seconds; overrides the detected one.
    #[arg(long, value_name = "SECONDS")]
    pub model_load_time: Option<f64>,
    /// GPU telemetry source: off, auto (NVML, else nvidia-smi, else rocm-smi), nvml,
    /// nvidia-smi, rocm-smi.
    #[arg(long, value_name = "SOURCE", default_value = "auto", value_parser = parse::gpu_mode)]
    pub gpu: GpuMode,
    /// GPU sampling interval: 500ms, 1s, 2.5s (at least 50ms).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse::interval)]
    pub gpu_interval: Duration,
    /// A tuning matrix axis: NAME=V1,V2,... (repeatable). One run per combination, with
    /// `{NAME}` in the command (and in --output) filled and the value put in `config`;
    /// the runs are linked as one matrix. See docs/record.md, "Tuning matrices".
    #[arg(long = "matrix", value_name = "NAME=V1,V2")]
    pub matrix: Vec<String>,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Turn the flags and the command line into a validated request.
pub(crate) fn request(args: RecordArgs) -> Result<RecordRequest, Error> {
    let cmd = &args.command;
    if cmd.is_empty() || cmd[0].is_empty() {
        return Err(Error::usage(
            "no command given: put it after `--`, e.g. benchkeep record -- vllm run-batch -i in.jsonl -o out.jsonl --model M",
        ));
    }
    let platform = match args.platform {
        Some(p) => p,
        None => argv::default_platform(cmd)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::usage(
                    "--platform is required for this command (e.g. --platform vllm-offline)",
                )
            })?,
    };
    let model = match args.model {
        Some(m) => m,
        None => argv::default_model(cmd).map(str::to_string).ok_or_else(|| {
            Error::usage(
                "--model is required: the command has no --model of its own (e.g. --model gemma3-4b)",
            )
        })?,
    };
    let output = match args.output {
        Some(o) => o,
        None => argv::flag_value(cmd, &argv::OUTPUT_FLAGS)
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::usage(
                    "--output is required: name the results file the command writes (the command has no -o/--output-file)",
                )
            })?,
    };
    let out_str = output.to_string_lossy();
    if out_str.starts_with("http://") || out_str.starts_with("https://") {
        return Err(Error::usage(
            "the results file is a URL; record needs a local path (give --output, or -o a local file)",
        ));
    }
    if let Some(t) = args.model_load_time
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(Error::usage(format!(
            "--model-load-time {t}: must be zero or a positive number of seconds"
        )));
    }
    let load_pattern =
        match &args.load_pattern {
            Some(p) => Some(regex::bytes::Regex::new(p).map_err(|e| {
                Error::usage(format!("--load-pattern {p:?}: not a valid regex ({e})"))
            })?),
            None => None,
        };
    let mut config = argv::vllm_engine_config(cmd);
    config.extend(parse_config(args.config.as_deref())?);
    Ok(RecordRequest {
        platform,
        model,
        input_file: argv::flag_value(cmd, &argv::INPUT_FLAGS).map(str::to_string),
        output,
        format: args.format,
        config,
        labels: parse_labels(&args.labels)?,
        load_pattern,
        model_load_time_s: args.model_load_time,
        gpu: args.gpu,
        gpu_visible: crate::cli::common::visible_gpus(),
        gpu_interval: args.gpu_interval,
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        command: args.command,
        sweep: None,
    })
}

pub fn run(store: &Store, settings: &Settings, args: RecordArgs) -> Result<i32> {
    if !args.matrix.is_empty() {
        return matrix::run(store, settings, args);
    }
    let req = request(args)?;
    refuse_output_in_store(store, &req.output)?;
    let recorded = record::record(store, req)?;
    let derived = derive::refresh(store, settings);
    let m = &recorded.metadata;
    let mut text = format!(
        "\n{}",
        crate::report::detail::seed_summary(m, &recorded.metadata_path)
    );
    text.push_str(&format!("  Log: raw/{}.log\n", m.test_id));
    // A closed stdout (`| head`) must not turn a failed command's exit code into 0.
    let _ = print_out(&text);

    let command = m.extra.get("command");
    let how = match (
        command
            .and_then(|c| c.get("signal_name"))
            .and_then(|v| v.as_str()),
        command
            .and_then(|c| c.get("exit_code"))
            .and_then(|v| v.as_i64()),
    ) {
        (Some(sig), _) => format!("was killed by {sig}"),
        (None, Some(code)) if code != 0 => format!("failed with exit code {code}"),
        _ => String::new(),
    };
    match (&m.status, &recorded.output) {
        (Status::Interrupted, _) => eprintln!(
            "benchkeep: the command was interrupted; the run is saved with status `interrupted`"
        ),
        (_, _) if !how.is_empty() => eprintln!(
            "benchkeep: the command {how}; the run is saved with status `{}` and the tail of its log",
            m.status
        ),
        (_, OutputState::Missing) => eprintln!(
            "benchkeep: the command wrote no results file; the run is saved with status `failed`"
        ),
        (_, OutputState::Unchanged) => eprintln!(
            "benchkeep: the command did not rewrite its results file (it is from before the run); the run is saved with status `failed`"
        ),
        (_, OutputState::Unreadable(why)) => eprintln!(
            "benchkeep: the results file could not be read ({why}); it is kept as is, the run is saved with status `failed`"
        ),
        (Status::Failed, OutputState::Analyzed) => {
            eprintln!("benchkeep: every request failed; the run is saved with status `failed`")
        }
        _ => {}
    }
    // benchkeep's own failures: an `error:` line, and exit 4 unless the command's own
    // (non-zero) code is passed through.
    let mut own_failure = false;
    if let Some(e) = command
        .and_then(|c| c.get("log_error"))
        .and_then(|v| v.as_str())
    {
        eprintln!(
            "error: writing the command's log failed ({e}); raw/{}.log keeps what was written before",
            m.test_id
        );
        own_failure = true;
    }
    if let Err(e) = &derived {
        eprintln!("error: the run is saved, but regenerating the reports failed: {e:#}");
        own_failure = true;
    }
    if own_failure && recorded.exit_code == exit::OK {
        return Ok(exit::STORE_IO);
    }
    Ok(recorded.exit_code)
}

/// The command's results file must not lie inside the store: there it could be the run's
/// own log (`raw/<id>.log`), metadata or a derived file, and the two would mix. Only a
/// `.jsonl` file right in `raw/` (the seed's layout) is taken.
pub(crate) fn refuse_output_in_store(store: &Store, output: &std::path::Path) -> Result<(), Error> {
    let absolute = |p: &std::path::Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // The file itself may not exist yet: resolve the nearest existing ancestor.
        let mut tail = Vec::new();
        let mut at = p.as_path();
        loop {
            if let Ok(real) = at.canonicalize() {
                return tail.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
            }
            match (at.parent(), at.file_name()) {
                (Some(parent), Some(name)) => {
                    tail.push(name.to_os_string());
                    at = parent;
                }
                _ => return p,
            }
        }
    };
    let root = absolute(store.root());
    let out = absolute(output);
    // The seed's own layout (a benchmark writing `raw/<platform>-<model>-<n>-<date>.jsonl`
    // itself) stays allowed: a `.jsonl` file right in `raw/` is imported where it lies,
    // and one that a run already owns is refused later ("would overwrite").
    let seed_layout = out.parent() == Some(root.join("raw").as_path())
        && out.extension().is_some_and(|e| e == "jsonl");
    if out.starts_with(&root) && !seed_layout {
        return Err(Error::usage(format!(
            "--output {}: the results file lies inside the store ({}), where benchkeep keeps its own files (raw/<id>.log, raw/<id>.jsonl, metadata); have the command write elsewhere, e.g. --output ./results.jsonl, and record copies it in (only a raw/<name>.jsonl results file may lie in the store)",
            output.display(),
            store.root().display()
        )));
    }
    Ok(())
}
