//! `benchkeep sweep`: flags -> a validated [`sweep::Spec`] -> [`sweep::run`] -> a live line
//! per point, the derived files refreshed once per point, a final table (or `--json`).

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde_json::json;

use crate::cli::parse;
use crate::cli::run::{EnvKeys, LoadArgs, OutputArgs, RunArgs, TargetArgs, Warmup, WorkloadArgs};
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::load::schedule::Arrival;
use crate::metrics::Slo;
use crate::schema::Status;
use crate::store::Store;
use crate::sweep::{self, Axis, Mode, Point, Rules, Spec};
use crate::telemetry::GpuMode;

#[derive(Debug, Args, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Concurrency axis: a list or range of requests in flight, e.g. 1,2,4,8 or 1..64x2.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["rate", "auto"])]
    pub concurrency: Option<String>,
    /// Rate axis: requests per second, open loop, e.g. 1,2,5,10 or 2..20+2.
    #[arg(long, value_name = "LIST", conflicts_with = "auto")]
    pub rate: Option<String>,
    /// Synchronous step, throughput step (--max-concurrency in flight), then --auto-points
    /// evenly spaced rates up to the throughput step's rate.
    #[arg(long)]
    pub auto: bool,
    /// Rates of --auto after its two first steps.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub auto_points: u32,
    /// In-flight cap of --auto's throughput step and rates, and of the goodput search.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_concurrency: u32,
    /// Max-goodput search target: the share of requests that must meet every --slo
    /// (95%, 0.95). Default: the smallest pNN of --slo, else 95%.
    #[arg(long = "target", value_name = "PERCENT")]
    pub goal: Option<String>,
    /// Max-goodput search: stop bisecting when the gap is at most this share of the best
    /// passing concurrency (at least 1).
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub tolerance: f64,
    /// Max-goodput search: at most this many probes.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_probes: u32,
    /// Arrival process of rate points: poisson (gamma gaps, see --burstiness) or constant.
    #[arg(long, value_name = "KIND", value_parser = PossibleValuesParser::new(["poisson", "constant"])
        .map(|s| if s == "constant" { Arrival::Constant } else { Arrival::Poisson }))]
    pub arrival: Option<Arrival>,
    /// Gamma shape of the gaps of rate points: 1 = Poisson, < 1 burstier.
    #[arg(long, value_name = "F")]
    pub burstiness: Option<f64>,
    /// Each point stops sending after this long (instead of --num-requests).
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub duration: Option<Duration>,
    /// Requests each point sends first and does not count.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,
    /// After Ctrl-C or SIGTERM, wait this long for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse::duration)]
    pub grace: Duration,
    /// Stop the sweep when more than this share of a point's requests failed.
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    pub max_error_rate: f64,
    /// Run every planned point, even past saturation.
    #[arg(long)]
    pub no_early_stop: bool,
    /// Continue the sweep SWEEP_ID (same flags as its first run): only missing points run.
    #[arg(long, value_name = "SWEEP_ID")]
    pub resume: Option<String>,
    /// Run each point N times (each repeat a normal run, linked as a repeat group): the
    /// sweep judges, prints and draws each point's means with their 95% t-intervals.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Print the sweep as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Server or engine settings to record: a JSON object, or @file.json.
    #[arg(long)]
    pub config: Option<String>,
    /// A key=value label to filter and group by later (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Service-level objectives: ttft=200ms,tpot=50ms,e2e=10s; a _pNN suffix
    /// (ttft_p99=1s) sets the goodput search's target. Without an axis: the search.
    #[arg(long, value_name = "SLOS")]
    pub slo: Option<String>,
    /// Keep each response's text in the raw log (up to 64 KiB per request).
    #[arg(long)]
    pub save_text: bool,
    /// GPU telemetry while the load runs: auto, off, nvml, nvidia-smi, rocm-smi.
    #[arg(long, value_name = "SOURCE", value_parser = parse::gpu_mode)]
    pub gpu: Option<GpuMode>,
    /// GPU sampling interval.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse::interval)]
    pub gpu_interval: Duration,
    /// How often each point samples the server's /metrics (docs/server-view.md).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::interval)]
    pub server_metrics_interval: Duration,
    /// Do not scrape the server's /metrics (no server view; the server_queue_growth rule
    /// then has nothing to read).
    #[arg(long)]
    pub no_server_metrics: bool,
    /// The server's GPUs, as nvidia-smi numbers them (or GPU- UUID prefixes): 0 or 0,1.
    /// Only these are sampled. Default: for a server on this host, the GPUs its processes
    /// compute on (docs/metrics.md); else CUDA_VISIBLE_DEVICES, else every GPU.
    #[arg(long, value_name = "LIST")]
    pub gpu_index: Option<String>,
    /// No progress bar and no per-point lines.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub servers: super::sweep_matrix::ServerArgs,
    #[command(flatten)]
    pub fleet: super::sweep_shard::FleetArgs,
}

