//! `sweep --server-cmd '...' [--matrix NAME=V1,V2 ...]`: one sweep per combination of
//! server settings, each against a server benchkeep starts with the values filled in,
//! waits for, and stops (`record::server`), so "which `max_num_seqs` is best" is one
//! command.
//!
//! Every combination is a normal sweep (its own `sweep.id`, resumable by hand with its
//! server started by the user), whose points carry the combination's settings in
//! `sweep.settings`, the matrix in `sweep.matrix`, and the values in `config`. A
//! combination whose server does not come up (or dies: its log is scanned for
//! out-of-memory messages) is reported and the next one runs; SIGINT stops the matrix.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::parse;
use super::sweep::{SweepArgs, finish, sweep_once, table};
use crate::derive::Settings as DerivedSettings;
use crate::error::{Error, exit};
use crate::record::matrix::{self, Settings};
use crate::record::oom;
use crate::record::server::{ManagedServer, ServerCommand, ServerOptions};
use crate::store::Store;
use crate::sweep::{Combination, Spec};

/// Servers benchkeep starts itself, one per combination of `--matrix`.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// A server setting to sweep over: NAME=V1,V2 (repeatable); `{NAME}` in --server-cmd
    /// is filled with each value, and the value is recorded in `config`.
    #[arg(long = "matrix", value_name = "NAME=V1,V2", requires = "server_cmd")]
    pub matrix: Vec<String>,
    /// The server to start for each combination (a shell command line, e.g. `vllm serve M
    /// --port 8000 --max-num-seqs {max_num_seqs}`); it must serve --base-url. Started in its
    /// own process group, waited for, and stopped (SIGTERM, then SIGKILL) after the sweep.
    #[arg(long, value_name = "COMMAND")]
    pub server_cmd: Option<String>,
    /// What answers 200 once the server is ready (default: /health on --base-url, or
    /// /api/version for --api ollama).
    #[arg(long, value_name = "URL", requires = "server_cmd")]
    pub server_health_url: Option<String>,
    /// How long the server may take to become ready (a model load).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse::duration)]
    pub server_ready_timeout: Duration,
}

impl ServerArgs {
    /// Whether benchkeep starts the server(s) itself.
    pub fn is_managed(&self) -> bool {
        self.server_cmd.is_some()
    }
}

/// What became of one combination.
struct Done {
    settings: Settings,
    sweep_id: Option<String>,
    summary: String,
    failed: bool,
}

