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
    let meta = match store.find(&args.id) {
        Ok(m) => m,
        Err(e) if crate::error::exit_code_for(&e) == exit::NOT_FOUND => {
            let archived = crate::store::archive::archived_metadata_path(store, &args.id);
            if archived.is_file() {
                return Err(crate::error::Error::NotFound(format!(
                    "{} is archived ({}); bring it back with `benchkeep restore {}`",
                    args.id,
                    archived.display(),
                    args.id
                ))
                .into());
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let text = if args.json {
        String::from_utf8(crate::store::to_json(&meta)?)?
    } else {
        detail::render(&meta) + &server_view_section(&meta)
    };
    print_out(&text)?;
    Ok(exit::OK)
}

/// The run's server view and where its TTFT went (docs/server-view.md).
fn server_view_section(meta: &crate::schema::Metadata) -> String {
    crate::report::server_view::text(meta)
}
