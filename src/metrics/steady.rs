//! Steady state: the window of a run where its load was at its target (the ramp at the
//! start and the drain at the end cut off), the figures over that window, and the
//! throughput interval from batch means over it. The rules and their reasons are in
//! `docs/steady-state.md`; the stored block is [`crate::schema::SteadyState`].
//!
//! Memory: a [`Collector`] keeps 40 bytes per request (times, token count, three latencies)
//! for at most [`MAX_POINTS`] requests (80 MB); past that it keeps nothing more and the run
//! gets a `steady_state_note` instead of a window, never a window over part of the run.

mod batch;

pub use batch::{MIN_BATCHES, MIN_COMPLETIONS_PER_BATCH, t_975};

use serde_json::Value;

use super::samples::Samples;
use crate::schema::{Latencies, Metadata, RequestRecord, SteadyState, round, steady_method};

/// Most requests whose times are kept for the steady-state window (40 bytes each).
pub const MAX_POINTS: usize = 2_000_000;

/// Where a `--warmup` or `--cooldown` edge of the window lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edge {
    /// This many seconds after the first send (warmup) or before the last response
    /// (cooldown).
    Seconds(f64),
    /// This fraction (0 to 1) of the run's span (first send to last response).
    Fraction(f64),
}

impl Edge {
    fn seconds(self, span_s: f64) -> f64 {
        match self {
            Edge::Seconds(s) => s,
            Edge::Fraction(f) => f * span_s,
        }
    }

    /// As the user would write it: `30s`, `10%`.
    pub fn describe(self) -> String {
        match self {
            Edge::Seconds(s) => format!("{}s", round(s, 3)),
            Edge::Fraction(f) => format!("{}%", round(f * 100.0, 3)),
        }
    }
}

/// The shape of the load, which decides how the window is found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Closed loop: this many requests in flight.
    Closed(u32),
    /// Open loop: requests sent on a schedule (`--rate`).
    Open,
    /// Not known (an imported results file): no window unless trims are given.
    Unknown,
}

/// How to find a run's steady-state window: its load's shape and the optional trims.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteadySpec {
    pub shape: Shape,
    pub warmup: Option<Edge>,
    pub cooldown: Option<Edge>,
}

impl SteadySpec {
    pub fn new(shape: Shape) -> SteadySpec {
        SteadySpec {
            shape,
            warmup: None,
            cooldown: None,
        }
    }

    /// The same spec with the window's edges given (`--warmup`/`--cooldown`); when either
    /// is given the window comes from them (a missing one counts as 0).
    pub fn with_trim(mut self, warmup: Option<Edge>, cooldown: Option<Edge>) -> SteadySpec {
        self.warmup = warmup;
        self.cooldown = cooldown;
        self
    }

    fn trimmed(&self) -> bool {
        self.warmup.is_some() || self.cooldown.is_some()
    }

    /// Whether anything can be computed with this spec.
    pub fn usable(&self) -> bool {
        self.shape != Shape::Unknown || self.trimmed()
    }

    /// The trims as stored in the metadata's `test.load` (`warmup_s`, `warmup_fraction`,
    /// `cooldown_s`, `cooldown_fraction`), for [`SteadySpec::of`] to read back.
    pub fn trim_keys(&self) -> Vec<(&'static str, f64)> {
        let mut keys = Vec::new();
        for (edge, s_key, f_key) in [
            (self.warmup, "warmup_s", "warmup_fraction"),
            (self.cooldown, "cooldown_s", "cooldown_fraction"),
        ] {
            match edge {
                Some(Edge::Seconds(s)) => keys.push((s_key, s)),
                Some(Edge::Fraction(f)) => keys.push((f_key, f)),
                None => {}
            }
        }
        keys
    }