pub fn run(store: &Store, derived: &DerivedSettings, args: &SweepArgs, spec: Spec) -> Result<i32> {
    let s = &args.servers;
    let command = s.server_cmd.clone().unwrap_or_default();
    if spec.resume.is_some() {
        return Err(Error::usage(
            "--resume with --server-cmd: resume one combination's sweep by its id, with its server started by hand (the sweep's points record its settings)",
        )
        .into());
    }
    let axes = s
        .matrix
        .iter()
        .map(|m| matrix::parse_axis(m))
        .collect::<Result<Vec<_>, _>>()?;
    matrix::check_placeholders(std::slice::from_ref(&command), &[], &axes)?;
    let combos = if axes.is_empty() {
        vec![Vec::new()]
    } else {
        matrix::combinations(&axes)?
    };
    let health = s.server_health_url.clone().unwrap_or_else(|| {
        let path = if spec.base.client.api.is_ollama() {
            "/api/version"
        } else {
            "/health"
        };
        spec.base.base.endpoint(path)
    });
    if !health.starts_with("http://") {
        return Err(Error::usage(format!(
            "--server-health-url {health:?}: a managed server is checked over plain http:// on this machine; give --server-health-url http://127.0.0.1:PORT/health"
        ))
        .into());
    }
    store.ensure_layout()?;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // A fleet's shards share the matrix id (`--sweep-id`) and split its combinations:
    // combination i runs on shard i % count, its whole sweep there, as sweep `ID-c<i>`.
    let matrix_id = match &spec.sweep_id {
        Some(id) => id.clone(),
        None => matrix::new_id(store, &spec.base.platform, &spec.base.model, &date)?,
    };
    // Without --matrix there is one combination: the shards split its points instead.
    let shard = spec.shard.clone().filter(|_| !axes.is_empty());
    if let Some(s) = &shard {
        eprintln!(
            "Shard {} (from {}) of matrix {matrix_id}: combinations i with i % {} = {}",
            s.label(),
            s.source,
            s.count,
            s.index
        );
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut done: Vec<Done> = Vec::new();
    let mut code = exit::OK;
    for (i, combo) in combos.iter().enumerate() {
        if shard.as_ref().is_some_and(|s| !s.owns(i as u32)) {
            continue;
        }
        let filled = matrix::fill(&command, combo);
        let shown = crate::redact::in_text(filled.as_bytes()).map_or_else(
            || filled.clone(),
            |b| String::from_utf8_lossy(&b).into_owned(),
        );
        eprintln!("Combination {i} [{}]: starting `{shown}`", describe(combo));
        // Shards that split one combination's points each start a server of their own.
        let log = match &spec.shard {
            Some(s) if shard.is_none() => format!(".{matrix_id}-{i}-shard{}.server.log", s.index),
            _ => format!(".{matrix_id}-{i}.server.log"),
        };
        let log = store.raw_dir().join(log);
        let mut opts = ServerOptions::new(health.clone(), &log, env.clone());
        opts.ready_timeout = s.server_ready_timeout;
        let mut server = match ManagedServer::start(&ServerCommand::Shell(filled), &opts) {
            Ok(server) => server,
            Err(e) => {
                let why = oom::scan_log(&log).map_or_else(
                    || format!("server did not start: {e:#}"),
                    |line| format!("oom: {line}"),
                );
                eprintln!("Combination {i}: {why}");
                done.push(Done {
                    settings: combo.clone(),
                    sweep_id: None,
                    summary: first_line(&why),
                    failed: true,
                });
                code = exit::FAILURE;
                continue;
            }
        };
        let mut one = spec.clone();
        for (k, v) in combo {
            one.base.config.insert(k.clone(), matrix::config_value(v));
        }
        one.combination = Some(Combination {
            matrix_id: matrix_id.clone(),
            index: i as u32,
            settings: combo.clone(),
            shard: shard.as_ref().map(|s| s.label()),
        });
        if shard.is_some() {
            one.shard = None;
            one.sweep_id = spec.sweep_id.as_ref().map(|id| format!("{id}-c{i}"));
        }
        let result = sweep_once(store, derived, args, &one);
        server.stop();
        let (outcome, derived_error) = result?;
        print!("{}", table(&outcome, &one));
        let c = finish(&outcome, args, derived_error)?;
        let peak = outcome
            .points
            .iter()
            .map(|p| p.summary.results.output_tokens_per_sec)
            .fold(0.0, f64::max);
        let mut summary = format!(
            "{} points, peak {peak:.1} output tok/s",
            outcome.points.len()
        );
        if let Some(p) = outcome.points.iter().find_map(|p| p.stop.as_ref()) {
            summary.push_str(&format!("; stopped: {}", p.rule));
        }
        if let Some(best) = outcome.answer.as_ref().and_then(|a| a.best) {
            summary.push_str(&format!("; max goodput at concurrency {best}"));
        }
        done.push(Done {
            settings: combo.clone(),
            sweep_id: Some(outcome.id.clone()),
            summary,
            failed: c != exit::OK,
        });
        if c == exit::INTERRUPTED {
            code = c;
            break;
        }
        if c != exit::OK && code == exit::OK {
            code = c;
        }
    }
    print!("{}", matrix_table(&matrix_id, &axes, &done));
    Ok(code)
}

fn describe(combo: &Settings) -> String {
    combo
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    crate::schema::truncate(line, 200).to_string()
}

fn matrix_table(id: &str, axes: &[matrix::Axis], done: &[Done]) -> String {
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(axes.iter().map(|a| a.name.clone()));
    header.extend(["sweep".into(), "result".into()]);
    let mut rows = vec![header];
    for (i, d) in done.iter().enumerate() {
        let mut row: Vec<String> = vec![i.to_string()];
        row.extend(d.settings.iter().map(|(_, v)| v.clone()));
        row.push(d.sweep_id.clone().unwrap_or_else(|| "-".into()));
        row.push(if d.failed {
            format!("FAILED: {}", d.summary)
        } else {
            d.summary.clone()
        });
        rows.push(row);
    }
    let mut widths = vec![0usize; rows[0].len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("Server matrix {id}\n");
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
