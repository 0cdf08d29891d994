//! Significance-aware gating: per metric, whether a candidate run changed against a
//! baseline (one run, or a history of runs) beyond a threshold AND significantly at a
//! level alpha, with the effect, its 95 % interval, the p-value and the test's name;
//! "not enough data" rather than a guess. The tests are in `metrics::significance`,
//! the evidence is read by `samples`, the text by `render`; see docs/gating.md.

pub mod render;
pub mod samples;

use crate::metrics::significance::{self as sig, Test};
use crate::report::h2h::Better;
use crate::schema::Metadata;
use crate::store::{Store, parallel_map};

pub use samples::RunSamples;

/// Fewest successful requests per side for a latency median test.
pub const MIN_REQUESTS: usize = 20;
/// Fewest batch means or runs per side for a throughput test.
pub const MIN_BATCHES: usize = 3;
/// Fewest requests beyond the tail quantile per side (p99 needs 500 requests).
pub const MIN_TAIL: f64 = 5.0;

/// Which rate a throughput metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Output,
    Total,
    Requests,
}

/// Which per-request latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lat {
    Ttft,
    Tpot,
    E2e,
}

/// How a metric is tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Batch means (Welch) or a run against its history (t prediction).
    Rate(Rate),
    /// Successful requests out of all (two-proportion z-test).
    Success,
    /// A latency quantile (0-1): the median by Mann-Whitney U, a tail by a quantile z-test.
    Latency(Lat, f64),
}

/// One gated metric; the keys are those of `compare --baseline` (`report::deltas`).
#[derive(Debug, Clone, Copy)]
pub struct Gated {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    pub kind: Kind,
}

const fn g(key: &'static str, label: &'static str, better: Better, kind: Kind) -> Gated {
    Gated {
        key,
        label,
        better,
        kind,
    }
}

/// The gated metrics, in display order.
pub const GATED: [Gated; 9] = [
    g(
        "output_tokens_per_sec",
        "output tok/s",
        Better::Higher,
        Kind::Rate(Rate::Output),
    ),
    g(
        "throughput_tokens_per_sec",
        "total tok/s",
        Better::Higher,
        Kind::Rate(Rate::Total),
    ),
    g(
        "throughput_requests_per_sec",
        "req/s",
        Better::Higher,
        Kind::Rate(Rate::Requests),
    ),
    g(
        "success_percent",
        "success %",
        Better::Higher,
        Kind::Success,
    ),
    g(
        "ttft_p50_ms",
        "TTFT p50 ms",
        Better::Lower,
        Kind::Latency(Lat::Ttft, 0.5),
    ),
    g(
        "ttft_p99_ms",
        "TTFT p99 ms",
        Better::Lower,
        Kind::Latency(Lat::Ttft, 0.99),
    ),
    g(
        "tpot_p50_ms",
        "TPOT p50 ms",
        Better::Lower,
        Kind::Latency(Lat::Tpot, 0.5),
    ),
    g(
        "e2e_p50_ms",
        "E2E p50 ms",
        Better::Lower,
        Kind::Latency(Lat::E2e, 0.5),
    ),
    g(
        "e2e_p99_ms",
        "E2E p99 ms",
        Better::Lower,
        Kind::Latency(Lat::E2e, 0.99),
    ),
];

/// The index in [`GATED`] of a metric key, or the list of keys as the error.
pub fn metric_index(key: &str) -> Result<usize, String> {
    GATED
        .iter()
        .position(|m| m.key == key)
        .ok_or_else(|| GATED.iter().map(|m| m.key).collect::<Vec<_>>().join(", "))
}

/// The gate's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Smallest change, in percent of the baseline, that can count.
    pub threshold_pct: f64,
    /// Significance level: a change counts only when p < alpha.
    pub alpha: f64,
    /// Indexes into [`GATED`]; empty = all.
    pub metrics: Vec<usize>,
    /// The run-to-run noise a single run's median or throughput carries, in percent of
    /// the baseline (`--noise-floor`; 0 = none): without a history to measure that
    /// spread, a change must also be significant against it ([`noise_floor`]).
    pub noise_floor_pct: f64,
    /// The same for a tail quantile (p99; `--tail-noise-floor`).
    pub tail_noise_floor_pct: f64,
}

/// Default `--noise-floor` (percent).
pub const NOISE_FLOOR_PCT: f64 = 2.0;
/// Default `--tail-noise-floor` (percent).
pub const TAIL_NOISE_FLOOR_PCT: f64 = 20.0;