/// `ttft_p99=1s,tpot=50ms`: the thresholds, and the smallest percentile named (as a share).
pub fn slo_with_percentiles(s: &str) -> Result<(Slo, Option<f64>), Error> {
    let mut plain = Vec::new();
    let mut smallest: Option<f64> = None;
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = k.trim();
        let (name, p) = match k.split_once("_p") {
            Some((name, p)) => {
                let p: f64 = p.parse().ok().filter(|p: &f64| *p > 0.0 && *p < 100.0).ok_or_else(|| {
                    Error::usage(format!("--slo {k:?}: the percentile after _p must be a number between 0 and 100, e.g. ttft_p99=1s"))
                })?;
                (name, Some(p / 100.0))
            }
            None => (k, None),
        };
        if let Some(p) = p {
            smallest = Some(smallest.map_or(p, |s: f64| s.min(p)));
        }
        plain.push(format!("{name}={v}"));
    }
    let slo = parse::slo(&plain.join(",")).map_err(|e| Error::usage(format!("--slo: {e}")))?;
    Ok((slo, smallest))
}

/// `95%`, `95` or `0.95` -> 0.95.
fn share(flag: &str, s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let (num, pct) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t, false),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| Error::usage(format!("{flag} {s:?}: not a share; write e.g. 95% or 0.95")))?;
    let v = if pct || v > 1.0 { v / 100.0 } else { v };
    if !(v > 0.0 && v < 1.0) {
        return Err(Error::usage(format!(
            "{flag} {s:?}: must be between 0% and 100% (exclusive)"
        )));
    }
    Ok(v)
}

