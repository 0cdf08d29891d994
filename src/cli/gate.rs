//! `benchkeep gate`: the latest finished run against the history of earlier runs of the
//! same platform, model family, input and load, metric by metric, significance-aware
//! (docs/gating.md); and the exit code both `gate` and `compare --baseline` end with.

use anyhow::Result;
use clap::Args;

use crate::cli::common::FilterArgs;
use crate::cli::compare::{OutputFormat, use_color};
use crate::cli::print_out;
use crate::error::{Error, exit};
use crate::report::gate::{self, Evidence, Judged, Settings, render};
use crate::report::h2h;
use crate::schema::{Metadata, Status};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only runs of this input: the value of their `--label input=NAME`, or the start of
    /// their request file's sha256.
    #[arg(long, value_name = "NAME")]
    pub input: Option<String>,
    /// The run to judge (id or unique prefix); default: the latest finished run selected.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// How many earlier runs make the history.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,
    /// A change counts only beyond this many percent of the baseline.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub threshold: f64,
    /// ... and only when significant at this level (p < alpha).
    #[arg(long, value_name = "ALPHA", default_value_t = 0.01)]
    pub alpha: f64,
    /// Run-to-run noise assumed for a single run's medians and throughput, in percent,
    /// when no history of 3 or more runs measures it: a change must also be significant
    /// against it (0: off). See docs/gating.md.
    #[arg(long, value_name = "PERCENT", default_value_t = gate::NOISE_FLOOR_PCT)]
    pub noise_floor: f64,
    /// The same for the p99 rows.
    #[arg(long, value_name = "PERCENT", default_value_t = gate::TAIL_NOISE_FLOOR_PCT)]
    pub tail_noise_floor: f64,
    /// Gate only these metrics (repeatable; default all): output_tokens_per_sec,
    /// throughput_tokens_per_sec, throughput_requests_per_sec, success_percent,
    /// ttft_p50_ms, ttft_p99_ms, tpot_p50_ms, e2e_p50_ms, e2e_p99_ms.
    #[arg(long = "metric", value_name = "KEY")]
    pub metrics: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Validate `--threshold`, `--alpha` and `--metric` into the gate's settings.