    /// A run's spec from its metadata: `test.load` of a `run` (mode, concurrency, trims),
    /// else `source.load` of an imported document (`max_concurrency`, `request_rate`).
    pub fn of(meta: &Metadata) -> SteadySpec {
        if let Some(load) = meta.test.extra.get("load") {
            let num = |k: &str| load.get(k).and_then(Value::as_f64);
            let shape = match (load.get("mode").and_then(Value::as_str), num("concurrency")) {
                (Some("rate"), _) => Shape::Open,
                (_, Some(c)) if c >= 1.0 => Shape::Closed(c as u32),
                _ => Shape::Unknown,
            };
            let edge = |s: &str, f: &str| match (num(s), num(f)) {
                (Some(s), _) => Some(Edge::Seconds(s)),
                (None, Some(f)) => Some(Edge::Fraction(f)),
                _ => None,
            };
            return SteadySpec::new(shape).with_trim(
                edge("warmup_s", "warmup_fraction"),
                edge("cooldown_s", "cooldown_fraction"),
            );
        }
        let load = meta.source.extra.get("load");
        let concurrency = load
            .and_then(|l| l.get("max_concurrency"))
            .and_then(Value::as_u64);
        let rate = load.and_then(|l| l.get("request_rate")).and_then(|r| {
            r.as_f64()
                .or_else(|| (r.as_str() == Some("inf")).then_some(f64::INFINITY))
        });
        SteadySpec::imported(concurrency, rate)
    }

    /// The spec of an imported run from the load its tool recorded: a finite rate is an
    /// open loop; an unlimited one (or none) with a concurrency limit is a closed loop.
    pub fn imported(max_concurrency: Option<u64>, request_rate: Option<f64>) -> SteadySpec {
        let shape = match (max_concurrency, request_rate) {
            (_, Some(r)) if r.is_finite() => Shape::Open,
            (Some(c), _) if c >= 1 => Shape::Closed(c.min(u32::MAX as u64) as u32),
            _ => Shape::Unknown,
        };
        SteadySpec::new(shape)
    }
}

/// What is kept of one request (40 bytes): its send and end times, its first token as an
/// offset from the send (NaN: none), its latencies (NaN: none) and output tokens.
#[derive(Debug, Clone, Copy)]
struct Point {
    start: f64,
    end: f64,
    first: f32,
    ttft: f32,
    tpot: f32,
    e2e: f32,
    tokens: u32,
    ok: bool,
}

impl Point {
    fn first_token_s(&self) -> Option<f64> {
        (!self.first.is_nan()).then_some(self.start + self.first as f64)
    }

    /// Output tokens generated within `[a, b)`: the first token at its time, the others
    /// spread evenly from it to the end (all of them from the send to the end when the
    /// first token's time is unknown, e.g. a whole, non-streamed response).
    fn tokens_in(&self, a: f64, b: f64) -> f64 {
        if !self.ok || self.tokens == 0 {
            return 0.0;
        }
        let inside = |t: f64| a <= t && t < b;
        let (from, at_first, spread) = match self.first_token_s() {
            Some(f) => (
                f,
                if inside(f) { 1.0 } else { 0.0 },
                (self.tokens - 1) as f64,
            ),
            None => (self.start, 0.0, self.tokens as f64),
        };
        let length = self.end - from;
        let rest = if spread == 0.0 {
            0.0
        } else if length <= 0.0 {
            if inside(self.end) { spread } else { 0.0 }
        } else {
            let overlap = (self.end.min(b) - from.max(a)).max(0.0);
            spread * overlap / length
        };
        at_first + rest
    }
}

fn opt32(v: Option<f64>) -> f32 {
    v.filter(|v| v.is_finite()).map_or(f32::NAN, |v| v as f32)
}

fn from32(v: f32) -> Option<f64> {
    (!v.is_nan()).then_some(v as f64)
}

/// Collects what the window needs of each request, as the records stream past (see the
/// module's memory bound), and computes the steady-state block at the end.
#[derive(Debug)]
pub struct Collector {
    spec: SteadySpec,
    points: Vec<Point>,
    /// Records past [`MAX_POINTS`].
    over_cap: u64,
    /// Records without a send or an end time.
    untimed: u64,
}

