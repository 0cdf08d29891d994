//! `benchkeep compare`: every run side by side (the seed's compare_benchmarks.py), the
//! head-to-head of like-for-like runs, or with `--baseline ID` the per-metric deltas of
//! runs against one baseline run, for people and for CI gates.

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::catalog::{self, SortKey};
use crate::cli::common::FilterArgs;
use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::report::h2h;
use crate::report::sweep;
use crate::report::{self, Derived, deltas, gate, markdown, rows::Row, table};
use crate::schema::{Metadata, Status};
use crate::store::{Runs, Store, catalog_file};

/// `--sort`: the catalog's sort orders, as clap values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Oldest first (default).
    Date,
    Platform,
    Model,
    /// Highest throughput first.
    Throughput,
    /// Highest output tok/s first.
    Output,
    /// Most requests first.
    Requests,
    /// Longest first.
    Time,
}

impl From<SortArg> for SortKey {
    fn from(a: SortArg) -> Self {
        match a {
            SortArg::Date => SortKey::Date,
            SortArg::Platform => SortKey::Platform,
            SortArg::Model => SortKey::Model,
            SortArg::Throughput => SortKey::Throughput,
            SortArg::Output => SortKey::Output,
            SortArg::Requests => SortKey::Requests,
            SortArg::Time => SortKey::Time,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Sort order.
    #[arg(long, value_enum, default_value = "date")]
    pub sort: SortArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Show each run's change against this run (id or unique prefix), metric by metric.
    #[arg(long, value_name = "ID")]
    pub baseline: Option<String>,
    /// With --baseline: the runs to compare (ids or prefixes). Without them, the runs the
    /// filters select; without filters either, the later runs of the baseline's platform,
    /// model family and input.
    #[arg(value_name = "RUN", requires = "baseline")]
    pub runs: Vec<String>,
    /// With --baseline: a change counts only beyond this many percent.
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 5.0,
        requires = "baseline"
    )]
    pub threshold: f64,
    /// With --baseline: ... and only when significant at this level (p < alpha; Mann-Whitney
    /// U on per-request latencies, Welch t on batch means of throughput; docs/gating.md).
    #[arg(
        long,
        value_name = "ALPHA",
        default_value_t = 0.01,
        requires = "baseline"
    )]
    pub alpha: f64,
    /// With --baseline: run-to-run noise assumed for a single run's medians and
    /// throughput, in percent; a change must also be significant against it (0: off;
    /// docs/gating.md).
    #[arg(long, value_name = "PERCENT", default_value_t = crate::report::gate::NOISE_FLOOR_PCT, requires = "baseline")]
    pub noise_floor: f64,
    /// With --baseline: the same for the p99 rows.
    #[arg(long, value_name = "PERCENT", default_value_t = crate::report::gate::TAIL_NOISE_FLOOR_PCT, requires = "baseline")]
    pub tail_noise_floor: f64,
    /// With --baseline: judge by --threshold alone, without a significance test (for runs
    /// without per-request data, e.g. imported summaries).
    #[arg(long, requires = "baseline")]
    pub threshold_only: bool,
    /// With --baseline: exit 1 when a tracked metric (throughput, success rate, TTFT, TPOT,
    /// E2E) got worse beyond --threshold (and significantly), exit 6 when a gated metric
    /// had not enough data to tell.
    #[arg(long, requires = "baseline")]
    pub fail_on_regression: bool,
    /// The platform head-to-head ratios are computed against (default: ollama*, else the
    /// alphabetically first platform of each group).
    #[arg(long, value_name = "NAME", env = crate::cli::BASELINE_ENV)]
    pub baseline_platform: Option<String>,
    /// Print these sweeps (ids or unique prefixes; repeat the flag): each one's points and
    /// conclusions, and for like-for-like sweeps of several platforms the sentence
    /// "within TTFT p99 <= 1 s: ...".
    #[arg(long = "sweep", value_name = "ID", conflicts_with = "baseline")]
    pub sweeps: Vec<String>,
    /// Read every metadata file instead of the catalog (analysis/catalog/): the old
    /// path, kept to measure the catalog against.
    #[arg(long, hide = true)]
    pub no_catalog: bool,
}

