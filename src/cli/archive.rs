//! `benchkeep archive ID...` and `benchkeep restore ID...`: move runs out of the live store
//! into `archive/` and back (never deleting or overwriting; protocol in `store::archive`),
//! then rebuild the derived files so archived runs leave the reports.

use anyhow::Result;
use clap::Args;

use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::exit;
use crate::store::Store;
use crate::store::archive::{self, Direction};

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Runs to archive: test ids, or unique prefixes of live ids.
    #[arg(required_unless_present = "list")]
    pub ids: Vec<String>,
    /// List the archived runs instead.
    #[arg(long, conflicts_with = "ids")]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Archived runs to bring back: whole test ids (see `benchkeep archive --list`).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

pub fn run_archive(store: &Store, settings: &Settings, args: ArchiveArgs) -> Result<i32> {
    if args.list {
        return list(store);
    }
    transfer_all(store, settings, &args.ids, Direction::Archive)
}

pub fn run_restore(store: &Store, settings: &Settings, args: RestoreArgs) -> Result<i32> {
    transfer_all(store, settings, &args.ids, Direction::Restore)
}

fn transfer_all(store: &Store, settings: &Settings, ids: &[String], dir: Direction) -> Result<i32> {
    let mut result = Ok(exit::OK);
    for id in ids {
        match archive::transfer(store, id, dir) {
            Ok(moved) => {
                let (verb, undo) = match dir {
                    Direction::Archive => ("archived", "restore"),
                    Direction::Restore => ("restored", "archive"),
                };
                let mut text = format!("{verb} {}:\n", moved.test_id);
                for f in &moved.files {
                    text.push_str(&format!("  {f}\n"));
                }
                text.push_str(&format!("undo: benchkeep {undo} {}\n", moved.test_id));
                print_out(&text)?;
            }
            Err(e) => {
                // Keep going with the other ids; the first error decides the exit code.
                eprintln!("error: {id}: {e:#}");
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
    }
    if let Err(e) = derive::refresh(store, settings) {
        eprintln!("warning: derived files not rebuilt: {e:#}");
    }
    // Each error was printed above; the first one decides the exit code.
    Ok(match result {
        Ok(code) => code,
        Err(e) => crate::error::exit_code_for(&e),
    })
}

fn list(store: &Store) -> Result<i32> {
    let mut out = String::new();
    for entry in archive::list(store)? {
        match entry {
            Ok(m) => out.push_str(&format!(
                "{}  {}  {}  {}\n",
                m.test_id, m.status, m.platform, m.model
            )),
            Err((path, why)) => eprintln!("warning: skipped {}: {why}", path.display()),
        }
    }
    if out.is_empty() {
        out.push_str("no archived runs\n");
    }
    print_out(&out)?;
    Ok(exit::OK)
}