impl Settings {
    fn chosen(&self) -> Vec<usize> {
        if self.metrics.is_empty() {
            (0..GATED.len()).collect()
        } else {
            self.metrics.clone()
        }
    }
}

/// One side of a comparison: its runs and their pooled per-request evidence.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    pub runs: Vec<&'a Metadata>,
    /// Pooled samples of the runs that have a readable log; `Err` when none has.
    pub samples: Result<RunSamples, String>,
    /// Runs left out of the pooled samples, and why.
    pub notes: Vec<String>,
    /// Per run with a readable log: its latency quantiles, as [`quantiles`] orders them.
    pub per_run: Vec<[f64; 6]>,
}

/// The latency quantiles of one run: TTFT, TPOT, E2E, each at 0.5 and 0.99 (NaN when the
/// run has no value).
pub fn quantiles(s: &RunSamples) -> [f64; 6] {
    let q = |v: &[f64], p: f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            crate::metrics::percentile(v, p)
        }
    };
    [
        q(&s.ttft, 50.0),
        q(&s.ttft, 99.0),
        q(&s.tpot, 50.0),
        q(&s.tpot, 99.0),
        q(&s.e2e, 50.0),
        q(&s.e2e, 99.0),
    ]
}

fn quantile_slot(l: Lat, q: f64) -> usize {
    let base = match l {
        Lat::Ttft => 0,
        Lat::Tpot => 2,
        Lat::E2e => 4,
    };
    base + usize::from(q != 0.5)
}

impl<'a> Evidence<'a> {
    /// Read the runs' raw logs in parallel, at most `samples::CAP` values per metric in
    /// all (shared out between the runs).
    pub fn read(store: &Store, runs: Vec<&'a Metadata>) -> Evidence<'a> {
        let cap = (samples::CAP / runs.len().max(1)).max(1);
        let read = parallel_map(&runs, |m| samples::read(store, m, cap));
        let mut notes = Vec::new();
        let mut ok = Vec::new();
        let mut per_run = Vec::new();
        for r in read {
            match r {
                Ok(s) => {
                    per_run.push(quantiles(&s));
                    ok.push(s)
                }
                Err(why) => notes.push(why),
            }
        }
        let samples = if ok.is_empty() {
            Err(notes.first().cloned().unwrap_or_else(|| "no runs".into()))
        } else {
            Ok(RunSamples::pool(ok))
        };
        Evidence {
            runs,
            samples,
            notes,
            per_run,
        }
    }
}

/// How a metric moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Worse beyond the threshold and p < alpha.
    Regression,
    /// Better beyond the threshold and p < alpha.
    Improvement,
    /// Within the threshold, or not significant.
    NoChange,
    /// Too little data for the test (see `why`).
    NotEnoughData,
    /// The runs ran at different loads: not judged.
    OtherLoad,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Regression => "regression",
            Outcome::Improvement => "improvement",
            Outcome::NoChange => "no significant change",
            Outcome::NotEnoughData => "not enough data",
            Outcome::OtherLoad => "other load",
        }
    }
}

/// One metric's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Index into [`GATED`].
    pub metric: usize,
    /// The test used, e.g. `Mann-Whitney U (500 vs 500 requests)`.
    pub test: String,
    /// The baseline's and the candidate's estimates the effect is the difference of.
    pub baseline: Option<f64>,
    pub value: Option<f64>,
    pub result: Option<Test>,
    /// The effect in percent of the baseline estimate.
    pub percent: Option<f64>,
    pub outcome: Outcome,
    /// Why there is not enough data.
    pub why: Option<String>,
    /// The run noise floor (percent) the test was also held against, when it was.
    pub noise_floor_pct: Option<f64>,
}

impl Finding {
    pub fn gated(&self) -> &'static Gated {
        &GATED[self.metric]
    }

    fn missing(metric: usize, test: &str, why: String) -> Finding {
        Finding {
            metric,
            test: test.to_string(),
            baseline: None,
            value: None,
            result: None,
            percent: None,
            outcome: Outcome::NotEnoughData,
            why: Some(why),
            noise_floor_pct: None,
        }
    }
}

fn rate_of(m: &Metadata, r: Rate) -> f64 {
    match r {
        Rate::Output => m.results.output_tokens_per_sec,
        Rate::Total => m.results.throughput_tokens_per_sec,
        Rate::Requests => m.results.throughput_requests_per_sec,
    }
}

fn batches(s: &RunSamples, r: Rate) -> &[f64] {
    match r {
        Rate::Output => &s.out_tps,
        Rate::Total => &s.tot_tps,
        Rate::Requests => &s.rps,
    }
}

