//! A sweep point run N times (`sweep --repeat N`): one [`Point`] whose figures are the
//! means across its repeats, each with its 95% Student-t interval, so the knee, the
//! curves and the error bars all read means.

use std::collections::BTreeMap;

use super::{CONFIDENCE, Point, Z, wilson};
use crate::metrics::interval;
use crate::schema::Metadata;

/// The figures that become a mean across repeats, by their key in [`Point`].
const MEANS: [&str; 7] = [
    "achieved_rate",
    "output_tokens_per_sec",
    "per_user_tokens_per_sec",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p99_ms",
    "goodput_requests_per_sec",
];

fn get(p: &Point, key: &str) -> Option<f64> {
    match key {
        "achieved_rate" => Some(p.achieved_rate),
        "output_tokens_per_sec" => Some(p.output_tokens_per_sec),
        "per_user_tokens_per_sec" => p.per_user_tokens_per_sec,
        "ttft_p50_ms" => p.ttft_p50_ms,
        "ttft_p99_ms" => p.ttft_p99_ms,
        "tpot_p99_ms" => p.tpot_p99_ms,
        "goodput_requests_per_sec" => p.goodput_requests_per_sec,
        _ => None,
    }
}

fn set(p: &mut Point, key: &str, v: f64) {
    match key {
        "achieved_rate" => p.achieved_rate = v,
        "output_tokens_per_sec" => p.output_tokens_per_sec = v,
        "per_user_tokens_per_sec" => p.per_user_tokens_per_sec = Some(v),
        "ttft_p50_ms" => p.ttft_p50_ms = Some(v),
        "ttft_p99_ms" => p.ttft_p99_ms = Some(v),
        "tpot_p99_ms" => p.tpot_p99_ms = Some(v),
        "goodput_requests_per_sec" => p.goodput_requests_per_sec = Some(v),
        _ => {}
    }
}

