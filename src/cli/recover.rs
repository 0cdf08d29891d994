//! `benchkeep recover [ID]`: finish runs cut off by kill -9 or a crash: `run`s from their raw
//! log, `record`s from what their command wrote.

use anyhow::Result;
use clap::Args;

use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::exit;
use crate::recover::{abandoned, check_recoverable, check_writable, recover};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The run's id (or a unique prefix). Without it: every run marked `running` on this
    /// host whose process is gone.
    pub id: Option<String>,
    /// Recover even if the run was started on another host, or its pid now belongs to
    /// another process.
    #[arg(long)]
    pub force: bool,
}

pub fn run(store: &Store, settings: &Settings, args: RecoverArgs) -> Result<i32> {
    store.check_layout()?;
    let swept = crate::store::verify::remove_dead_temps(store);
    if !swept.is_empty() {
        eprintln!(
            "Removed {} temp file(s) left by interrupted writes (nothing referred to them)",
            swept.len()
        );
    }
    let runs = match &args.id {
        Some(id) => {
            let meta = store.find(id)?;
            check_recoverable(&meta, args.force)?;
            check_writable(store, &meta)?;
            vec![meta]
        }
        None => {
            let runs: Vec<_> = abandoned(store)?
                .into_iter()
                .filter(|m| match check_writable(store, m) {
                    Ok(()) => true,
                    Err(e) => {
                        eprintln!("warning: {e}; left as it is");
                        false
                    }
                })
                .collect();
            if runs.is_empty() {
                print_out(&format!(
                    "Nothing to recover in {}: no run is marked running with its process gone.\n",
                    store.root().display()
                ))?;
                return Ok(exit::OK);
            }
            runs
        }
    };
    let mut code = exit::OK;
    for meta in runs {
        let id = meta.test_id.clone();
        let r = recover(store, meta)?;
        let derived = derive::refresh(store, settings);
        let mut text =
            crate::report::detail::run_summary(&r.metadata, &r.metadata_path, &r.raw_path);
        text.push_str(&format!(
            "  Recovered: {} finished requests kept\n",
            r.metadata.test.num_requests
        ));
        if let Some((path, bytes)) = &r.torn {
            text.push_str(&format!(
                "  Torn tail: {bytes} bytes moved aside to {} (kept, not deleted)\n",
                path.display()
            ));
        }
        text.push('\n');
        print_out(&text)?;
        if !r.corrupt.is_empty() {
            for b in &r.corrupt {
                eprintln!(
                    "error: {}:{} (byte {}): {}; left in place",
                    r.raw_path.display(),
                    b.line,
                    b.offset,
                    b.reason
                );
            }
            eprintln!(
                "error: run {id}: {} corrupt line(s) in the middle of the raw log were reported, not cut; the run is finished without them. Check the disk and restore the file from a backup if you have one",
                r.corrupt.len()
            );
            code = exit::FAILURE;
        }
        if let Err(e) = &derived {
            eprintln!("warning: run {id} is finished, but regenerating the reports failed: {e:#}");
            if code == exit::OK {
                code = exit::STORE_IO;
            }
        }
    }
    Ok(code)
}
