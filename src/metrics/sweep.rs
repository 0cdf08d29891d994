//! Sweep analysis over stored points: achieved/offered ratios, the knee of throughput
//! against load, SLO attainment with its Wilson interval, and max goodput. Pure functions
//! over [`Point`]s read from metadata, so they work on any stored sweep (made by `sweep`,
//! or imported from another tool).

mod knee;
mod repeats;

use std::collections::BTreeMap;

use serde::Serialize;

pub use knee::{Knee, METHOD as KNEE_METHOD, knee};

use crate::schema::{Metadata, Status};

/// The normal quantile of the attainment intervals (95% confidence).
pub const CONFIDENCE: f64 = 0.95;
/// [`CONFIDENCE`] as a normal quantile.
pub const Z: f64 = 1.959964;
/// The attainment target when the sweep does not record one (`sweep.target`).
pub const DEFAULT_TARGET: f64 = 0.95;

/// The Wilson score interval of `k` successes in `n` trials at normal quantile `z`
/// (1.96 for 95%): `(low, high)`, both in `[0, 1]`. `n == 0` gives `(0, 1)` (nothing known).
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = k.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One point of a sweep, as its metadata says.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub test_id: String,
    pub index: u32,
    pub role: String,
    pub status: String,
    /// The load on the sweep's axis (`sweep.value`).
    pub load: f64,
    /// Offered rate (req/s) of a rate point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<f64>,
    /// Successful requests per second.
    pub achieved_rate: f64,
    /// achieved / offered, for a rate point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_ratio: Option<f64>,
    pub output_tokens_per_sec: f64,
    /// Output tok/s one user sees while decoding: 1000 / mean TPOT (ms); without a TPOT,
    /// output tok/s / concurrency on a concurrency axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_user_tokens_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot_p99_ms: Option<f64>,
    pub success_count: u64,
    pub failure_count: u64,
    /// Requests that met every SLO (points run with `--slo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub good_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_requests_per_sec: Option<f64>,
    /// good / (successes + failures), with its Wilson interval at [`CONFIDENCE`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attainment: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attainment_low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attainment_high: Option<f64>,
    /// The SLOs (ms) the point was measured against.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub slo_ms: BTreeMap<String, f64>,
    /// A point run N times (`sweep --repeat N`): the repeats its figures are the mean of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// The test ids of those repeats, by repeat index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeat_test_ids: Vec<String>,
    /// The 95% Student-t interval across repeats of each figure that is a mean, by the
    /// figure's key (`output_tokens_per_sec`, `ttft_p99_ms`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, [f64; 2]>,
}

impl Point {
    /// The point a run is, or `None` when the run is no point of a sweep.
    pub fn of(m: &Metadata) -> Option<Point> {
        let link = m.sweep.as_ref()?;
        let r = &m.results;
        let lat = r.latency_ms.as_ref();
        let rate_axis = link.axis == "rate";
        let offered = rate_axis.then_some(link.value).filter(|v| *v > 0.0);
        // The goodput's own denominator: requests judged against the SLOs (undetermined
        // ones, lacking a figure an SLO needs, are left out); older runs: every request.
        let attempted = r
            .goodput
            .as_ref()
            .and_then(|g| g.denominator_requests)
            .unwrap_or(r.success_count + r.failure_count);
        let good = r.goodput.as_ref().map(|g| g.good_requests);
        let (low, high) = match good {
            Some(k) if attempted > 0 => {
                let (lo, hi) = wilson(k, attempted, Z);
                (Some(lo), Some(hi))
            }
            _ => (None, None),
        };
        let tpot_mean = lat
            .and_then(|l| l.tpot.as_ref())
            .map(|t| t.mean)
            .filter(|t| *t > 0.0);
        let per_user = match tpot_mean {
            Some(t) => Some(1000.0 / t),
            None if link.axis == "concurrency" && link.value > 0.0 => {
                Some(r.output_tokens_per_sec / link.value)
            }
            None => None,
        };
        Some(Point {
            test_id: m.test_id.clone(),
            index: link.index,
            role: link.role.clone(),
            status: m.status.as_str().to_string(),
            load: link.value,
            offered_rate: offered,
            achieved_rate: r.throughput_requests_per_sec,
            achieved_ratio: offered.map(|o| r.throughput_requests_per_sec / o),
            output_tokens_per_sec: r.output_tokens_per_sec,
            per_user_tokens_per_sec: per_user,
            ttft_p50_ms: lat.and_then(|l| l.ttft.as_ref()).map(|t| t.p50),
            ttft_p99_ms: lat.and_then(|l| l.ttft.as_ref()).map(|t| t.p99),
            tpot_p99_ms: lat.and_then(|l| l.tpot.as_ref()).map(|t| t.p99),
            success_count: r.success_count,
            failure_count: r.failure_count,
            good_requests: good,
            goodput_requests_per_sec: r.goodput.as_ref().map(|g| g.requests_per_sec),
            attainment: good
                .filter(|_| attempted > 0)
                .map(|k| k as f64 / attempted as f64),
            attainment_low: low,
            attainment_high: high,
            slo_ms: r
                .goodput
                .as_ref()
                .map(|g| g.slo_ms.clone())
                .unwrap_or_default(),
            repeats: None,
            repeat_test_ids: Vec::new(),
            intervals: BTreeMap::new(),
        })
        .filter(|_| m.status != Status::Running)
    }

