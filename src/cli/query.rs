//! `benchkeep query`: "what was the throughput for X?", answered with a number.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::catalog::Filter;
use crate::catalog::{HEADLINE, headline_json, lookup, plain};
use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::error::{Error, exit};
use crate::report::sweep;
use crate::schema::{Metadata, Status};
use crate::store::{Oldest, Runs, Skipped, Store, catalog_file};

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
    #[arg(long, conflicts_with = "sweep")]
    pub all: bool,
    /// A sweep (its id, or a unique prefix of it): print its points and conclusions, or
    /// with --metric one conclusion (max_goodput_concurrency, max_goodput_rate,
    /// knee_concurrency, knee_rate, or a dotted path in analysis/sweeps/<id>.json such as
    /// knee.status).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
    /// Read every metadata file instead of the catalog (analysis/catalog/): the old
    /// path, kept to measure the catalog against.
    #[arg(long, hide = true)]
    pub no_catalog: bool,
}

/// One run a query may answer about: the fields it filters and prints, and the run as
/// JSON to look figures up in: the whole metadata, or a catalog row's headline figures
/// (`file` is then the metadata file to read for anything the row leaves out).
struct Cand {
    test_id: String,
    timestamp: String,
    platform: String,
    model: String,
    status: Status,
    labels: BTreeMap<String, String>,
    num_requests: u64,
    value: Value,
    file: Option<String>,
}

impl Cand {
    fn of(m: &Metadata) -> Cand {
        Cand {
            test_id: m.test_id.clone(),
            timestamp: m.timestamp.clone(),
            platform: m.platform.clone(),
            model: m.model.clone(),
            status: m.status,
            labels: m.labels.clone(),
            num_requests: m.test.num_requests,
            value: serde_json::to_value(m).expect("metadata serializes"),
            file: None,
        }
    }

    fn matches(&self, f: &Filter) -> bool {
        f.matches_fields(
            &self.platform,
            &self.model,
            |k| self.labels.get(k).map(String::as_str),
            &self.test_id,
            &self.timestamp,
        )
    }

    /// The run as its metadata file holds it now; itself when that file cannot be read.
    fn whole(self, store: &Store) -> Cand {
        match self
            .file
            .as_deref()
            .map(|f| catalog_file::read_whole(store, f))
        {
            Some(Ok(m)) => Cand::of(&m),
            _ => self,
        }
    }
}

/// What a query looks at: the runs it may answer about, the files skipped, whether they
/// are catalog rows, and the platforms and models of the whole store (for "no run
/// matches").
struct Looked {
    cands: Vec<Cand>,
    skipped: Runs,
    trimmed: bool,
    platforms: BTreeSet<String>,
    models: BTreeSet<String>,
}