/// The runs `compare` works from. A listing (table, markdown, csv) reads the catalog
/// (`analysis/catalog/`: a few files instead of one per run, lean runs) when the
/// derived files are already fresh for exactly those metadata files; otherwise, and for
/// `--baseline`, `--sweep` and `--format json` (which render whole runs), every metadata
/// file is read whole, as the derived files must be rebuilt from the whole runs.
fn load_runs(store: &Store, args: &CompareArgs, settings: &Settings) -> Result<Runs> {
    let listing =
        args.baseline.is_none() && args.sweeps.is_empty() && args.format != OutputFormat::Json;
    if args.no_catalog || !listing {
        return store.load_all();
    }
    let cat = catalog_file::load(store)?;
    let probe = Runs {
        fingerprint: cat.fingerprint(),
        ..Runs::default()
    };
    if cat.is_empty() || derive::is_fresh(store, &probe, settings) {
        return Ok(cat.runs(store));
    }
    store.load_all()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned table for a terminal.
    Table,
    /// GitHub Markdown, as in reports/COMPARISON.md.
    Markdown,
    /// The summary document (analysis/summary.json) of the selected runs.
    Json,
    /// One row per run.
    Csv,
}

/// Color only on a terminal, never with NO_COLOR set or TERM=dumb.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn filters_given(f: &FilterArgs) -> bool {
    !(f.platforms.is_empty() && f.models.is_empty() && f.labels.is_empty() && f.since.is_none())
}

pub fn run(store: &Store, args: CompareArgs) -> Result<i32> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        return Err(Error::usage(format!(
            "--threshold {}: a percentage, zero or more, e.g. --threshold 5",
            args.threshold
        ))
        .into());
    }
    let filter = args.filter.to_filter()?;
    let settings = Settings {
        baseline_platform: args.baseline_platform.clone(),
        ..Settings::default()
    };
    let all = load_runs(store, &args, &settings)?;
    all.warn_skipped();
    for note in
        crate::report::names::same_engine_notes(all.runs.iter().map(|m| m.platform.as_str()))
    {
        eprintln!("{note}");
    }
    if all.runs.is_empty() {
        print_out(&format!(
            "No benchmarks found in {}/metadata/.\nAdd one with `benchkeep analyze --platform vllm-offline --model gemma3-4b --input results.jsonl --total-time 2400`,\nor try `benchkeep demo`.\n",
            store.root().display()
        ))?;
        return Ok(if args.baseline.is_some() {
            exit::NOT_FOUND
        } else {
            exit::OK
        });
    }
    // Derived files always describe the whole store, whatever the filter. A store that
    // cannot be written (a read-only archive) still gets its comparison printed.
    let derived = (|| -> Result<()> {
        let _lock = store.lock()?;
        for w in derive::refresh_with(store, &all, &settings)? {
            eprintln!("warning: {w}");
        }
        Ok(())
    })();
    if let Err(e) = &derived {
        eprintln!(
            "warning: reports/COMPARISON.md and analysis/summary.json could not be rebuilt (what is printed is complete): {e:#}"
        );
    }
    if let Some(base_id) = &args.baseline {
        return run_deltas(store, &args, base_id, &all, &filter);
    }
    if !args.sweeps.is_empty() {
        let runs: Vec<Metadata> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
        return compare_sweeps(&runs, &args.sweeps, args.format);
    }
    let mut selected: Vec<_> = all.runs.into_iter().filter(|m| filter.matches(m)).collect();
    if selected.is_empty() {
        let message = format!("No runs match {}.\n", filter.describe());
        // Machine formats stay parseable: an empty list (or a header-only CSV) on stdout,
        // the sentence on stderr.
        match args.format {
            OutputFormat::Json => print_out("[]\n")?,
            OutputFormat::Csv => print_out(&table::csv(&[]))?,
            _ => {
                print_out(&message)?;
                return Ok(exit::OK);
            }
        }
        eprint!("{message}");
        return Ok(exit::OK);
    }
    catalog::sort(&mut selected, args.sort.into());
    let rows: Vec<Row> = selected.iter().map(Row::from_metadata).collect();
    let selected = Runs {
        runs: selected,
        skipped: all.skipped,
        fingerprint: all.fingerprint,
    };
    let text = match args.format {
        OutputFormat::Table => {
            let mut t = table::terminal(&rows);
            // Only the head-to-head is printed: not the rest of what the report derives.
            let h2h = h2h::build(&selected.runs, &settings);
            let lines: Vec<String> = h2h
                .groups
                .iter()
                .flat_map(|g| {
                    let title = markdown::group_title(g);
                    std::iter::once(format!("  {title} (baseline {})", g.baseline().platform))
                        .chain(g.ratio_sentences().into_iter().map(|s| format!("    {s}")))
                })
                .map(|l| {
                    l.chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect()
                })
                .collect();
            if !lines.is_empty() {
                t.push_str(
                    "\nHead-to-head (latest run of each platform, same input and model family):\n",
                );
                for l in lines {
                    t.push_str(&l);
                    t.push('\n');
                }
            }
            t
        }
        OutputFormat::Markdown => format!("# Benchmark Comparison\n\n{}", markdown::table(&rows)),
        OutputFormat::Csv => table::csv(&rows),
        OutputFormat::Json => {
            let d = Derived::build(&selected, settings);
            let mut s = serde_json::to_string_pretty(&report::summary_json::value(&d))?;
            s.push('\n');
            s
        }
    };
    print_out(&text)?;
    if derived.is_ok() && matches!(args.format, OutputFormat::Table | OutputFormat::Markdown) {
        eprintln!(
            "Report saved: {}",
            store.root().join(report::COMPARISON_PATH).display()
        );
    }
    // The process ends here: freeing every run one by one (100,000 in a team's store) was
    // a tenth of the command's time, for memory the exit hands back at once.
    std::mem::forget((selected, rows, text));
    Ok(exit::OK)
}