pub fn settings(threshold: f64, alpha: f64, metrics: &[String]) -> Result<Settings, Error> {
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(Error::usage(format!(
            "--threshold {threshold}: a percentage, zero or more, e.g. --threshold 5"
        )));
    }
    if !(alpha.is_finite() && alpha > 0.0 && alpha < 1.0) {
        return Err(Error::usage(format!(
            "--alpha {alpha}: a significance level between 0 and 1, e.g. --alpha 0.01"
        )));
    }
    let metrics = metrics
        .iter()
        .map(|k| {
            gate::metric_index(k).map_err(|keys| {
                Error::usage(format!(
                    "--metric {k}: not a gated metric; use one of {keys}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Settings {
        threshold_pct: threshold,
        alpha,
        metrics,
        noise_floor_pct: gate::NOISE_FLOOR_PCT,
        tail_noise_floor_pct: gate::TAIL_NOISE_FLOOR_PCT,
    })
}

/// Validate `--noise-floor` and `--tail-noise-floor` into `s`.
pub fn with_floors(mut s: Settings, floor: f64, tail: f64) -> Result<Settings, Error> {
    for (flag, v) in [("--noise-floor", floor), ("--tail-noise-floor", tail)] {
        if !(v.is_finite() && (0.0..100.0).contains(&v)) {
            return Err(Error::usage(format!(
                "{flag} {v}: a percentage from 0 (off) to below 100, e.g. {flag} 2"
            )));
        }
    }
    s.noise_floor_pct = floor;
    s.tail_noise_floor_pct = tail;
    Ok(s)
}

/// Print the verdicts in `format`.
pub fn print(
    base: &[&Metadata],
    rows: &[Judged],
    s: &Settings,
    format: OutputFormat,
) -> Result<()> {
    let text = match format {
        OutputFormat::Table => render::text(base, rows, s, use_color()),
        OutputFormat::Markdown => render::markdown(base, rows, s),
        OutputFormat::Csv => render::csv(rows),
        OutputFormat::Json => {
            let mut t = serde_json::to_string_pretty(&render::json(base, rows, s))?;
            t.push('\n');
            t
        }
    };
    print_out(&text)?;
    Ok(())
}

/// The exit code of a gate: 1 on a regression (when `fail`), else 6 when a gated metric
/// had not enough data (when `fail`), else 0; the reason goes to stderr.
pub fn exit_code(rows: &[Judged], s: &Settings, fail: bool, flag: &str) -> i32 {
    if !fail {
        return exit::OK;
    }
    let regressions: usize = rows.iter().map(|r| r.regressions().count()).sum();
    if regressions > 0 {
        eprintln!(
            "error: {regressions} metric(s) got worse by more than {}% and significantly at alpha {} ({flag})",
            s.threshold_pct, s.alpha
        );
        return exit::FAILURE;
    }
    let lacking: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.lacking().map(move |f| {
                format!(
                    "{} {}: {}",
                    r.run.test_id,
                    f.gated().key,
                    f.why.as_deref().unwrap_or("")
                )
            })
        })
        .collect();
    if !lacking.is_empty() {
        eprintln!(
            "error: not enough data to judge {} metric(s) ({flag}; exit {}): {}\nGate fewer metrics with --metric, or give the runs more requests",
            lacking.len(),
            exit::NOT_ENOUGH_DATA,
            lacking.join("; ")
        );
        return exit::NOT_ENOUGH_DATA;
    }
    exit::OK
}

fn input_matches(m: &Metadata, want: &str) -> bool {
    match h2h::input_key(m) {
        Some(h2h::InputKey::Label(v)) => v == want,
        Some(h2h::InputKey::Sha256(h)) => {
            let w = want.trim_start_matches("sha256:").to_ascii_lowercase();
            !w.is_empty() && h.starts_with(&w)
        }
        _ => false,
    }
}

/// Whether `m` can be judged or be history: finished, with at least one success.
fn usable(m: &Metadata) -> bool {
    m.status != Status::Running
}

pub fn run(store: &Store, args: GateArgs) -> Result<i32> {
    let s = with_floors(
        settings(args.threshold, args.alpha, &args.metrics)?,
        args.noise_floor,
        args.tail_noise_floor,
    )?;
    if args.last == 0 {
        return Err(
            Error::usage("--last 0: the history needs at least one run, e.g. --last 10").into(),
        );
    }
    let filter = args.filter.to_filter()?;
    let all = store.load_all()?;
    all.warn_skipped();
    let mut selected: Vec<&Metadata> = all
        .runs
        .iter()
        .filter(|m| filter.matches(m) && usable(m))
        .filter(|m| args.input.as_deref().is_none_or(|i| input_matches(m, i)))
        .collect();
    selected.sort_by(|a, b| (&a.timestamp, &a.test_id).cmp(&(&b.timestamp, &b.test_id)));
    let cand = match &args.run {
        Some(id) => {
            let m = store.find(id)?;
            let found = all.runs.iter().find(|x| x.test_id == m.test_id);
            let m = found.ok_or_else(|| Error::NotFound(format!("no run {id}")))?;
            if m.status == Status::Running {
                return Err(Error::usage(format!(
                    "{} is not finished (status running); wait for it, or `benchkeep recover {}`",
                    m.test_id, m.test_id
                ))
                .into());
            }
            m
        }
        None => *selected.last().ok_or_else(|| {
            Error::NotFound(format!(
                "no finished run matches {}{}",
                filter.describe(),
                args.input
                    .as_deref()
                    .map(|i| format!(", input {i}"))
                    .unwrap_or_default()
            ))
        })?,
    };
    let key = |m: &Metadata| {
        (
            m.platform.clone(),
            h2h::model_family(m),
            h2h::input_key(m),
            h2h::load_key(m),
        )
    };
    let want = key(cand);
    let mut history: Vec<&Metadata> = selected
        .iter()
        .copied()
        .filter(|m| {
            m.test_id != cand.test_id
                && (&m.timestamp, &m.test_id) < (&cand.timestamp, &cand.test_id)
                && m.results.success_count > 0
                && key(m) == want
        })
        .collect();
    if want.2.is_none() {
        history.clear();
    }
    let skip = history.len().saturating_sub(args.last);
    let history: Vec<&Metadata> = history.split_off(skip);
    if history.is_empty() {
        let why = if want.2.is_none() {
            format!("{}: {}", cand.test_id, h2h::UNKNOWN_INPUT)
        } else {
            format!(
                "no earlier finished run of {} with the same model family, input and load ({}) as {}",
                cand.platform,
                want.3.as_deref().unwrap_or("load unknown"),
                cand.test_id
            )
        };
        eprintln!("error: not enough data: {why}");
        return Ok(exit::NOT_ENOUGH_DATA);
    }
    let base = Evidence::read(store, history.clone());
    let judged = Evidence::read(store, vec![cand]);
    let mut notes = base.notes.clone();
    notes.extend(judged.notes.iter().cloned());
    let row = Judged {
        run: cand,
        findings: gate::judge(&base, &judged, &s, false),
        caveat: None,
        notes,
    };
    let rows = [row];
    print(&history, &rows, &s, args.format)?;
    Ok(exit_code(&rows, &s, true, "gate"))
}