/// Validate the flags into a sweep (nothing is sent or written).
pub fn spec(args: &SweepArgs, argv: &[String]) -> Result<Spec, Error> {
    let (slo, pct) = match &args.slo {
        Some(s) => {
            let (slo, p) = slo_with_percentiles(s)?;
            (Some(slo), p)
        }
        None => (None, None),
    };
    if args.max_concurrency == 0 || args.max_concurrency > crate::load::plan::MAX_CONCURRENCY {
        return Err(Error::usage(format!(
            "--max-concurrency {}: must be between 1 and {}",
            args.max_concurrency,
            crate::load::plan::MAX_CONCURRENCY
        )));
    }
    if !(0.0..=1.0).contains(&args.max_error_rate) {
        return Err(Error::usage(format!(
            "--max-error-rate {}: must be a share between 0 and 1, e.g. 0.5",
            args.max_error_rate
        )));
    }
    let axis_given = args.concurrency.is_some() || args.rate.is_some() || args.auto;
    let mode = if let Some(c) = &args.concurrency {
        Mode::List {
            axis: Axis::Concurrency,
            values: sweep::parse_values("--concurrency", c, true)?,
        }
    } else if let Some(r) = &args.rate {
        Mode::List {
            axis: Axis::Rate,
            values: sweep::parse_values("--rate", r, false)?,
        }
    } else if args.auto {
        if args.auto_points == 0 || args.auto_points > 100 {
            return Err(Error::usage("--auto-points: must be between 1 and 100"));
        }
        Mode::Auto {
            points: args.auto_points,
            max_concurrency: args.max_concurrency,
        }
    } else if slo.is_some() {
        let target = match &args.goal {
            Some(t) => share("--target", t)?,
            None => pct.unwrap_or(0.95),
        };
        if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
            return Err(Error::usage("--tolerance: must be >= 0, e.g. 0.1"));
        }
        if args.max_probes < 2 {
            return Err(Error::usage("--max-probes: must be at least 2"));
        }
        Mode::Goodput {
            target,
            tolerance: args.tolerance,
            max_concurrency: args.max_concurrency,
            max_probes: args.max_probes,
        }
    } else {
        return Err(Error::usage(
            "give the load axis: --concurrency 1,2,4,8, --rate 1,2,5,10, --auto, or --slo ttft_p99=1s for the max-goodput search",
        ));
    };
    if args.repeat == 0 || args.repeat > sweep::repeats::MAX_REPEATS {
        return Err(Error::usage(format!(
            "--repeat {}: give between 1 and {} runs per point (e.g. --repeat 3)",
            args.repeat,
            sweep::repeats::MAX_REPEATS
        )));
    }
    if args.repeat > 1 && matches!(mode, Mode::Goodput { .. }) {
        return Err(Error::usage(
            "--repeat with the max-goodput search: each probe's verdict already comes from its attainment interval (and reruns when it straddles); give an axis (--concurrency 1,2,4) to repeat points",
        ));
    }
    if args.goal.is_some() && axis_given {
        return Err(Error::usage(
            "--target sets the max-goodput search's goal; the search runs without --concurrency, --rate or --auto",
        ));
    }
    let rate_points = matches!(
        mode,
        Mode::Auto { .. }
            | Mode::List {
                axis: Axis::Rate,
                ..
            }
    );
    let run_args = RunArgs {
        target: args.target.clone(),
        workload: args.workload.clone(),
        load: LoadArgs {
            concurrency: None,
            // The rate points' arrival flags are checked as `run` checks them.
            rate: rate_points.then_some(1.0),
            arrival: args.arrival,
            burstiness: args.burstiness,
            duration: args.duration,
            warmup: Warmup::Requests(args.warmup),
            cooldown: None,
            grace: args.grace,
        },
        output: OutputArgs {
            config: args.config.clone(),
            labels: args.labels.clone(),
            slo,
            save_text: args.save_text,
            gpu: args.gpu,
            gpu_interval: args.gpu_interval,
            gpu_index: args.gpu_index.clone(),
            server_metrics_interval: args.server_metrics_interval,
            no_server_metrics: args.no_server_metrics,
            quiet: args.quiet,
        },
        repeat: 1,
    };
    let base = crate::cli::run::plan_with(&run_args, argv, &EnvKeys::read(&args.target))?;
    let (arrival, burstiness) = base
        .load
        .rate
        .map_or((Arrival::Poisson, 1.0), |r| (r.arrival, r.burstiness));
    let (shard, sweep_id) = super::sweep_shard::of(args, &base, &mode)?;
    Ok(Spec {
        base,
        mode,
        rules: Rules {
            enabled: !args.no_early_stop,
            max_error_rate: args.max_error_rate,
        },
        arrival,
        burstiness,
        resume: args.resume.clone(),
        combination: None,
        sweep_id,
        shard,
        repeat: args.repeat,
    })
}

pub fn run(store: &Store, settings: &Settings, args: SweepArgs) -> Result<i32> {
    let argv: Vec<String> = std::env::args().collect();
    let spec = spec(&args, &argv)?;
    if args.servers.is_managed() {
        return super::sweep_matrix::run(store, settings, &args, spec);
    }
    super::sweep_shard::announce(&spec, args.quiet);
    let (outcome, derived_error) = sweep_once(store, settings, &args, &spec)?;
    crate::cli::print_out(&if args.json {
        format!("{:#}\n", to_json(&outcome, &spec))
    } else {
        table(&outcome, &spec)
    })?;
    finish(&outcome, &args, derived_error)
}

