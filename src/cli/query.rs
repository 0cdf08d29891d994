//! `benchkeep query`: "what was the throughput for X?", answered with a number.

use std::collections::BTreeSet;

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::catalog::{HEADLINE, headline_json, lookup, plain};
use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::{Error, exit};
use crate::schema::Metadata;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Print just this figure: a results field (throughput_tokens_per_sec), a latency
    /// (ttft.p50) or any dotted path in the metadata (gpu.name, config.max_model_len); a key
    /// that holds dots itself goes in brackets: config["kv.cache_dtype"].
    #[arg(long)]
    pub metric: Option<String>,
    /// Every matching run, oldest first, instead of the latest.
    #[arg(long)]
    pub all: bool,
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

pub fn run(store: &Store, args: QueryArgs) -> Result<i32> {
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let known_platforms: BTreeSet<&str> = all.runs.iter().map(|m| m.platform.as_str()).collect();
    let known_models: BTreeSet<&str> = all.runs.iter().map(|m| m.model.as_str()).collect();
    let (matching, in_progress): (Vec<&Metadata>, Vec<&Metadata>) = all
        .runs
        .iter()
        .filter(|m| filter.matches(m))
        .partition(|m| m.status.is_final());
    if matching.is_empty() && !in_progress.is_empty() {
        let ids: Vec<&str> = in_progress.iter().map(|m| m.test_id.as_str()).collect();
        return Err(Error::NotFound(format!(
            "only runs still in progress match {} (their figures are not final): {}; ask again when they finish, or `benchkeep recover` them if their process is gone",
            filter.describe(),
            ids.join(", ")
        ))
        .into());
    }
    if matching.is_empty() {
        let mut msg = format!(
            "no run matches {} in {}",
            filter.describe(),
            store.root().display()
        );
        if !all.runs.is_empty() {
            msg.push_str(&format!(
                "\n  platforms: {}\n  models: {}",
                known_platforms.into_iter().collect::<Vec<_>>().join(", "),
                known_models.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        return Err(Error::NotFound(msg).into());
    }
    let chosen: Vec<&Metadata> = if args.all {
        matching
    } else {
        vec![*matching.last().expect("not empty")]
    };
    // `--model` folds case and `:`/`/`: say which model answered when it is not the one
    // written.
    if !filter.models.is_empty() {
        let inexact: BTreeSet<&str> = chosen
            .iter()
            .map(|m| m.model.as_str())
            .filter(|model| !filter.models.iter().any(|w| w == model))
            .collect();
        for model in inexact {
            eprintln!(
                "note: --model {} matched model {model:?} (case, `:` and `/` are folded)",
                filter.models.join(", --model ")
            );
        }
    }
    let values: Vec<Value> = chosen
        .iter()
        .map(|m| serde_json::to_value(m).expect("metadata serializes"))
        .collect();

    let mut out = String::new();
    if let Some(metric) = &args.metric {
        let found: Vec<(&str, Option<Value>)> = chosen
            .iter()
            .zip(&values)
            .map(|(m, v)| (m.test_id.as_str(), lookup(v, metric)))
            .collect();
        if found.iter().all(|(_, x)| x.is_none()) {
            // No selected run has it: a typo, or a figure these runs cannot have.
            let known_anywhere = all.runs.iter().any(|m| {
                lookup(
                    &serde_json::to_value(m).expect("metadata serializes"),
                    metric,
                )
                .is_some()
            });
            if !known_anywhere || args.all {
                return Err(unknown_metric(metric, &values[0]));
            }
            return Err(Error::NotFound(format!(
                "run {} has no {metric} (a --no-stream run has no TTFT, an imported file may have no latencies); other runs do: add --all to list them",
                found[0].0
            ))
            .into());
        }
        let found: Vec<(&str, Value)> = found
            .into_iter()
            .map(|(id, x)| (id, x.unwrap_or(Value::Null)))
            .collect();
        if args.json {
            let arr: Vec<Value> = found
                .iter()
                .map(|(id, x)| json!({"test_id": id, "metric": metric, "value": x}))
                .collect();
            out = to_pretty(if args.all {
                Value::Array(arr)
            } else {
                arr[0].clone()
            });
        } else if args.all {
            for (id, x) in &found {
                out.push_str(&format!("{id}\t{}\n", plain(x)));
            }
        } else {
            out = format!("{}\n", plain(&found[0].1));
        }
    } else if args.json {
        let arr: Vec<Value> = chosen
            .iter()
            .zip(&values)
            .map(|(m, v)| headline_json(m, v))
            .collect();
        out = to_pretty(if args.all {
            Value::Array(arr)
        } else {
            arr[0].clone()
        });
    } else {
        for (m, v) in chosen.iter().zip(&values) {
            out.push_str(&format!(
                "{} ({}, {}, {} requests)\n",
                m.test_id, m.timestamp, m.status, m.test.num_requests
            ));
            for key in HEADLINE {
                if let Some(x) = lookup(v, key).filter(|x| !x.is_null()) {
                    out.push_str(&format!("  {key:<28} {}\n", plain(&x)));
                }
            }
        }
    }
    print_out(&out)?;
    Ok(exit::OK)
}

fn unknown_metric(metric: &str, v: &Value) -> anyhow::Error {
    if metric.starts_with("gpu.") && v.get("gpu").is_none_or(Value::is_null) {
        return Error::NotFound(format!(
            "--metric {metric:?}: this run has no GPU data (gpu is null); GPU figures come from `run` or `record` on the GPU's host (telemetry is on by default there), or by hand with `analyze --gpu-name ...`"
        ))
        .into();
    }
    let names: Vec<&str> = v
        .get("results")
        .and_then(|r| r.as_object())
        .map(|o| o.keys().map(|k| k.as_str()).collect())
        .unwrap_or_default();
    Error::usage(format!(
        "--metric {metric:?}: this run has no such figure; try one of: {}, ttft.p50, e2e.p99, {}config.<key>",
        names.join(", "),
        if v.get("gpu").is_some_and(|g| !g.is_null()) { "gpu.name, " } else { "" }
    ))
    .into()
}

fn to_pretty(v: Value) -> String {
    let mut s = serde_json::to_string_pretty(&v).expect("json");
    s.push('\n');
    s
}