fn latencies(s: &RunSamples, l: Lat) -> &[f64] {
    match l {
        Lat::Ttft => &s.ttft,
        Lat::Tpot => &s.tpot,
        Lat::E2e => &s.e2e,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The raw logs' problem on a side, as a reason, when its samples are missing.
fn samples_of<'s>(e: &'s Evidence, side: &str) -> Result<&'s RunSamples, String> {
    e.samples.as_ref().map_err(|why| format!("{side}: {why}"))
}

/// Test one metric: (test name, baseline estimate, candidate estimate, result), or why not.
fn test_one(
    metric: usize,
    base: &Evidence,
    cand: &Evidence,
) -> Result<(String, f64, f64, Test), String> {
    match GATED[metric].kind {
        Kind::Rate(r) if base.runs.len() >= MIN_BATCHES && cand.runs.len() == 1 => {
            let hist: Vec<f64> = base.runs.iter().map(|m| rate_of(m, r)).collect();
            let x = rate_of(cand.runs[0], r);
            let t = sig::prediction(&hist, x).ok_or("fewer than 2 history runs")?;
            let name = format!("t prediction vs {} earlier runs", hist.len());
            Ok((name, mean(&hist), x, t))
        }
        Kind::Rate(r) => {
            let (b, c) = (
                samples_of(base, "baseline")?,
                samples_of(cand, "candidate")?,
            );
            let (b, c) = (batches(b, r), batches(c, r));
            if b.len() < MIN_BATCHES || c.len() < MIN_BATCHES {
                return Err(format!(
                    "{} vs {} batch means (at least {MIN_BATCHES} a side: {} completions with times each, or {MIN_BATCHES} runs of history)",
                    b.len(),
                    c.len(),
                    samples::MIN_PER_BATCH * MIN_BATCHES + 1
                ));
            }
            let t = sig::welch(b, c).ok_or("too few batch means")?;
            let name = format!("Welch t, batch means ({} vs {})", b.len(), c.len());
            Ok((name, mean(b), mean(c), t))
        }
        Kind::Success => {
            let count = |e: &Evidence| {
                e.runs.iter().fold((0u64, 0u64), |(ok, n), m| {
                    let r = &m.results;
                    (ok + r.success_count, n + r.success_count + r.failure_count)
                })
            };
            let ((ob, nb), (oc, nc)) = (count(base), count(cand));
            if (nb as usize) < MIN_REQUESTS || (nc as usize) < MIN_REQUESTS {
                return Err(format!(
                    "{nb} vs {nc} requests (at least {MIN_REQUESTS} a side)"
                ));
            }
            let t = sig::proportions(ob, nb, oc, nc).ok_or("no requests")?;
            let name = format!("two-proportion z ({nb} vs {nc} requests)");
            Ok((
                name,
                ob as f64 / nb as f64 * 100.0,
                oc as f64 / nc as f64 * 100.0,
                t,
            ))
        }
        Kind::Latency(l, q) => {
            let (b, c) = (
                samples_of(base, "baseline")?,
                samples_of(cand, "candidate")?,
            );
            let (b, c) = (latencies(b, l), latencies(c, l));
            let need = if q == 0.5 {
                MIN_REQUESTS
            } else {
                (MIN_TAIL / (1.0 - q)).ceil() as usize
            };
            if b.len() < need || c.len() < need {
                return Err(format!(
                    "{} vs {} successful requests with this latency (at least {need} a side)",
                    b.len(),
                    c.len()
                ));
            }
            let mut t = sig::quantile_shift(b, c, q).ok_or("no values")?;
            let name = if q == 0.5 {
                let (u, p) = sig::mann_whitney(b, c).ok_or("no values")?;
                t.statistic = u;
                t.p = p;
                format!("Mann-Whitney U ({} vs {} requests)", b.len(), c.len())
            } else {
                format!(
                    "quantile z, order-statistic SE ({} vs {} requests)",
                    b.len(),
                    c.len()
                )
            };
            let qb = crate::metrics::percentile(b, q * 100.0);
            // With a history of runs, the change must also stand out from the run-to-run
            // spread of this quantile (per-request tests cannot see that spread).
            let slot = quantile_slot(l, q);
            let hist: Vec<f64> = base
                .per_run
                .iter()
                .map(|r| r[slot])
                .filter(|v| v.is_finite())
                .collect();
            let mine = cand.per_run.first().map(|r| r[slot]);
            let name = match (hist.len() >= MIN_BATCHES, mine) {
                (true, Some(x)) if x.is_finite() => match sig::prediction(&hist, x) {
                    Some(pr) => {
                        t.p = t.p.max(pr.p);
                        let half = (t.hi - t.effect).max(pr.hi - pr.effect);
                        t.lo = t.effect - half;
                        t.hi = t.effect + half;
                        format!("{name} and t prediction vs {} runs", hist.len())
                    }
                    None => name,
                },
                _ => name,
            };
            Ok((name, qb, qb + t.effect, t))
        }
    }
}

