//! `benchkeep verify`: check the store read-only and say how to fix each problem.

use anyhow::Result;
use clap::Args;

use crate::cli::print_out;
use crate::error::exit;
use crate::store::Store;
use crate::store::verify::{Options, verify};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Skip the sha256 of raw files (sizes are still checked).
    #[arg(long)]
    pub no_hash: bool,
}

pub fn run(store: &Store, args: VerifyArgs) -> Result<i32> {
    let report = verify(
        store,
        Options {
            skip_hash: args.no_hash,
        },
    )?;
    let mut out = String::new();
    for p in &report.problems {
        out.push_str(&format!(
            "problem: {}: {}\n  fix: {}\n",
            p.path.display(),
            p.message,
            p.fix
        ));
    }
    for w in &report.warnings {
        out.push_str(&format!(
            "warning: {}: {}\n  fix: {}\n",
            w.path.display(),
            w.message,
            w.fix
        ));
    }
    if !report.warnings.is_empty() {
        out.push_str(&format!(
            "catalog: {} row(s) checked against metadata/, {} out of step (warnings; the store is fine)\n",
            report.catalog_rows_checked,
            report.warnings.len()
        ));
    }
    out.push_str(&format!(
        "checked {} run(s), {} raw file(s), {} MB hashed in {}: {}\n",
        report.runs_checked,
        report.raw_files_checked,
        report.bytes_hashed / 1_000_000,
        store.root().display(),
        match report.problems.len() {
            0 => "no problems".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    ));
    print_out(&out)?;
    Ok(if report.problems.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}