fn find<'a>(all: &'a Runs, store: &Store, id: &str) -> Result<&'a Metadata> {
    if let Some(m) = all.runs.iter().find(|m| m.test_id == id) {
        return Ok(m);
    }
    let matches: Vec<&Metadata> = all
        .runs
        .iter()
        .filter(|m| m.test_id.starts_with(id))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound(format!(
            "no run with an id starting with '{id}' in {} (list them with `benchkeep compare`)",
            store.root().display()
        ))
        .into()),
        many => Err(Error::usage(format!(
            "'{id}' matches {} runs; give more of the id:\n{}",
            many.len(),
            many.iter()
                .map(|m| format!("  {}", m.test_id))
                .collect::<Vec<_>>()
                .join("\n")
        ))
        .into()),
    }
}

fn run_deltas(
    store: &Store,
    args: &CompareArgs,
    base_id: &str,
    all: &Runs,
    filter: &crate::catalog::Filter,
) -> Result<i32> {
    let base = find(all, store, base_id)?;
    refuse_unfinished(base, "baseline")?;
    let candidates: Vec<&Metadata> = if !args.runs.is_empty() {
        let named: Vec<&Metadata> = args
            .runs
            .iter()
            .map(|id| find(all, store, id))
            .collect::<Result<_>>()?;
        for m in &named {
            refuse_unfinished(m, "run")?;
        }
        named
    } else if filters_given(&args.filter) {
        all.runs
            .iter()
            .filter(|m| m.test_id != base.test_id && filter.matches(m))
            .collect()
    } else {
        let (family, input) = (h2h::model_family(base), h2h::input_key(base));
        all.runs
            .iter()
            .filter(|m| {
                m.test_id != base.test_id
                    && m.platform == base.platform
                    && (&m.timestamp, &m.test_id) > (&base.timestamp, &base.test_id)
                    && h2h::model_family(m) == family
                    && input.is_some()
                    && h2h::input_key(m) == input
            })
            .collect()
    };
    // A run still `running` has no results yet: never scored (its zeros are no figures).
    let (candidates, unfinished): (Vec<&Metadata>, Vec<&Metadata>) = candidates
        .into_iter()
        .partition(|m| m.status != Status::Running);
    for m in &unfinished {
        eprintln!(
            "note: {} is not finished (status running); left out: it has no results yet",
            m.test_id
        );
    }
    if candidates.is_empty() {
        let hint = if filters_given(&args.filter) {
            format!(
                "no run other than the baseline matches {}",
                filter.describe()
            )
        } else {
            format!(
                "no later run of {} with the same model family and input as {}; name the runs to compare (`benchkeep compare --baseline {} RUN...`) or select them with --platform/--model/--label/--since",
                base.platform, base.test_id, base.test_id
            )
        };
        return Err(Error::NotFound(hint).into());
    }
    if !args.threshold_only {
        return significance(store, args, base, &candidates);
    }
    let rows: Vec<deltas::RunDeltas> = candidates
        .iter()
        .map(|m| deltas::compare(base, m, args.threshold))
        .collect();
    let text = match args.format {
        OutputFormat::Table => deltas::render_text(base, &rows, args.threshold, use_color()),
        OutputFormat::Markdown => deltas::render_markdown(base, &rows, args.threshold),
        OutputFormat::Csv => deltas::render_csv(&rows),
        OutputFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(&deltas::render_json(base, &rows, args.threshold))?;
            s.push('\n');
            s
        }
    };
    print_out(&text)?;
    let regressions: usize = rows.iter().map(|r| r.regressions().count()).sum();
    if args.fail_on_regression && regressions > 0 {
        eprintln!(
            "error: {regressions} tracked metric(s) got worse than {} by more than {}% (--fail-on-regression)",
            base.test_id, args.threshold
        );
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// `compare --baseline` with significance: each candidate's raw log against the baseline's.
fn significance(
    store: &Store,
    args: &CompareArgs,
    base: &Metadata,
    candidates: &[&Metadata],
) -> Result<i32> {
    let s = crate::cli::gate::with_floors(
        crate::cli::gate::settings(args.threshold, args.alpha, &[])?,
        args.noise_floor,
        args.tail_noise_floor,
    )?;
    let base_ev = gate::Evidence::read(store, vec![base]);
    let rows: Vec<gate::Judged> = candidates
        .iter()
        .map(|m| {
            let cand = gate::Evidence::read(store, vec![m]);
            let other_load = h2h::load_key(base) != h2h::load_key(m);
            let mut notes = base_ev.notes.clone();
            notes.extend(cand.notes.iter().cloned());
            gate::Judged {
                run: m,
                findings: gate::judge(&base_ev, &cand, &s, other_load),
                caveat: deltas::caveat(base, m),
                notes,
            }
        })
        .collect();
    crate::cli::gate::print(&[base], &rows, &s, args.format)?;
    Ok(crate::cli::gate::exit_code(
        &rows,
        &s,
        args.fail_on_regression,
        "--fail-on-regression",
    ))
}

/// A run still marked `running` has no results to compare (its figures read as zeros):
/// refuse it with what to do (exit 2).
fn refuse_unfinished(m: &Metadata, role: &str) -> Result<()> {
    if m.status != Status::Running {
        return Ok(());
    }
    Err(Error::usage(format!(
        "the {role} {} is not finished (status running) and has no results to compare; wait for it to end, or finish it with `benchkeep recover {}` if its process is gone",
        m.test_id, m.test_id
    ))
    .into())
}

/// `compare --sweep ID [--sweep ID ...]`: each sweep's table and conclusions, then the
/// sentence when they are like for like.
fn compare_sweeps(runs: &[Metadata], ids: &[String], format: OutputFormat) -> Result<i32> {
    let all = sweep::build(runs);
    let mut chosen = Vec::new();
    for id in ids {
        let v = sweep::select(&all, id).map_err(Error::NotFound)?;
        let i = all
            .views
            .iter()
            .position(|x| std::ptr::eq(x, v))
            .expect("selected from these views");
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    let group = sweep::group_of(&all, &chosen);
    let verdict = match (&group, chosen.len()) {
        (_, 1) => None,
        (Ok(g), _) => Some(sweep::sentence(&all, g)),
        (Err(why), _) => Some(why.clone()),
    };
    let mut out = String::new();
    match format {
        OutputFormat::Json => {
            let docs: Vec<serde_json::Value> = chosen
                .iter()
                .map(|&i| sweep::document(&all.views[i]))
                .collect();
            let mut v = serde_json::json!({"sweeps": docs});
            if let Some(s) = &verdict {
                v["verdict"] = serde_json::json!(s);
            }
            out = serde_json::to_string_pretty(&v).expect("json") + "\n";
        }
        OutputFormat::Markdown => {
            if let Some(s) = &verdict {
                out.push_str(&format!("**{}**\n", markdown::escape(s)));
            }
            for &i in &chosen {
                sweep::markdown::one(&mut out, &all.views[i]);
            }
        }
        OutputFormat::Table | OutputFormat::Csv => {
            if format == OutputFormat::Csv {
                return Err(Error::usage(
                    "--format csv lists runs; with --sweep use table, markdown or json (each point is a run: `benchkeep export` has them all)",
                )
                .into());
            }
            for &i in &chosen {
                out.push_str(&sweep::markdown::text(&all.views[i]));
                out.push('\n');
            }
            if let Some(s) = &verdict {
                out.push_str(s);
                out.push('\n');
            }
        }
    }
    print_out(&out)?;
    Ok(exit::OK)
}
