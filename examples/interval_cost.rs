//! What the percentile intervals add to the end of a run, for `scripts/bench_intervals.sh`:
//! for n latency values (seeded lognormal), the time of `Samples::summary` (sort, the
//! percentiles and their intervals) and of the interval part alone (ranks from the
//! binomial and the order statistics read, for p50/p90/p95/p99, on the sorted values).
//!
//! ```text
//! cargo run --release --example interval_cost -- 1000 100000 2000000
//! ```
//! Prints one JSON line per n: n, summary_ms, intervals_ms, added_percent (the interval
//! part over the summary without it). Best of 5 rounds each.

use std::time::Instant;

use benchkeep::metrics::Samples;
use benchkeep::metrics::interval::{LEVEL, quantile_ci};

/// A seeded lognormal value (Box-Muller over a SplitMix64 stream), median 200 ms.
fn values(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next().max(1e-300), next());
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            (5.3 + 0.4 * z).exp()
        })
        .collect()
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a count of values"))
        .collect();
    let ns = if ns.is_empty() {
        vec![1000, 100_000]
    } else {
        ns
    };
    for n in ns {
        let v = values(n);
        let (mut summary_s, mut ci_s) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            let mut s = Samples::new();
            for &x in &v {
                s.push(x);
            }
            let t = Instant::now();
            let sum = s.summary().expect("values");
            summary_s = summary_s.min(t.elapsed().as_secs_f64());
            assert!(sum.ci.is_some());

            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let t = Instant::now();
            let mut sink = 0.0;
            for p in [0.5, 0.9, 0.95, 0.99] {
                let [lo, hi] = quantile_ci(&sorted, p, LEVEL);
                sink += lo.unwrap_or(0.0) + hi.unwrap_or(0.0);
            }
            ci_s = ci_s.min(t.elapsed().as_secs_f64());
            std::hint::black_box(sink);
        }
        let added = 100.0 * ci_s / (summary_s - ci_s).max(1e-12);
        println!(
            "{{\"n\": {n}, \"summary_ms\": {:.3}, \"intervals_ms\": {:.4}, \"added_percent\": {added:.3}}}",
            summary_s * 1e3,
            ci_s * 1e3
        );
    }
}