impl Point {
    /// The point of a sweep index run as several repeats (in repeat order). The figures
    /// are the mean over the repeats that finished with a success (a repeat without one
    /// has no comparable figures), each with its t-interval in `intervals`; a figure some
    /// of them lack is taken from the last repeat alone, without an interval. The counts
    /// are summed, and the attainment is pooled over all their requests (its Wilson
    /// interval too). An interval's lower end is at least 0 (no figure is negative). One
    /// repeat: the point as [`Point::of`] makes it.
    pub fn of_repeats(runs: &[&Metadata]) -> Option<Point> {
        let all: Vec<Point> = runs.iter().filter_map(|m| Point::of(m)).collect();
        if all.len() <= 1 {
            return all.into_iter().next();
        }
        let used: Vec<&Point> = all.iter().filter(|p| p.success_count > 0).collect();
        let mut out = all.last().cloned().expect("two or more");
        out.repeats = Some(all.len() as u32);
        out.repeat_test_ids = all.iter().map(|p| p.test_id.clone()).collect();
        out.success_count = all
            .iter()
            .map(|p| p.success_count)
            .fold(0, u64::saturating_add);
        out.failure_count = all
            .iter()
            .map(|p| p.failure_count)
            .fold(0, u64::saturating_add);
        out.intervals = BTreeMap::new();
        if used.is_empty() {
            return Some(out);
        }
        for key in MEANS {
            let vals: Vec<f64> = used.iter().filter_map(|p| get(p, key)).collect();
            if vals.len() != used.len() {
                continue;
            }
            let Some(ci) = interval::mean_t_ci(&vals, CONFIDENCE) else {
                continue;
            };
            set(&mut out, key, ci.mean);
            // every figure here is a rate or a latency: no interval reaches below 0
            if let (Some(lo), Some(hi)) = (ci.lo, ci.hi) {
                out.intervals.insert(key.to_string(), [lo.max(0.0), hi]);
            }
        }
        out.achieved_ratio = out.offered_rate.map(|o| out.achieved_rate / o);
        if all.iter().all(|p| p.good_requests.is_some()) {
            let good: u64 = all
                .iter()
                .filter_map(|p| p.good_requests)
                .fold(0, u64::saturating_add);
            // each repeat's own denominator, recovered from its attainment
            let attempted: u64 = all
                .iter()
                .map(|p| match (p.attainment, p.good_requests) {
                    (Some(a), Some(g)) if a > 0.0 => (g as f64 / a).round() as u64,
                    _ => p.success_count.saturating_add(p.failure_count),
                })
                .fold(0, u64::saturating_add);
            out.good_requests = Some(good);
            if attempted > 0 {
                let (lo, hi) = wilson(good, attempted, Z);
                out.attainment = Some(good as f64 / attempted as f64);
                out.attainment_low = Some(lo);
                out.attainment_high = Some(hi);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Metadata, SweepLink};

    fn run(id: &str, tok_s: f64, req_s: f64) -> Metadata {
        let mut m = Metadata::new(
            crate::schema::SourceKind::Run,
            "benchkeep",
            "vllm",
            "m",
            chrono::Utc::now(),
        );
        m.test_id = id.into();
        m.status = crate::schema::Status::Completed;
        m.results.output_tokens_per_sec = tok_s;
        m.results.throughput_requests_per_sec = req_s;
        m.results.success_count = 10;
        m.results.failure_count = 0;
        m.sweep = Some(Box::new(SweepLink {
            id: "s".into(),
            index: 2,
            axis: "concurrency".into(),
            value: 4.0,
            role: "point".into(),
            settings: Default::default(),
            shard: None,
            extra: Default::default(),
        }));
        m
    }

    #[test]
    fn repeats_become_a_mean_with_a_t_interval() {
        let a = run("a", 100.0, 10.0);
        let b = run("b", 110.0, 11.0);
        let c = run("c", 120.0, 12.0);
        let p = Point::of_repeats(&[&a, &b, &c]).expect("a point");
        assert_eq!(p.repeats, Some(3));
        assert_eq!(p.repeat_test_ids, vec!["a", "b", "c"]);
        assert_eq!(p.test_id, "c");
        assert!((p.output_tokens_per_sec - 110.0).abs() < 1e-9);
        assert!((p.achieved_rate - 11.0).abs() < 1e-9);
        assert_eq!(p.success_count, 30);
        // a wide spread: the interval stops at 0
        let z = run("z", 1.0, 0.1);
        let wide = Point::of_repeats(&[&a, &z]).expect("a point");
        assert_eq!(wide.intervals["output_tokens_per_sec"][0], 0.0);
        // sd 10, t(0.975, 2) = 4.302653: half-width 4.302653 * 10 / sqrt(3) = 24.841
        let [lo, hi] = p.intervals["output_tokens_per_sec"];
        assert!((lo - (110.0 - 24.8414)).abs() < 1e-3, "{lo}");
        assert!((hi - (110.0 + 24.8414)).abs() < 1e-3, "{hi}");
        // per-user tok/s (no TPOT: tok/s / concurrency) is a mean too
        assert!((p.per_user_tokens_per_sec.unwrap() - 27.5).abs() < 1e-9);
        // one repeat: the plain point, no interval
        let one = Point::of_repeats(&[&a]).expect("a point");
        assert_eq!(one, Point::of(&a).unwrap());
        assert!(one.intervals.is_empty() && one.repeats.is_none());
    }

    #[test]
    fn a_repeat_without_success_is_left_out_of_the_means() {
        let a = run("a", 100.0, 10.0);
        let mut b = run("b", 0.0, 0.0);
        b.results.success_count = 0;
        b.results.failure_count = 10;
        let c = run("c", 120.0, 12.0);
        let p = Point::of_repeats(&[&a, &b, &c]).expect("a point");
        assert!((p.output_tokens_per_sec - 110.0).abs() < 1e-9);
        assert_eq!((p.success_count, p.failure_count), (20, 10));
        assert_eq!(p.repeats, Some(3));
    }
}