    /// Whether the point belongs on the load curve: finished, something succeeded, and
    /// not the `synchronous`/`throughput` anchors of a rate sweep (their load is no rate).
    pub fn on_curve(&self, axis: &str) -> bool {
        self.success_count > 0
            && self.load.is_finite()
            && !(axis == "rate" && matches!(self.role.as_str(), "synchronous" | "throughput"))
    }
}

/// The conclusion on max goodput under the SLO from the stored probes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MaxGoodput {
    /// `found`, `none_pass` (no probe's interval lies above the target) or `no_slo` (no
    /// point was measured against an SLO).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub slo_ms: BTreeMap<String, f64>,
    /// The attainment target (fraction of requests meeting every SLO).
    pub target: f64,
    pub confidence: f64,
    /// The largest load whose attainment interval lies above the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_load: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_requests_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
    /// Loads whose interval lies above the target.
    pub passing: Vec<f64>,
    /// Loads whose interval lies below the target.
    pub failing: Vec<f64>,
    /// Loads whose interval contains the target: not resolved either way.
    pub unresolved: Vec<f64>,
}

/// Max goodput from the probes (points with an attainment): the largest load whose
/// Wilson interval lies entirely above `target`; straddling probes are listed unresolved.
pub fn max_goodput(points: &[Point], target: f64) -> MaxGoodput {
    let probes: Vec<&Point> = points.iter().filter(|p| p.attainment.is_some()).collect();
    let mut out = MaxGoodput {
        status: "no_slo",
        reason: None,
        slo_ms: probes.first().map(|p| p.slo_ms.clone()).unwrap_or_default(),
        target,
        confidence: CONFIDENCE,
        max_load: None,
        goodput_requests_per_sec: None,
        output_tokens_per_sec: None,
        test_id: None,
        passing: Vec::new(),
        failing: Vec::new(),
        unresolved: Vec::new(),
    };
    if probes.is_empty() {
        out.reason = Some("no point was run with --slo".into());
        return out;
    }
    let mut best: Option<&Point> = None;
    for p in &probes {
        let (lo, hi) = (
            p.attainment_low.unwrap_or(0.0),
            p.attainment_high.unwrap_or(1.0),
        );
        if lo > target {
            out.passing.push(p.load);
            if best.is_none_or(|b| p.load > b.load) {
                best = Some(p);
            }
        } else if hi < target {
            out.failing.push(p.load);
        } else {
            out.unresolved.push(p.load);
        }
    }
    for v in [&mut out.passing, &mut out.failing, &mut out.unresolved] {
        v.sort_by(f64::total_cmp);
    }
    match best {
        Some(b) => {
            out.status = "found";
            out.max_load = Some(b.load);
            out.goodput_requests_per_sec = b.goodput_requests_per_sec;
            out.output_tokens_per_sec = Some(b.output_tokens_per_sec);
            out.test_id = Some(b.test_id.clone());
        }
        None => {
            out.status = "none_pass";
            out.reason = Some(format!(
                "no probe's {:.0}% attainment interval lies above the {:.1}% target",
                CONFIDENCE * 100.0,
                target * 100.0
            ));
        }
    }
    out
}

/// A sweep's conclusions from its points.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Analysis {
    pub axis: String,
    /// By load, then index.
    pub points: Vec<Point>,
    pub knee: Knee,
    pub max_goodput: MaxGoodput,
}