/// The runs a query looks at. Through the catalog, only the rows' heads are parsed to
/// filter and order; the headline figures only for the runs it may answer about (the
/// latest matching finished run, or every one with `--all`) and those still running
/// (named when nothing finished matches). `--no-catalog` reads every metadata file.
fn look(store: &Store, args: &QueryArgs, filter: &Filter) -> Result<Looked> {
    if args.no_catalog {
        let all = store.load_all()?;
        let platforms = all.runs.iter().map(|m| m.platform.clone()).collect();
        let models = all.runs.iter().map(|m| m.model.clone()).collect();
        let cands = all.runs.iter().map(Cand::of).collect();
        return Ok(Looked {
            cands,
            skipped: Runs {
                skipped: all.skipped,
                ..Runs::default()
            },
            trimmed: false,
            platforms,
            models,
        });
    }
    let cat = catalog_file::load(store)?;
    let mut skipped = Runs::default();
    let (mut platforms, mut models) = (BTreeSet::new(), BTreeSet::new());
    let mut matching = Vec::new();
    for i in 0..cat.len() {
        let h = cat.head(i);
        if let Some(why) = h.skipped() {
            skipped.skipped.push(Skipped {
                path: store.metadata_dir().join(h.file()),
                reason: why.to_string(),
            });
            continue;
        }
        if !platforms.contains(h.platform()) {
            platforms.insert(h.platform().to_string());
        }
        if !models.contains(h.model()) {
            models.insert(h.model().to_string());
        }
        if filter.matches_fields(
            h.platform(),
            h.model(),
            |k| h.label(k),
            h.test_id(),
            h.timestamp(),
        ) {
            matching.push(i);
        }
    }
    let keys: Vec<(&str, &str)> = matching
        .iter()
        .map(|&i| (cat.head(i).timestamp(), cat.head(i).test_id()))
        .collect();
    // Only the runs that may be answered about are put in order: the latest finished one
    // (one pass), or all with --all, and those still running.
    let by = Oldest::new(&keys);
    let is_final = |k: usize| cat.head(matching[k]).status.is_some_and(|s| s.is_final());
    let latest = (0..keys.len())
        .filter(|&k| is_final(k))
        .max_by(|&a, &b| by.cmp(a, b));
    let mut keep: Vec<usize> = (0..keys.len())
        .filter(|&k| !is_final(k) || args.all || Some(k) == latest)
        .collect();
    keep.sort_by(|&a, &b| by.cmp(a, b));
    let keep = keep.into_iter().map(|k| matching[k]);
    let cands = keep
        .into_iter()
        .map(|i| {
            let h = cat.head(i);
            let value = cat.run_value(i).unwrap_or(Value::Null);
            let num_requests = value
                .pointer("/test/num_requests")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            Cand {
                test_id: h.test_id().to_string(),
                timestamp: h.timestamp().to_string(),
                platform: h.platform().to_string(),
                model: h.model().to_string(),
                status: h.status.unwrap_or(Status::Running),
                labels: h.labels_map(),
                num_requests,
                value,
                file: Some(h.file().to_string()),
            }
        })
        .collect();
    Ok(Looked {
        cands,
        skipped,
        trimmed: true,
        platforms,
        models,
    })
}

