//! `run --repeat N`: the same plan run N times in a row, the server probed once; each
//! repeat is a normal run linked to the others by `repeat: {group, index, count}`, and the
//! group's mean and t-interval across repeats are printed at the end
//! (`report::intervals`, which the report uses too).

use anyhow::Result;

use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::load::{self, RunPlan};
use crate::schema::{Metadata, RepeatLink};
use crate::store::Store;

/// The most repeats one command runs.
pub const MAX_REPEATS: u32 = 1000;

pub fn run(store: &Store, settings: &Settings, plan: RunPlan, count: u32) -> Result<i32> {
    if count == 0 || count > MAX_REPEATS {
        return Err(Error::usage(format!(
            "--repeat {count}: give between 1 and {MAX_REPEATS} repeats (e.g. --repeat 5)"
        ))
        .into());
    }
    let rt = super::runtime()?;
    let server = rt.block_on(load::probe_server(&plan))?;
    let group = group_id(&plan);
    let mut done: Vec<Metadata> = Vec::new();
    let mut code = exit::OK;
    for index in 0..count {
        if !plan.quiet {
            eprintln!("Repeat {}/{count} (group {group})", index + 1);
        }
        let mut p = plan.clone();
        p.server = Some(server.clone());
        p.repeat = Some(RepeatLink {
            group: group.clone(),
            index,
            count,
            extra: Default::default(),
        });
        let outcome = rt.block_on(load::run(store, p))?;
        let stop = outcome.interrupted || outcome.store_error.is_some() || !outcome.metadata_saved;
        let last = stop || index + 1 == count;
        // the derived files once, after the last repeat (or the one that stops the group)
        let derived = (last && outcome.store_error.is_none())
            .then(|| derive::refresh(store, settings).err())
            .flatten();
        let this = super::report(store, &outcome, derived)?;
        if outcome.metadata_saved {
            done.push(outcome.metadata);
        }
        if code == exit::OK {
            code = this;
        }
        if stop {
            if index + 1 < count {
                eprintln!(
                    "Stopped after repeat {} of {count}: the group keeps the repeats made so far",
                    index + 1
                );
            }
            break;
        }
    }
    for g in crate::report::intervals::groups(&done) {
        crate::cli::print_out(&crate::report::intervals::text(&g))?;
    }
    if done.iter().all(|m| m.results.success_count == 0) && code == exit::OK {
        code = exit::FAILURE;
    }
    Ok(code)
}

/// A new group id: `repeat-{platform}-{time}-{8 hex}` (the hex from the time in
/// nanoseconds and this process, so two groups started the same second differ).
fn group_id(plan: &RunPlan) -> String {
    let now = chrono::Utc::now();
    let seed = format!(
        "{}|{}|{}|{}",
        plan.platform,
        plan.model,
        now.timestamp_nanos_opt().unwrap_or(0),
        std::process::id()
    );
    let safe: String = plan
        .platform
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "repeat-{safe}-{}-{}",
        now.format("%Y%m%dT%H%M%S"),
        &crate::digest::sha256_hex(&seed)[..8]
    )
}