impl Collector {
    pub fn new(spec: SteadySpec) -> Collector {
        Collector {
            spec,
            points: Vec::new(),
            over_cap: 0,
            untimed: 0,
        }
    }

    /// Add one request (failed ones too: they held a slot while in flight).
    pub fn push(&mut self, r: &RequestRecord) {
        let (Some(start), Some(end)) = (r.sent_s.or(r.scheduled_s), r.end_s) else {
            self.untimed += 1;
            return;
        };
        if !(start.is_finite() && end.is_finite() && end >= start) {
            self.untimed += 1;
            return;
        }
        if self.points.len() >= MAX_POINTS {
            self.over_cap += 1;
            return;
        }
        let first = r
            .first_token_s
            .filter(|f| f.is_finite() && *f >= start && *f <= end)
            .map(|f| f - start);
        self.points.push(Point {
            start,
            end,
            first: opt32(first),
            ttft: opt32(r.ttft_ms),
            tpot: opt32(r.tpot_ms()),
            e2e: opt32(r.e2e_ms),
            tokens: r.completion_tokens.unwrap_or(0).min(u32::MAX as u64) as u32,
            ok: r.ok,
        });
    }

    /// The steady-state block, or why there is none (stored as `steady_state_note`).
    pub fn finish(self) -> Result<SteadyState, String> {
        if self.over_cap > 0 {
            return Err(format!(
                "not computed: the run has more than {MAX_POINTS} requests, the most whose times are kept for the window"
            ));
        }
        if self.points.is_empty() {
            return Err("not computed: the records carry no send and end times".into());
        }
        if !self.points.iter().any(|p| p.ok) {
            return Err("none: no request succeeded".into());
        }
        let first = self
            .points
            .iter()
            .map(|p| p.start)
            .fold(f64::INFINITY, f64::min);
        let last = self
            .points
            .iter()
            .map(|p| p.end)
            .fold(f64::NEG_INFINITY, f64::max);
        let span = last - first;
        let (method, target, (a, b)) = if self.spec.trimmed() {
            let w = trimmed_window(&self.spec, first, last)?;
            (steady_method::WARMUP_COOLDOWN, None, w)
        } else {
            match self.spec.shape {
                Shape::Closed(c) => (
                    steady_method::IN_FLIGHT,
                    Some(c),
                    closed_window(&self.points, c)?,
                ),
                Shape::Open => (steady_method::ARRIVALS, None, open_window(&self.points)?),
                Shape::Unknown => {
                    return Err("not computed: the load (concurrency or rate) is unknown".into());
                }
            }
        };
        Ok(figures(&self.points, method, target, a, b, span))
    }
}

/// `--warmup`/`--cooldown`: the span (first send to last response) less the two edges.
fn trimmed_window(spec: &SteadySpec, first: f64, last: f64) -> Result<(f64, f64), String> {
    let span = last - first;
    let w = spec.warmup.map_or(0.0, |e| e.seconds(span));
    let c = spec.cooldown.map_or(0.0, |e| e.seconds(span));
    let (a, b) = (first + w, last - c);
    if b <= a {
        return Err(format!(
            "none: --warmup {} and --cooldown {} leave nothing of the {:.3} s run",
            spec.warmup.map_or("0".into(), Edge::describe),
            spec.cooldown.map_or("0".into(), Edge::describe),
            span
        ));
    }
    Ok((a, b))
}

