//! The throughput interval from batch means: the steady-state window cut into equal
//! batches, the output tok/s of each, and Student's t over their mean.
//!
//! The batch count is chosen against autocorrelation: a batch lasts at least the median
//! request (E2E), so a request's tokens fall into one or two batches and neighbouring
//! batches share little; at least [`MIN_COMPLETIONS_PER_BATCH`] completions per batch on
//! average; at most [`MAX_BATCHES`]; fewer than [`MIN_BATCHES`] possible is "not enough
//! data", never a made-up interval.

use super::Point;
use crate::schema::{ThroughputCi, round};

/// Fewest batches for an interval.
pub const MIN_BATCHES: usize = 5;
/// Most batches (more adds little to the t quantile and shortens each batch).
pub const MAX_BATCHES: usize = 30;
/// Completions a batch holds on average, at least.
pub const MIN_COMPLETIONS_PER_BATCH: u64 = 5;

/// Student's t quantile at 0.975 (a two-sided 95 % interval) for `df` degrees of freedom,
/// from the standard table (df 1 to 30; the normal 1.96 past it).
pub fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96,
    }
}

/// The batch count the window allows (see the module's rules); under [`MIN_BATCHES`]
/// means no interval.
fn batch_count(duration_s: f64, completed: u64, median_e2e_s: f64) -> usize {
    let by_count = (completed / MIN_COMPLETIONS_PER_BATCH) as usize;
    let by_length = if median_e2e_s > 0.0 {
        (duration_s / median_e2e_s).floor().min(MAX_BATCHES as f64) as usize
    } else {
        MAX_BATCHES
    };
    by_count.min(by_length).min(MAX_BATCHES)
}

/// The interval over `[a, b)`, or why there is none.
pub(super) fn interval(
    points: &[Point],
    a: f64,
    b: f64,
    completed: u64,
    median_e2e_s: f64,
) -> Result<ThroughputCi, String> {
    let duration = b - a;
    let k = batch_count(duration, completed, median_e2e_s);
    if k < MIN_BATCHES {
        return Err(format!(
            "not enough data: the {duration:.3} s window holds {completed} completions and a request lasts {median_e2e_s:.3} s (median); batch means need {MIN_BATCHES} batches, each at least one request long with {MIN_COMPLETIONS_PER_BATCH} completions"
        ));
    }
    let width = duration / k as f64;
    let mut tokens = vec![0.0f64; k];
    for p in points {
        if !p.ok || p.tokens == 0 || p.end < a || p.start >= b {
            continue;
        }
        // Only the batches the request's tokens can fall in.
        let from = (((p.start - a) / width).floor().max(0.0) as usize).min(k - 1);
        let to = (((p.end - a) / width).floor().max(0.0) as usize).min(k - 1);
        for (i, t) in tokens.iter_mut().enumerate().take(to + 1).skip(from) {
            let lo = a + i as f64 * width;
            let hi = if i + 1 == k { b } else { lo + width };
            *t += p.tokens_in(lo, hi);
        }
    }
    let means: Vec<f64> = tokens.iter().map(|t| t / width).collect();
    let n = k as f64;
    let mean = means.iter().sum::<f64>() / n;
    let var = means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    let half = t_975(k - 1) * sd / n.sqrt();
    let lag1 = (var > 0.0).then(|| {
        let num: f64 = means
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum();
        num / (var * (n - 1.0))
    });
    Ok(ThroughputCi {
        method: "batch_means".into(),
        level: 0.95,
        mean: round(mean, 2),
        low: round(mean - half, 2),
        high: round(mean + half, 2),
        batches: k as u32,
        batch_s: round(width, 3),
        std_dev: round(sd, 2),
        lag1_autocorrelation: lag1.map(|r| round(r, 3)),
    })
}
