//! Which point comes next, from the plan and the points so far: the next value of a list,
//! the anchors and rates of `--auto`, the next probe of the goodput search. A pure
//! function of what is stored, so a resumed sweep plans exactly the points the first run
//! would have.

use anyhow::Result;

use super::Point;
use super::goodput::{self, Answer, Next, Probe, Search};
use super::plan::{Axis, Mode, Spec};
use crate::error::Error;
use crate::load::LoadSpec;
use crate::load::schedule::Rate;
use crate::schema::Metadata;

/// The throughput step of `--auto`, and each goodput probe, send at least this many
/// times as many requests as it keeps in flight, so that the batch is full for most of the
/// step (GuideLLM's throughput step, bounded by the synchronous step, is too short:
/// guidellm#88, #564).
pub const WAVES: u64 = 3;

/// A point to run (or to find stored).
#[derive(Debug, Clone)]
pub struct Planned {
    pub index: u32,
    pub role: &'static str,
    pub axis: Axis,
    pub value: f64,
    pub load: LoadSpec,
}

pub enum Step {
    Run(Planned),
    Done {
        answer: Option<Answer>,
        note: Option<String>,
    },
}

pub fn mode_name(m: &Mode) -> &'static str {
    match m {
        Mode::List { .. } => "list",
        Mode::Auto { .. } => "auto",
        Mode::Goodput { .. } => "goodput",
    }
}

/// The step after `points`.
pub fn next(spec: &Spec, points: &[Point]) -> Step {
    // A shard runs every count-th point of a list, from its own index (the plan's index).
    let index = match (&spec.shard, &spec.mode) {
        (Some(s), Mode::List { .. }) => s.nth(points.len()),
        _ => points.len() as u32,
    };
    let done = |note: Option<String>| Step::Done { answer: None, note };
    let base = &spec.base.load;
    let load = |concurrency: Option<u32>, rate: Option<f64>| LoadSpec {
        concurrency,
        rate: rate.map(|per_sec| Rate {
            per_sec,
            arrival: spec.arrival,
            burstiness: spec.burstiness,
        }),
        ..base.clone()
    };
    let planned = |role, axis, value, load| {
        Step::Run(Planned {
            index,
            role,
            axis,
            value,
            load,
        })
    };
    match &spec.mode {
        Mode::List { axis, values } => match values.get(index as usize) {
            None => done(None),
            Some(&v) => match axis {
                Axis::Concurrency => planned("point", *axis, v, load(Some(v as u32), None)),
                Axis::Rate => planned("point", *axis, v, load(None, Some(v))),
            },
        },
        Mode::Auto {
            points: n,
            max_concurrency: m,
        } => match index {
            0 => planned("synchronous", Axis::Concurrency, 1.0, load(Some(1), None)),
            1 => {
                let mut l = load(Some(*m), None);
                l.num_requests = l.num_requests.map(|k| k.max(WAVES * *m as u64));
                planned("throughput", Axis::Concurrency, *m as f64, l)
            }
            i if i >= 2 + n => done(None),
            i => {
                let sync = points[0].summary.results.throughput_requests_per_sec;
                let thr = points[1].summary.results.throughput_requests_per_sec;
                if !(thr > sync && sync > 0.0) {
                    return done(Some(format!(
                        "no rates to sweep: the throughput step reached {thr:.3} req/s, the synchronous step {sync:.3} req/s"
                    )));
                }
                let k = (i - 1) as f64;
                let rate = sync + (thr - sync) * k / *n as f64;
                let rate = (rate * 1e6).round() / 1e6;
                planned("point", Axis::Rate, rate, load(Some(*m), Some(rate)))
            }
        },
        Mode::Goodput {
            target,
            tolerance,
            max_concurrency,
            max_probes,
        } => {
            let search = Search {
                target: *target,
                tolerance: *tolerance,
                max_concurrency: *max_concurrency,
                max_probes: *max_probes,
            };
            let probes: Vec<Probe> = points.iter().filter_map(|p| p.probe).collect();
            match goodput::next(&search, &probes) {
                Next::Done(a) => Step::Done {
                    answer: Some(a),
                    note: None,
                },
                Next::Probe {
                    concurrency: c,
                    attempt,
                } => {
                    let mut l = load(Some(c), None);
                    let a = attempt as u64;
                    l.num_requests = l.num_requests.map(|k| k.max(WAVES * c as u64) * a);
                    l.duration = l.duration.map(|d| d * attempt);
                    planned("goodput", Axis::Concurrency, c as f64, l)
                }
            }
        }
    }
}

/// A stored point must be the one the plan wants at its index.
pub fn check_stored(m: &Metadata, step: &Planned) -> Result<()> {
    let link = m.sweep.as_ref().expect("stored points have a sweep link");
    let same = link.axis == step.axis.name()
        && link.role == step.role
        && (link.value - step.value).abs() <= 1e-6 * step.value.abs().max(1.0);
    if same {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--resume {}: the stored point {} ({}, {} {}) is not the point this plan wants there ({}, {} {}); pass the flags of the first run",
        link.id, m.test_id, link.role, link.axis, link.value, step.role, step.axis.name(), step.value
    ))
    .into())
}

/// A probe's figures: its good requests out of all it sent (failed ones count as not
/// good). A probe at the same concurrency right after a first attempt is its rerun.
pub fn probe_of(m: &Metadata, value: f64, earlier: &[Point]) -> Probe {
    let r = &m.results;
    let concurrency = value as u32;
    let rerun = earlier
        .last()
        .and_then(|p| p.probe)
        .is_some_and(|p| p.concurrency == concurrency && p.attempt == 1);
    Probe {
        concurrency,
        attempt: if rerun { 2 } else { 1 },
        good: r.goodput.as_ref().map_or(0, |g| g.good_requests),
        // Undetermined requests (no figure for one of the SLOs) are neither good nor bad:
        // the goodput's own denominator leaves them out (older runs: every request).
        total: r
            .goodput
            .as_ref()
            .and_then(|g| g.denominator_requests)
            .unwrap_or(r.success_count + r.failure_count),
    }
}