/// Analyse a sweep's points (any order) on `axis` against an attainment `target`.
pub fn analyze(axis: &str, mut points: Vec<Point>, target: f64) -> Analysis {
    points.sort_by(|a, b| a.load.total_cmp(&b.load).then(a.index.cmp(&b.index)));
    let knee = if axis == "matrix" {
        Knee::none_for("a matrix's points differ in settings, not in load")
    } else {
        let curve: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.on_curve(axis))
            .map(|p| (p.load, p.output_tokens_per_sec))
            .collect();
        knee(&curve)
    };
    let max_goodput = max_goodput(&points, target);
    Analysis {
        axis: axis.to_string(),
        points,
        knee,
        max_goodput,
    }
}

/// The largest load on the curve whose TTFT p99 is within `limit_ms`.
pub fn within_ttft_p99(a: &Analysis, limit_ms: f64) -> Option<&Point> {
    a.points
        .iter()
        .filter(|p| p.on_curve(&a.axis) && p.ttft_p99_ms.is_some_and(|t| t <= limit_ms))
        .max_by(|x, y| x.load.total_cmp(&y.load))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 81 of 263 at 95%: (0.2553, 0.3662) (Wilson 1927, as tabulated by Newcombe 1998).
        let (lo, hi) = wilson(81, 263, 1.959964);
        assert!((lo - 0.2553).abs() < 5e-4, "{lo}");
        assert!((hi - 0.3662).abs() < 5e-4, "{hi}");
        assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
        let (lo, hi) = wilson(10, 10, 1.96);
        assert!(lo > 0.69 && lo < 0.73 && hi == 1.0, "{lo} {hi}");
    }

    fn probe(load: f64, good: u64, n: u64) -> Point {
        let (lo, hi) = wilson(good, n, Z);
        Point {
            test_id: format!("t{load}"),
            index: load as u32,
            role: "goodput".into(),
            status: "completed".into(),
            load,
            offered_rate: None,
            achieved_rate: load,
            achieved_ratio: None,
            output_tokens_per_sec: 100.0 * load,
            per_user_tokens_per_sec: None,
            ttft_p50_ms: None,
            ttft_p99_ms: Some(100.0 * load),
            tpot_p99_ms: None,
            success_count: n,
            failure_count: 0,
            good_requests: Some(good),
            goodput_requests_per_sec: Some(good as f64 / 10.0),
            attainment: Some(good as f64 / n as f64),
            attainment_low: Some(lo),
            attainment_high: Some(hi),
            slo_ms: BTreeMap::from([("ttft".to_string(), 1000.0)]),
            repeats: None,
            repeat_test_ids: Vec::new(),
            intervals: BTreeMap::new(),
        }
    }

    #[test]
    fn max_goodput_is_the_largest_resolved_pass() {
        // 1, 2, 4 pass clearly; 8 straddles 95% (190/200 = 95%); 16 fails.
        let pts = vec![
            probe(1.0, 1000, 1000),
            probe(2.0, 995, 1000),
            probe(4.0, 990, 1000),
            probe(8.0, 190, 200),
            probe(16.0, 500, 1000),
        ];
        let g = max_goodput(&pts, 0.95);
        assert_eq!(g.status, "found");
        assert_eq!(g.max_load, Some(4.0));
        assert_eq!(g.goodput_requests_per_sec, Some(99.0));
        assert_eq!(g.passing, vec![1.0, 2.0, 4.0]);
        assert_eq!(g.unresolved, vec![8.0]);
        assert_eq!(g.failing, vec![16.0]);
        // Only straddling probes: nothing found, the reason says why.
        let g = max_goodput(&[probe(8.0, 19, 20)], 0.95);
        assert_eq!(g.status, "none_pass");
        assert_eq!(g.unresolved, vec![8.0]);
        let mut none = probe(1.0, 1, 1);
        none.attainment = None;
        assert_eq!(max_goodput(&[none], 0.95).status, "no_slo");
    }

    #[test]
    fn within_ttft_takes_the_largest_load_under_the_limit() {
        let a = analyze(
            "concurrency",
            (1..=6).map(|c| probe(c as f64, 10, 10)).collect(),
            0.95,
        );
        assert_eq!(within_ttft_p99(&a, 450.0).map(|p| p.load), Some(4.0));
        assert!(within_ttft_p99(&a, 50.0).is_none());
        assert_eq!(a.knee.status, "no_knee");
    }
}
