//! `benchkeep show ID`: one run in full (a unique prefix of the id is enough).

use anyhow::Result;
use clap::Args;

use crate::cli::print_out;
use crate::error::exit;
use crate::report::detail;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The test id, or a unique prefix of it.
    pub id: String,
    /// Print the metadata file as JSON instead.
    #[arg(long)]
    pub json: bool,
}

pub fn run(store: &Store, args: ShowArgs) -> Result<i32> {
    let meta = store.find(&args.id)?;
    let text = if args.json {
        String::from_utf8(crate::store::to_json(&meta)?)?
    } else {
        detail::render(&meta)
    };
    print_out(&text)?;
    Ok(exit::OK)
}
