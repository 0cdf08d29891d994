//! Latency samples with bounded memory: exact up to a cap, then an HDR histogram.
//!
//! Exact samples give numpy-compatible percentiles (linear interpolation between ranks),
//! comparable with `vllm bench serve`. Past [`EXACT_CAP`] values (a million-request run's
//! inter-token latencies), samples move into a histogram with 3 significant digits
//! (0.1 % relative error) so memory stays bounded whatever the run length.

use hdrhistogram::Histogram;

use super::interval;
use crate::schema::{Bounds, CiMethod, LatencySummary, PercentileCi};

/// Values kept exactly before switching to the histogram (16 MB of f64).
pub const EXACT_CAP: usize = 2_000_000;

/// Histogram unit: values are stored in microseconds.
const SCALE: f64 = 1000.0;

/// A set of latency values in milliseconds.
#[derive(Debug, Default)]
pub struct Samples {
    exact: Vec<f64>,
    hist: Option<Histogram<u64>>,
    count: u64,
    sum: f64,
    max: f64,
}

impl Samples {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one value (negative or non-finite values are ignored).
    pub fn push(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        self.count += 1;
        self.sum += v;
        if v > self.max {
            self.max = v;
        }
        match &mut self.hist {
            Some(h) => record(h, v),
            None => {
                self.exact.push(v);
                if self.exact.len() > EXACT_CAP {
                    let mut h = Histogram::<u64>::new(3).expect("valid histogram precision");
                    h.auto(true);
                    for &x in &self.exact {
                        record(&mut h, x);
                    }
                    self.exact = Vec::new();
                    self.hist = Some(h);
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether percentiles are exact (false once the histogram took over).
    pub fn is_exact(&self) -> bool {
        self.hist.is_none()
    }

    /// Mean, p50/p90/p95/p99 and max, or `None` when there are no values.
    pub fn summary(mut self) -> Option<LatencySummary> {
        if self.count == 0 {
            return None;
        }
        let q = |s: &mut Self, p: f64| -> f64 {
            match &s.hist {
                Some(h) => h.value_at_quantile(p / 100.0) as f64 / SCALE,
                None => percentile(&s.exact, p),
            }
        };
        if self.hist.is_none() {
            self.exact.sort_by(|a, b| a.total_cmp(b));
        }
        let r3 = |x: f64| super::round(x, 3);
        let ci = self.ci();
        Some(LatencySummary {
            count: self.count,
            mean: r3(self.sum / self.count as f64),
            p50: r3(q(&mut self, 50.0)),
            p90: r3(q(&mut self, 90.0)),
            p95: r3(q(&mut self, 95.0)),
            p99: r3(q(&mut self, 99.0)),
            max: r3(self.max),
            ci: Some(Box::new(ci)),
        })
    }

    /// The 95 % order-statistic intervals of p50/p90/p95/p99 (values already sorted when
    /// exact), rounded to the microsecond like the percentiles.
    fn ci(&self) -> PercentileCi {
        let n = self.count;
        let level = interval::LEVEL;
        let one = |p: f64| -> Bounds {
            let b = match &self.hist {
                Some(h) => interval::quantile_ci_by_rank(n, p, level, |rank| {
                    h.value_at_quantile(rank as f64 / n as f64) as f64 / SCALE
                }),
                None => interval::quantile_ci(&self.exact, p, level),
            };
            b.map(|x| x.map(|v| super::round(v, 3)))
        };
        PercentileCi {
            level,
            method: if self.hist.is_some() {
                CiMethod::OrderStatisticHdr
            } else {
                CiMethod::OrderStatistic
            },
            p50: one(0.50),
            p90: one(0.90),
            p95: one(0.95),
            p99: one(0.99),
        }
    }
}

fn record(h: &mut Histogram<u64>, v: f64) {
    // auto-resize is on, so this cannot fail for finite non-negative values
    let _ = h.record((v * SCALE).round() as u64);
}

/// The `p`-th percentile (0-100) of sorted values, interpolating linearly between ranks
/// as numpy's default method does. Empty input gives 0.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            let (a, b, t) = (sorted[lo], sorted[hi], rank - lo as f64);
            // numpy's lerp: from the nearer end, so results match numpy bit for bit
            if t >= 0.5 {
                b - (b - a) * (1.0 - t)
            } else {
                a + (b - a) * t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_linear_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        // Expected values are numpy 2.4's own output, bit for bit.
        assert_eq!(percentile(&v, 90.0), 7.6000000000000005);
        assert_eq!(percentile(&[0.1, 0.2, 0.7], 25.0), 0.15000000000000002);
        assert_eq!(percentile(&[0.1, 0.2, 0.7], 75.0), 0.44999999999999996);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn histogram_takes_over_past_the_cap_with_small_error() {
        let mut s = Samples::new();
        let n = EXACT_CAP + 1000;
        for i in 0..n {
            s.push((i % 1000) as f64 / 10.0); // 0.0 .. 99.9 ms, uniform
        }
        assert!(!s.is_exact());
        let sum = s.summary().unwrap();
        assert_eq!(sum.count, n as u64);
        assert!((sum.p50 - 50.0).abs() < 0.2, "{}", sum.p50);
        assert!((sum.p99 - 99.0).abs() < 0.3, "{}", sum.p99);
        assert_eq!(sum.max, 99.9);
        let ci = sum.ci.clone().unwrap();
        assert_eq!(ci.method, CiMethod::OrderStatisticHdr);
        let [lo, hi] = ci.p50;
        assert!(lo.unwrap() <= sum.p50 && sum.p50 <= hi.unwrap(), "{ci:?}");
    }

    #[test]
    fn exact_summary_carries_order_statistic_intervals() {
        let mut s = Samples::new();
        for i in 1..=100 {
            s.push(f64::from(i));
        }
        let sum = s.summary().unwrap();
        let ci = sum.ci.clone().unwrap();
        assert_eq!((ci.level, ci.method), (0.95, CiMethod::OrderStatistic));
        // ranks 40 and 61 of 1..=100 (binomial(100, 0.5)); p99 has no upper bound at n = 100
        assert_eq!(ci.p50, [Some(40.0), Some(61.0)]);
        assert_eq!(ci.p99, [Some(97.0), None]);
        let json = serde_json::to_value(sum).unwrap();
        assert_eq!(json["ci"]["p99"], serde_json::json!([97.0, null]));
        assert_eq!(json["ci"]["method"], "order-statistic");
    }
}
