//! The max-goodput search: the highest concurrency whose SLO attainment is surely above the
//! target. Concurrency doubles from 1 until a probe fails, then the gap between the best
//! pass and the lowest failure is bisected down to the tolerance. A probe passes when the
//! 95% Wilson interval of its attainment lies above the target, fails when it lies below;
//! one that straddles it is rerun once with twice the requests, and is `unresolved` (and
//! counted as a failure, so the answer is always a resolved pass) if it straddles again.
//!
//! The search is a pure function of the probes run so far ([`next`]), so a resumed sweep
//! replays the stored probes and continues where it stopped.

use serde_json::{Value, json};

use crate::metrics::sweep::wilson;

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959964;

/// The search's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    pub target: f64,
    pub tolerance: f64,
    pub max_concurrency: u32,
    pub max_probes: u32,
}

/// One stored probe: its concurrency, its attempt (2 = the rerun of a straddling probe),
/// and how many of its requests met every SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub concurrency: u32,
    pub attempt: u32,
    pub good: u64,
    pub total: u64,
}

/// A probe's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The interval straddles the target (first attempt: rerun it).
    Straddle,
    /// Straddled twice.
    Unresolved,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Straddle => "straddles",
            Verdict::Unresolved => "unresolved",
        }
    }
}

impl Probe {
    pub fn attainment(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.good as f64 / self.total as f64
        }
    }

    pub fn interval(&self) -> (f64, f64) {
        wilson(self.good, self.total, Z95)
    }

    pub fn verdict(&self, target: f64) -> Verdict {
        let (lo, hi) = self.interval();
        if self.total > 0 && lo >= target {
            Verdict::Pass
        } else if self.total == 0 || hi < target {
            Verdict::Fail
        } else if self.attempt >= 2 {
            Verdict::Unresolved
        } else {
            Verdict::Straddle
        }
    }

    /// What a probe records in its metadata (`sweep.goodput`).
    pub fn to_json(&self, target: f64) -> Value {
        let (lo, hi) = self.interval();
        json!({
            "attainment": crate::schema::round(self.attainment(), 4),
            "low": crate::schema::round(lo, 4),
            "high": crate::schema::round(hi, 4),
            "target": target,
            "good_requests": self.good,
            "requests": self.total,
            "attempt": self.attempt,
            "verdict": self.verdict(target).name(),
        })
    }
}

/// What the search does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run a probe at this concurrency (attempt 2: the rerun, with twice the requests).
    Probe { concurrency: u32, attempt: u32 },
    /// The search is over.
    Done(Answer),
}

/// The search's answer: the best resolved pass, the lowest failure above it, and why it
/// stopped (`converged`, `max_concurrency_reached`, `unmet_at_minimum`, `max_probes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub best: Option<u32>,
    pub lowest_failing: Option<u32>,
    pub reason: &'static str,
}

/// The next step after `probes` (in the order they ran).
pub fn next(s: &Search, probes: &[Probe]) -> Next {
    // Outcomes per concurrency, a straddling first attempt replaced by its rerun.
    let mut outcomes: Vec<(u32, bool)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        match p.verdict(s.target) {
            Verdict::Straddle => {
                if i + 1 == probes.len() {
                    return Next::Probe {
                        concurrency: p.concurrency,
                        attempt: 2,
                    };
                }
            }
            v => outcomes.push((p.concurrency, v == Verdict::Pass)),
        }
    }
    let lowest_fail = outcomes.iter().filter(|o| !o.1).map(|o| o.0).min();
    let best = outcomes
        .iter()
        .filter(|o| o.1 && lowest_fail.is_none_or(|f| o.0 < f))
        .map(|o| o.0)
        .max();
    let done = |reason| {
        Next::Done(Answer {
            best,
            lowest_failing: lowest_fail,
            reason,
        })
    };
    let probe = |c: u32| Next::Probe {
        concurrency: c,
        attempt: 1,
    };
    if outcomes.is_empty() {
        return probe(1);
    }
    if probes.len() as u32 >= s.max_probes {
        return done("max_probes");
    }
    match (best, lowest_fail) {
        (None, Some(_)) => done("unmet_at_minimum"),
        (Some(b), None) if b >= s.max_concurrency => done("max_concurrency_reached"),
        (Some(b), None) => probe(b.saturating_mul(2).min(s.max_concurrency)),
        (Some(b), Some(f)) => {
            let gap = f.saturating_sub(b) as f64;
            if gap <= (s.tolerance * b as f64).max(1.0) {
                done("converged")
            } else {
                probe(b + (f - b) / 2)
            }
        }
        (None, None) => probe(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Search = Search {
        target: 0.9,
        tolerance: 0.1,
        max_concurrency: 64,
        max_probes: 20,
    };

    /// Run the search against a server whose attainment is `f(concurrency)` of 100.
    fn search(f: impl Fn(u32, u32) -> u64) -> (Vec<Probe>, Answer) {
        let mut probes = Vec::new();
        loop {
            match next(&S, &probes) {
                Next::Probe {
                    concurrency,
                    attempt,
                } => probes.push(Probe {
                    concurrency,
                    attempt,
                    good: f(concurrency, attempt) * attempt as u64,
                    total: 100 * attempt as u64,
                }),
                Next::Done(a) => return (probes, a),
            }
        }
    }

    #[test]
    fn doubles_then_bisects_to_the_boundary() {
        let (probes, a) = search(|c, _| if c <= 11 { 100 } else { 10 });
        let cs: Vec<u32> = probes.iter().map(|p| p.concurrency).collect();
        assert_eq!(cs, vec![1, 2, 4, 8, 16, 12, 10, 11]);
        assert_eq!(a.best, Some(11));
        assert_eq!(a.lowest_failing, Some(12));
        assert_eq!(a.reason, "converged");
    }

    #[test]
    fn straddling_probes_are_rerun_then_unresolved() {
        // 90 of 100 straddles a 0.9 target; so does 180 of 200.
        let (probes, a) = search(|c, _| if c < 4 { 100 } else { 90 });
        assert_eq!(probes[2].concurrency, 4);
        assert_eq!((probes[3].concurrency, probes[3].attempt), (4, 2));
        assert_eq!(probes[3].verdict(0.9), Verdict::Unresolved);
        assert_eq!(a.best, Some(3));
        assert_eq!(a.lowest_failing, Some(4));
    }

    #[test]
    fn edges() {
        let (_, a) = search(|_, _| 0);
        assert_eq!((a.best, a.reason), (None, "unmet_at_minimum"));
        let (probes, a) = search(|_, _| 100);
        assert_eq!(probes.last().unwrap().concurrency, 64);
        assert_eq!((a.best, a.reason), (Some(64), "max_concurrency_reached"));
    }
}
