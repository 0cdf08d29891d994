//! `benchkeep decide`: the decision summary (who wins each figure per like-for-like group,
//! by how much, how sure, at what cost, and the caveats) on the terminal or as JSON.

use anyhow::Result;
use clap::Args;

use crate::cli::common::{FilterArgs, gpu_price};
use crate::cli::{BASELINE_ENV, PRICE_ENV, print_out};
use crate::derive::Settings;
use crate::error::{Error, exit};
use crate::report::{decision, h2h};
use crate::schema::Metadata;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Print the summary as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Price of one GPU hour in US dollars: adds cost per 1M output tokens and per 1,000
    /// requests (overrides a run's label or config value gpu_hourly_usd).
    #[arg(long, value_name = "USD", env = PRICE_ENV, allow_hyphen_values = true)]
    pub gpu_hourly_usd: Option<String>,
    /// The platform ratios are computed against (default: ollama*, else the
    /// alphabetically first platform of each group).
    #[arg(long, value_name = "NAME", env = BASELINE_ENV)]
    pub baseline_platform: Option<String>,
}

pub fn run(store: &Store, args: DecideArgs) -> Result<i32> {
    let price = gpu_price(args.gpu_hourly_usd.as_deref())?;
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let runs: Vec<Metadata> = all
        .runs
        .iter()
        .filter(|m| filter.matches(m))
        .cloned()
        .collect();
    let settings = Settings {
        baseline_platform: args.baseline_platform.filter(|s| !s.trim().is_empty()),
        gpu_hourly_usd: price,
    };
    let h2h = h2h::build(&runs, &settings);
    let d = decision::build(&runs, &h2h, &settings);
    if args.json {
        print_out(&decision::json(&d))?;
    } else if !d.groups.is_empty() {
        print_out(&decision::text(&d))?;
    }
    if d.groups.is_empty() {
        let why = if runs.is_empty() {
            format!(
                "no run matches {} in {}",
                filter.describe(),
                store.root().display()
            )
        } else {
            let mut s =
                String::from("no two platforms ran the same input with the same model family");
            for n in &d.not_like_for_like {
                s.push_str(&format!("\n  {} {}: {}", n.platform, n.test_id, n.reason));
            }
            s
        };
        return Err(Error::NotFound(format!("nothing is comparable: {why}")).into());
    }
    Ok(exit::OK)
}