pub fn run(store: &Store, args: QueryArgs) -> Result<i32> {
    let filter = args.filter.to_filter()?;
    if let Some(id) = &args.sweep {
        let all = store.load_all()?;
        all.warn_skipped();
        let runs: Vec<Metadata> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
        return query_sweep(&runs, id, args.metric.as_deref(), args.json);
    }
    let Looked {
        cands,
        skipped,
        trimmed,
        platforms: known_platforms,
        models: known_models,
    } = look(store, &args, &filter)?;
    skipped.warn_skipped();
    let (matching, in_progress): (Vec<Cand>, Vec<Cand>) = cands
        .into_iter()
        .filter(|c| c.matches(&filter))
        .partition(|c| c.status.is_final());
    if matching.is_empty() && !in_progress.is_empty() {
        let ids: Vec<&str> = in_progress.iter().map(|c| c.test_id.as_str()).collect();
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
        if !known_platforms.is_empty() {
            msg.push_str(&format!(
                "\n  platforms: {}\n  models: {}",
                known_platforms.into_iter().collect::<Vec<_>>().join(", "),
                known_models.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        return Err(Error::NotFound(msg).into());
    }
    let chosen: Vec<Cand> = if args.all {
        matching
    } else {
        vec![matching.into_iter().last().expect("not empty")]
    };
    // A catalog row holds the headline figures only: one answer is read whole from its
    // file, as is every answer in JSON (which adds confidence intervals); of many in
    // text, only those that lack the figure asked for.
    let chosen: Vec<Cand> = chosen
        .into_iter()
        .map(|c| {
            let lacks = args
                .metric
                .as_deref()
                .is_some_and(|metric| lookup(&c.value, metric).is_none());
            if trimmed && (!args.all || args.json || lacks || c.value.is_null()) {
                c.whole(store)
            } else {
                c
            }
        })
        .collect();
    // `--model` folds case and `:`/`/`: say which model answered when it is not the one
    // written.
    if !filter.models.is_empty() {
        let inexact: BTreeSet<&str> = chosen
            .iter()
            .map(|c| c.model.as_str())
            .filter(|model| !filter.models.iter().any(|w| w == model))
            .collect();
        for model in inexact {
            eprintln!(
                "note: --model {} matched model {model:?} (case, `:` and `/` are folded)",
                filter.models.join(", --model ")
            );
        }
    }
    let values: Vec<&Value> = chosen.iter().map(|c| &c.value).collect();

    let mut out = String::new();
    if let Some(metric) = &args.metric {
        let found: Vec<(&str, Option<Value>)> = chosen
            .iter()
            .zip(&values)
            .map(|(c, v)| (c.test_id.as_str(), lookup(v, metric)))
            .collect();
        if found.iter().all(|(_, x)| x.is_none()) {
            // No selected run has it: a typo, or a figure these runs cannot have.
            // Only the runs answered about were looked at: ask every run.
            let known_anywhere = store.load_all()?.runs.iter().any(|m| {
                lookup(
                    &serde_json::to_value(m).expect("metadata serializes"),
                    metric,
                )
                .is_some()
            });
            if !known_anywhere || args.all {
                return Err(unknown_metric(metric, values[0]));
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
                .zip(&values)
                .map(|((id, x), v)| {
                    let mut o = json!({"test_id": id, "metric": metric, "value": x});
                    add_ci(&mut o, v, metric, "ci");
                    o
                })
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
            .map(|(c, v)| {
                let mut o =
                    headline_json(&c.test_id, &c.timestamp, &c.platform, &c.model, c.status, v);
                for key in HEADLINE {
                    add_ci(&mut o, v, key, &format!("{key}_ci"));
                }
                o
            })
            .collect();
        out = to_pretty(if args.all {
            Value::Array(arr)
        } else {
            arr[0].clone()
        });
    } else {
        for (c, v) in chosen.iter().zip(&values) {
            out.push_str(&format!(
                "{} ({}, {}, {} requests)\n",
                c.test_id, c.timestamp, c.status, c.num_requests
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

/// `query --sweep ID [--metric NAME] [--json]`.
fn query_sweep(runs: &[Metadata], id: &str, metric: Option<&str>, as_json: bool) -> Result<i32> {
    let sweeps = sweep::build(runs);
    let v = sweep::select(&sweeps, id).map_err(Error::NotFound)?;
    let out = match metric {
        None if as_json => to_pretty(sweep::document(v)),
        None => sweep::markdown::text(v),
        Some(name) => {
            let Some(value) = sweep::figure(v, name) else {
                return Err(Error::usage(format!(
                    "--metric {name:?}: sweep {} ({} axis) has no such figure; try max_goodput_{axis}, knee_{axis}, knee.status, max_goodput.status, max_goodput.goodput_requests_per_sec, or any dotted path in {}",
                    v.runs.id,
                    v.analysis.axis,
                    v.path(),
                    axis = v.analysis.axis,
                ))
                .into());
            };
            if value.is_null() {
                eprintln!(
                    "note: sweep {} has no {name}: {}; {}",
                    v.runs.id,
                    sweep::knee_text(&v.analysis),
                    sweep::goodput_text(&v.analysis)
                );
            }
            if as_json {
                to_pretty(json!({"sweep_id": v.runs.id, "metric": name, "value": value}))
            } else {
                format!("{}\n", plain(&value))
            }
        }
    };
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

/// Beside a latency percentile (`ttft.p50`), its stored confidence interval `[lo, hi]`
/// (`null` for an unbounded side) under `as_key`, and the level as `ci_level`.
fn add_ci(obj: &mut Value, meta: &Value, metric: &str, as_key: &str) {
    let Some((lat, p)) = metric.rsplit_once('.') else {
        return;
    };
    if !matches!(p, "p50" | "p90" | "p95" | "p99") {
        return;
    }
    let ci = lookup(meta, &format!("{lat}.ci"));
    let (Some(bounds), Some(o)) = (ci.as_ref().and_then(|c| c.get(p)), obj.as_object_mut()) else {
        return;
    };
    o.insert(as_key.to_string(), bounds.clone());
    if let Some(level) = ci.as_ref().and_then(|c| c.get("level")) {
        o.insert("ci_level".into(), level.clone());
    }
}