/// Run (or resume) one sweep, refreshing the derived files once per new point; the
/// outcome and the refresh's error, if any.
pub fn sweep_once(
    store: &Store,
    settings: &Settings,
    args: &SweepArgs,
    spec: &Spec,
) -> Result<(sweep::Outcome, Option<anyhow::Error>)> {
    let quiet = args.quiet;
    let mut derived_error = None;
    let mut on_point = |p: &Point| -> Result<()> {
        if !p.resumed
            && derived_error.is_none()
            && let Err(e) = derive::refresh(store, settings)
        {
            derived_error = Some(e);
        }
        if !quiet {
            eprintln!("{}", live_line(p));
        }
        Ok(())
    };
    let outcome = crate::cli::run::runtime()?.block_on(sweep::run(store, spec, &mut on_point))?;
    if !outcome.recovered.is_empty() && derived_error.is_none() {
        derived_error = derive::refresh(store, settings).err();
    }
    Ok((outcome, derived_error))
}

/// Map the outcome to the exit code, with a word on stderr.
pub fn finish(o: &sweep::Outcome, args: &SweepArgs, derived: Option<anyhow::Error>) -> Result<i32> {
    if let Some(e) = &o.store_error {
        return Err(anyhow::anyhow!("{e:#}").context(Error::StoreIo(format!(
            "sweep {} stopped because the store could not be written; its finished points are kept (finish a cut-off point with `benchkeep recover`, then continue with --resume {})",
            o.id, o.id
        ))));
    }
    for id in &o.recovered {
        eprintln!(
            "Recovered point {id}: a crash had left it `running`; it is kept as `interrupted` and not rerun"
        );
    }
    if let Some(e) = derived {
        eprintln!("warning: the sweep is saved, but regenerating the reports failed: {e:#}");
        return Ok(exit::STORE_IO);
    }
    if o.interrupted {
        eprintln!(
            "Interrupted: sweep {} keeps its {} finished points; run the same command with --resume {} to run only the missing ones",
            o.id,
            o.points.len(),
            o.id
        );
        return Ok(exit::INTERRUPTED);
    }
    if let Some(p) = o.points.iter().find(|p| p.stop.is_some()) {
        let s = p.stop.as_ref().expect("found");
        eprintln!(
            "Stopped early after point {} ({} {}): {} ({}){}",
            p.index,
            p.axis.name(),
            p.value,
            s.detail,
            s.rule,
            if args.no_early_stop {
                ""
            } else {
                "; --no-early-stop runs every point"
            }
        );
    }
    if let Some(n) = &o.note {
        eprintln!("Sweep ended: {n}");
    }
    if let Some(p) = o.points.iter().find(|p| p.summary.status == Status::Failed) {
        eprintln!(
            "error: every request of point {} ({}) failed; inspect it with `benchkeep show {}`",
            p.index, p.meta.test_id, p.meta.test_id
        );
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

fn live_line(p: &Point) -> String {
    let j = sweep::point_json(p);
    let f = |k: &str| j[k].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut s = format!(
        "point {} {} {} {}: {} req/s, {} output tok/s, TTFT p99 {} ms, {} [{}]",
        p.index,
        p.role,
        p.axis.name(),
        p.value,
        f("requests_per_sec"),
        f("output_tokens_per_sec"),
        f("ttft_p99_ms"),
        p.summary.status,
        p.meta.test_id
    );
    if p.repeats.len() > 1 {
        s.push_str(&format!(" (mean of {} repeats)", p.repeats.len()));
    }
    if p.resumed {
        s.push_str(" (stored, not rerun)");
    }
    if let Some(g) = p.meta.sweep.as_ref().and_then(|l| l.extra.get("goodput")) {
        s.push_str(&format!(
            "; attainment {} [{}, {}] -> {}",
            g["attainment"],
            g["low"],
            g["high"],
            g["verdict"].as_str().unwrap_or("?")
        ));
    }
    if let Some(st) = &p.stop {
        s.push_str(&format!("; saturated: {}", st.rule));
    }
    s
}

fn to_json(o: &sweep::Outcome, spec: &Spec) -> serde_json::Value {
    json!({
        "sweep_id": o.id,
        "mode": match spec.mode { Mode::List { .. } => "list", Mode::Auto { .. } => "auto", Mode::Goodput { .. } => "goodput" },
        "interrupted": o.interrupted,
        "stopped": o.points.iter().find_map(|p| p.stop.as_ref().map(|s| json!({"index": p.index, "rule": s.rule, "detail": s.detail}))),
        "note": o.note,
        "recovered": o.recovered,
        "shard": spec.shard.as_ref().map(sweep::Shard::label),
        "points": o.points.iter().map(sweep::point_json).collect::<Vec<_>>(),
        "goodput": o.answer.as_ref().map(|a| answer_json(a, o)),
    })
}

fn answer_json(a: &sweep::goodput::Answer, o: &sweep::Outcome) -> serde_json::Value {
    let best = a.best.and_then(|b| {
        o.points
            .iter()
            .rev()
            .find(|p| p.value as u32 == b && p.probe.is_some())
    });
    json!({
        "best_concurrency": a.best,
        "lowest_failing_concurrency": a.lowest_failing,
        "reason": a.reason,
        "goodput_requests_per_sec": best.and_then(|p| p.meta.results.goodput.as_ref()).map(|g| g.requests_per_sec),
        "output_tokens_per_sec": best.map(|p| p.meta.results.output_tokens_per_sec),
        "test_id": best.map(|p| p.meta.test_id.clone()),
    })
}

pub fn table(o: &sweep::Outcome, spec: &Spec) -> String {
    let headers = [
        "#",
        "role",
        "load",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "ok %",
        "status",
        "note",
    ];
    let ms = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |v| format!("{v:.1}"));
    let rows: Vec<Vec<String>> = o
        .points
        .iter()
        .map(|p| {
            let j = sweep::point_json(p);
            let mut note = String::new();
            if let Some(g) = j["probe"].as_object().filter(|g| g.contains_key("verdict")) {
                note = format!(
                    "attainment {} [{}, {}] {}",
                    g["attainment"],
                    g["low"],
                    g["high"],
                    g["verdict"].as_str().unwrap_or("")
                );
            }
            if p.repeats.len() > 1 {
                note = format!("mean of {} repeats", p.repeats.len());
            }
            if let Some(s) = &p.stop {
                note = format!("stopped: {}", s.rule);
            }
            if p.resumed {
                let word = if o.recovered.contains(&p.meta.test_id) {
                    "stored, recovered"
                } else {
                    "stored"
                };
                note = if note.is_empty() {
                    word.into()
                } else {
                    format!("{word}; {note}")
                };
            }
            let load = match p.axis {
                Axis::Concurrency => format!("c={}", p.value),
                Axis::Rate => format!("{}/s", p.value),
            };
            vec![
                p.index.to_string(),
                p.role.clone(),
                load,
                format!("{:.2}", p.summary.results.throughput_requests_per_sec),
                format!("{:.1}", p.summary.results.output_tokens_per_sec),
                ms(&j["ttft_p50_ms"]),
                ms(&j["ttft_p99_ms"]),
                ms(&j["tpot_p50_ms"]),
                format!("{:.1}", j["success_percent"].as_f64().unwrap_or(0.0)),
                p.summary.status.to_string(),
                note,
            ]
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("Sweep {} ({} points)\n", o.id, o.points.len());
    let mut line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if (3..=8).contains(&i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r);
    }
    if let (Some(a), Mode::Goodput { target, .. }) = (&o.answer, &spec.mode) {
        let j = answer_json(a, o);
        out.push_str(&match a.best {
            Some(b) => format!(
                "Max goodput under the SLO (target {:.1}%): concurrency {b}, {} good req/s, {} output tok/s ({}; lowest failing: {})\n",
                target * 100.0,
                j["goodput_requests_per_sec"].as_f64().map_or("-".into(), |v| format!("{v:.2}")),
                j["output_tokens_per_sec"].as_f64().map_or("-".into(), |v| format!("{v:.1}")),
                a.reason,
                a.lowest_failing.map_or("none".into(), |f| f.to_string()),
            ),
            None => format!(
                "No concurrency meets the SLO at the {:.1}% target ({})\n",
                target * 100.0,
                a.reason
            ),
        });
    }
    out
}
