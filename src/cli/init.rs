//! `benchkeep init --store URL`: make a shared store in object storage (its manifest),
//! after proving the backend refuses a second create of the same object.

use anyhow::Result;
use clap::Args;

use crate::cli::{common, print_out};
use crate::error::{Error, exit};
use crate::store::remote::{LAYOUT_VERSION, MANIFEST, Manifest, Remote, is_url};

#[derive(Debug, Args)]
pub struct InitArgs {}

pub fn run(store: &str, _args: InitArgs) -> Result<i32> {
    if !is_url(store) {
        return Err(Error::usage(format!(
            "init --store {store:?}: init makes a store at a URL (s3://bucket/prefix, file:///dir); a directory store needs no init (its first write creates it)"
        ))
        .into());
    }
    let remote = Remote::open(&common::remote_config(store))?;
    let manifest = Manifest {
        layout_version: LAYOUT_VERSION,
        created_by: format!("benchkeep {}", env!("CARGO_PKG_VERSION")),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let shown = remote.shown().to_string();
    if remote.init(&manifest)? {
        print_out(&format!(
            "Created the store {shown} ({MANIFEST}; the backend refuses a second create, so run ids are safe with many writers).\nUse it with --store {shown} or BENCHKEEP_STORE={shown}.\n"
        ))?;
    } else {
        let existing = remote.manifest()?;
        print_out(&format!(
            "{shown} is already a benchkeep store (created {} by {}); nothing changed.\n",
            existing.created_at, existing.created_by
        ))?;
    }
    Ok(exit::OK)
}