fn test_name(metric: usize) -> &'static str {
    match GATED[metric].kind {
        Kind::Rate(_) => "Welch t, batch means",
        Kind::Success => "two-proportion z",
        Kind::Latency(_, 0.5) => "Mann-Whitney U",
        Kind::Latency(..) => "quantile z",
    }
}

fn floor_pct(metric: usize, s: &Settings) -> f64 {
    match GATED[metric].kind {
        Kind::Latency(_, q) if q > 0.5 => s.tail_noise_floor_pct,
        Kind::Latency(..) | Kind::Rate(_) => s.noise_floor_pct,
        Kind::Success => 0.0,
    }
}

/// The standard error that run-to-run noise alone gives the difference of a metric, when
/// the test could not measure that noise (no history: a per-request test or batch means
/// within each run only): each side's figure is taken to move from run to run with a
/// standard deviation of the floor (in percent of the baseline `b`), divided by the
/// square root of its runs. `None` when there is no floor, or a history's spread was used
/// (a t prediction).
fn noise_floor(
    metric: usize,
    s: &Settings,
    name: &str,
    b: f64,
    base_runs: usize,
    cand_runs: usize,
) -> Option<f64> {
    let pct = floor_pct(metric, s);
    if pct <= 0.0 || name.contains("t prediction") || b == 0.0 || !b.is_finite() {
        return None;
    }
    let sd = pct / 100.0 * b.abs();
    let n = |k: usize| k.max(1) as f64;
    Some(sd * (1.0 / n(base_runs) + 1.0 / n(cand_runs)).sqrt())
}

/// The test must also be significant against the run noise: its p-value becomes the larger
/// of its own and a z-test of the effect against `se`, and its interval the wider.
fn floor_test(t: &mut Test, se: f64) {
    let z = t.effect / se;
    let p = (2.0 * sig::normal_sf(z.abs())).min(1.0);
    t.p = t.p.max(p);
    let half = sig::Z95 * se;
    t.lo = t.lo.min(t.effect - half);
    t.hi = t.hi.max(t.effect + half);
}

/// Judge every chosen metric of `cand` against `base`. With `other_load`, nothing is
/// judged (the runs are not like for like).
pub fn judge(base: &Evidence, cand: &Evidence, s: &Settings, other_load: bool) -> Vec<Finding> {
    s.chosen()
        .into_iter()
        .map(|metric| {
            let (name, b, c, mut t) = match test_one(metric, base, cand) {
                Ok(x) => x,
                Err(why) => return Finding::missing(metric, test_name(metric), why),
            };
            let floor =
                noise_floor(metric, s, &name, b, base.runs.len(), cand.runs.len()).map(|se| {
                    floor_test(&mut t, se);
                    floor_pct(metric, s)
                });
            let percent = (b != 0.0).then(|| t.effect / b.abs() * 100.0);
            let beyond = match percent {
                Some(p) => p.abs() > s.threshold_pct,
                None => t.effect != 0.0,
            };
            let worse = match GATED[metric].better {
                Better::Lower => t.effect > 0.0,
                Better::Higher => t.effect < 0.0,
            };
            let outcome = match (other_load, beyond && t.p < s.alpha, worse) {
                (true, _, _) => Outcome::OtherLoad,
                (false, false, _) => Outcome::NoChange,
                (false, true, true) => Outcome::Regression,
                (false, true, false) => Outcome::Improvement,
            };
            Finding {
                metric,
                test: name,
                baseline: Some(b),
                value: Some(c),
                result: Some(t),
                percent,
                outcome,
                why: None,
                noise_floor_pct: floor,
            }
        })
        .collect()
}

/// One candidate judged against one baseline side.
#[derive(Debug, Clone)]
pub struct Judged<'a> {
    pub run: &'a Metadata,
    pub findings: Vec<Finding>,
    /// Why the two sides are not like for like, if they are not.
    pub caveat: Option<String>,
    /// Runs whose logs could not be read (on either side).
    pub notes: Vec<String>,
}

impl Judged<'_> {
    pub fn regressions(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.outcome == Outcome::Regression)
    }

    pub fn lacking(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.outcome == Outcome::NotEnoughData)
    }
}
