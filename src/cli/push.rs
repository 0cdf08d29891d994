//! `benchkeep push mlflow`: every finished run that matches the filters becomes an MLflow
//! run (params from config and load, metrics from results, tags for host, platform,
//! sweep), once: a run already pushed (found by its `benchkeep.test_id` tag) is skipped.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::common::FilterArgs;
use crate::client::mlflow::{Auth, Pushed, Tracker};
use crate::error::{Error, exit};
use crate::report::trackers;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(subcommand)]
    pub target: PushTarget,
}

#[derive(Debug, Subcommand)]
pub enum PushTarget {
    /// An MLflow tracking server (REST API; `mlflow server`, Databricks-hosted or not).
    Mlflow(MlflowArgs),
}

#[derive(Debug, Args)]
pub struct MlflowArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The tracking server (`http://HOST:5000`). Credentials come from
    /// MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (or the
    /// URI's user info) and are never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "MLFLOW_TRACKING_URI",
        hide_env_values = true
    )]
    pub tracking_uri: String,
    /// The experiment the runs go into (created if missing).
    #[arg(
        long,
        value_name = "NAME",
        env = "MLFLOW_EXPERIMENT_NAME",
        default_value = "benchkeep"
    )]
    pub experiment: String,
    /// Give up on an unresponsive server after this long per request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::cli::parse::duration)]
    pub timeout: Duration,
    /// List what would be pushed; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(store: &Store, args: PushArgs) -> Result<i32> {
    match args.target {
        PushTarget::Mlflow(a) => mlflow(store, a),
    }
}

/// Credentials from the environment (read here, never stored).
fn auth_from_env() -> Option<Auth> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(t) = get("MLFLOW_TRACKING_TOKEN") {
        return Some(Auth::Header(format!("Bearer {t}")));
    }
    get("MLFLOW_TRACKING_USERNAME")
        .map(|u| Auth::Basic(u, get("MLFLOW_TRACKING_PASSWORD").unwrap_or_default()))
}

fn mlflow(store: &Store, args: MlflowArgs) -> Result<i32> {
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let (runs, running): (Vec<_>, Vec<_>) = all
        .runs
        .into_iter()
        .filter(|m| filter.matches(m))
        .partition(|m| m.status.is_final());
    if !running.is_empty() {
        eprintln!(
            "note: {} run(s) still running (or cut off: `benchkeep recover`) are not pushed",
            running.len()
        );
    }
    if runs.is_empty() {
        return Err(Error::NotFound(format!(
            "no finished run matches {}: nothing to push",
            filter.describe()
        ))
        .into());
    }
    let tracker = Tracker::new(&args.tracking_uri, auth_from_env(), args.timeout)?;
    if args.dry_run {
        for m in &runs {
            println!(
                "would push {} to {} (experiment {:?})",
                m.test_id,
                tracker.shown(),
                args.experiment
            );
        }
        return Ok(exit::OK);
    }
    let rt = crate::cli::run::runtime()?;
    let (mut created, mut skipped) = (0, 0);
    rt.block_on(async {
        let exp = tracker.experiment(&args.experiment).await?;
        for m in &runs {
            match tracker.push(&exp, &trackers::mlflow_run(m)).await? {
                Pushed::Created(id) => {
                    created += 1;
                    println!("pushed {} as MLflow run {id}", m.test_id);
                }
                Pushed::AlreadyThere(id) => {
                    skipped += 1;
                    println!("skipped {}: already MLflow run {id}", m.test_id);
                }
            }
        }
        Ok::<_, Error>(())
    })?;
    eprintln!(
        "{created} run(s) pushed, {skipped} already there, to experiment {:?} at {}",
        args.experiment,
        tracker.shown()
    );
    Ok(exit::OK)
}
