//! A command on a store at a URL: check the manifest, sync the spool, run the command on
//! the spool with ids reserved remotely, upload what it produced.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{Command, common, dispatch};
use crate::derive::Settings;
use crate::error::Error;
use crate::store::Store;
use crate::store::remote::parts::PartUploader;
use crate::store::remote::sync::{self, Pull};
use crate::store::remote::{Remote, RemoteReserver};

/// How often a live run's finished lines are sent as parts.
const PART_EVERY: Duration = Duration::from_secs(2);

pub fn run(
    url: &str,
    spool: Option<PathBuf>,
    settings: &Settings,
    command: Command,
) -> Result<i32> {
    // Commands that never touch the store run as they are.
    if matches!(command, Command::Simulate(_)) {
        return dispatch(
            &Store::new(common::spool_dir(url, spool)),
            settings,
            command,
        );
    }
    let name = match &command {
        Command::Archive(_) => Some("archive"),
        Command::Restore(_) => Some("restore"),
        _ => None,
    };
    let remote = Arc::new(Remote::open(&common::remote_config(url))?);
    if let Some(name) = name {
        return Err(Error::usage(format!(
            "{name} works on a store directory; on the shared store {} it is not available yet",
            remote.shown()
        ))
        .into());
    }
    // The first request: a bad bucket, refused credentials or no network end here,
    // before anything is written anywhere.
    remote.manifest()?;
    let spool_dir = common::spool_dir(url, spool);
    let reserver = Arc::new(RemoteReserver::new(remote.clone()));
    let store = Store::new(&spool_dir).with_reserver(reserver.clone());
    store.ensure_layout()?;
    // Commands that read raw logs (the significance tests read per-request data).
    let what = match &command {
        Command::Verify(_) | Command::Report(_) | Command::Bundle(_) | Command::Gate(_) => {
            Pull::All
        }
        Command::Compare(a) if a.baseline.is_some() => Pull::All,
        _ => Pull::Metadata,
    };
    let pulled = sync::pull(&remote, &store, what)?;
    if pulled.fetched > 0 {
        eprintln!(
            "Synced {} object(s) from {} into {}",
            pulled.fetched,
            remote.shown(),
            spool_dir.display()
        );
    }
    let live = matches!(
        command,
        Command::Run(_) | Command::Record(_) | Command::Sweep(_)
    );
    let recovering = matches!(command, Command::Recover(_));
    let derived = matches!(command, Command::Report(_));
    let uploader = live
        .then(|| PartUploader::start(remote.clone(), store.clone(), reserver.clone(), PART_EVERY));
    let result = dispatch(&store, settings, command);
    if let Some(u) = uploader {
        u.stop();
    }
    let mut ids = reserver.taken();
    if recovering {
        for id in sync::ahead(&store)? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let pushed = push(&remote, &store, &ids, derived);
    match (result, pushed) {
        (Ok(code), Ok(())) => {
            if !ids.is_empty() {
                eprintln!("Uploaded {} run(s) to {}", ids.len(), remote.shown());
            }
            Ok(code)
        }
        (Ok(_), Err(e)) => Err(e.context(format!(
            "the command finished and everything is kept in the spool {}; `benchkeep recover --store {}` uploads it once the store is reachable",
            spool_dir.display(),
            remote.shown()
        ))),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(up)) => {
            eprintln!(
                "warning: the upload to {} failed too ({up:#}); everything is kept in the spool {}",
                remote.shown(),
                spool_dir.display()
            );
            Err(e)
        }
    }
}

/// Upload the runs this command made (raw files, then metadata), and the derived files
/// when it rebuilt them from a full mirror.
fn push(remote: &Remote, store: &Store, ids: &[String], derived: bool) -> Result<()> {
    let ids: Vec<String> = ids
        .iter()
        .filter(|id| store.metadata_path(id).is_file())
        .cloned()
        .collect();
    sync::push_runs(remote, store, &ids)?;
    if derived {
        sync::push_derived(remote, store)?;
    }
    Ok(())
}