/// Closed loop at `c`: from the later of the first moment `c` requests are in flight and
/// the end of the first generation (the last of the `c` first-sent requests finished), to
/// the first completion after the last moment `c` were in flight (the drain's start).
fn closed_window(points: &[Point], c: u32) -> Result<(f64, f64), String> {
    let c = c.max(1);
    // Ends before starts at the same instant: a slot freed and refilled is not c + 1.
    let mut events: Vec<(f64, i8)> = Vec::with_capacity(points.len() * 2);
    for p in points {
        events.push((p.start, 1));
        events.push((p.end, -1));
    }
    events.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut n, mut peak) = (0i64, 0i64);
    let mut first_full = None;
    let mut last_full = None;
    for (i, &(t, d)) in events.iter().enumerate() {
        n += d as i64;
        peak = peak.max(n);
        if n >= c as i64 {
            first_full.get_or_insert(t);
            last_full = Some(i);
        }
    }
    let (Some(first_full), Some(last_full)) = (first_full, last_full) else {
        return Err(format!(
            "none: the load never reached its target of {c} requests in flight (at most {peak})"
        ));
    };
    let drain = events[last_full + 1..]
        .iter()
        .find(|e| e.1 < 0)
        .map_or(first_full, |e| e.0);
    // The first generation: the c requests sent first, and when the last of them ended.
    let mut by_start: Vec<(f64, f64)> = points.iter().map(|p| (p.start, p.end)).collect();
    let k = (c as usize).min(by_start.len());
    if k < by_start.len() {
        by_start.select_nth_unstable_by(k - 1, |x, y| x.0.total_cmp(&y.0));
    }
    let ramp_end = by_start[..k]
        .iter()
        .map(|x| x.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let start = first_full.max(ramp_end);
    if drain <= start {
        return Err(format!(
            "none: the drain began ({drain:.3} s) before the first {c} requests had all finished ({start:.3} s): the run is too short for a steady state"
        ));
    }
    Ok((start, drain))
}

/// Open loop: from the end of the first request sent (the server has had one request's
/// time to fill) to the last send (after it, arrivals stop and the server drains).
fn open_window(points: &[Point]) -> Result<(f64, f64), String> {
    let first = points
        .iter()
        .min_by(|x, y| x.start.total_cmp(&y.start))
        .expect("points are not empty");
    let last_send = points
        .iter()
        .map(|p| p.start)
        .fold(f64::NEG_INFINITY, f64::max);
    if last_send <= first.end {
        return Err(format!(
            "none: the last request was sent ({last_send:.3} s) before the first one ended ({:.3} s): the run is too short for a steady state",
            first.end
        ));
    }
    Ok((first.end, last_send))
}

/// The figures over `[a, b)`.
fn figures(
    points: &[Point],
    method: &str,
    target: Option<u32>,
    a: f64,
    b: f64,
    span: f64,
) -> SteadyState {
    let duration = b - a;
    let (mut ttft, mut tpot, mut e2e) = (Samples::new(), Samples::new(), Samples::new());
    let (mut requests, mut completed, mut tokens) = (0u64, 0u64, 0.0f64);
    for p in points {
        tokens += p.tokens_in(a, b);
        if !p.ok {
            continue;
        }
        if a <= p.end && p.end < b {
            completed += 1;
        }
        if a <= p.start && p.start < b {
            requests += 1;
            for (s, v) in [(&mut ttft, p.ttft), (&mut tpot, p.tpot), (&mut e2e, p.e2e)] {
                if let Some(v) = from32(v) {
                    s.push(v);
                }
            }
        }
    }
    let (ttft, tpot, e2e) = (ttft.summary(), tpot.summary(), e2e.summary());
    let median_e2e_s = e2e.as_ref().map_or(0.0, |s| s.p50 / 1000.0);
    let latencies = Latencies {
        ttft,
        tpot,
        e2e,
        ..Default::default()
    };
    let (ci, note) = match batch::interval(points, a, b, completed, median_e2e_s) {
        Ok(ci) => (Some(ci), None),
        Err(note) => (None, Some(note)),
    };
    SteadyState {
        method: method.to_string(),
        target_in_flight: target,
        start_s: round(a, 3),
        end_s: round(b, 3),
        duration_s: round(duration, 3),
        run_span_s: round(span, 3),
        requests,
        completed,
        output_tokens: round(tokens, 1),
        output_tokens_per_sec: round(tokens / duration, 2),
        requests_per_sec: round(completed as f64 / duration, 3),
        latency_ms: (!latencies.is_empty()).then_some(latencies),
        throughput_ci: ci,
        throughput_ci_note: note,
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests;
