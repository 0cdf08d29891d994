//! `benchkeep import`: every benchmark other tools already ran (files and folders) into the
//! store.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::common::parse_labels;
use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::import::{self, ImportOptions, Outcome};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Result files and folders (walked recursively; unknown files are listed and skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The server's platform name for every imported run (default: `vllm` for vLLM's own
    /// files, else the tool's name: guidellm, aiperf, genai-perf, llmperf, ...).
    #[arg(long)]
    pub platform: Option<String>,
    /// The model name for every imported run (default: as the tool recorded it).
    #[arg(long)]
    pub model: Option<String>,
    /// A key=value label for every imported run (repeatable); `input=NAME` overrides the
    /// input identity the tool recorded, for pairing in the head-to-head.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// List what would be imported and skipped, and why; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(store: &Store, settings: &Settings, args: ImportArgs) -> Result<i32> {
    for (flag, v) in [("--platform", &args.platform), ("--model", &args.model)] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(Error::usage(format!("{flag}: must not be empty")).into());
        }
    }
    let argv: Vec<String> = std::env::args().collect();
    let opts = ImportOptions {
        paths: args.paths,
        platform: args.platform,
        model: args.model,
        labels: parse_labels(&args.labels)?,
        dry_run: args.dry_run,
        command: Some(crate::redact::command_line(&argv)),
        // Times a tool wrote without a zone are this machine's local times.
        local_offset: Some(chrono::Local::now().fixed_offset().offset().to_owned()),
    };
    let outcomes = import::import(store, &opts)?;
    let (mut runs, mut files, mut skipped, mut failed) = (0, 0, 0, 0);
    let mut text = String::new();
    let verb = if opts.dry_run {
        "would import"
    } else {
        "imported"
    };
    for o in &outcomes {
        match o {
            Outcome::Imported {
                path,
                tool,
                version,
                runs: ids,
                redacted,
            } => {
                files += 1;
                runs += ids.len();
                let v = version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "{verb} {} ({tool}{v}): {} run{}\n",
                    path.display(),
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                ));
                for id in ids {
                    text.push_str(&format!("  {id}\n"));
                }
                if !redacted.is_empty() {
                    text.push_str(&format!(
                        "  secrets removed from the stored copy: {}\n",
                        redacted.join(", ")
                    ));
                }
            }
            Outcome::Skipped { path, reason } => {
                skipped += 1;
                text.push_str(&format!("skipped {}: {reason}\n", path.display()));
            }
            Outcome::Failed { path, reason } => {
                failed += 1;
                text.push_str(&format!("FAILED {}: {reason}\n", path.display()));
            }
        }
    }
    text.push_str(&format!(
        "{} {runs} run{} from {files} file{}; {skipped} skipped, {failed} failed{}\n",
        if opts.dry_run {
            "Would import"
        } else {
            "Imported"
        },
        if runs == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
        if opts.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
    ));
    print_out(&text)?;
    if !opts.dry_run
        && runs > 0
        && let Err(e) = derive::refresh(store, settings)
    {
        eprintln!("warning: the runs are saved, but regenerating the reports failed: {e:#}");
        return Ok(exit::STORE_IO);
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} file(s) could not be imported (listed above with FAILED); the others were"
        );
        return Ok(exit::USAGE);
    }
    Ok(exit::OK)
}
