//! Confidence intervals: distribution-free order-statistic intervals for percentiles of
//! per-request latencies, and Student-t intervals for a mean across repeats.
//!
//! The reasoning behind each method is in `docs/intervals.md`.

use crate::schema::Bounds;

/// The confidence level benchkeep stores and shows.
pub const LEVEL: f64 = 0.95;

/// Up to this many values the ranks come from the exact binomial distribution; above, from
/// its normal approximation (with continuity correction).
pub const EXACT_BINOMIAL_MAX: u64 = 1000;

/// The 1-based ranks `(lo, hi)` of the order statistics that bound the `p`-quantile
/// (0 < p < 1) of a sample of `n` values with confidence at least `level`: with
/// B ~ binomial(n, p), P(lo <= B < hi) >= level, each tail at most (1 - level) / 2.
/// A side is `None` when no rank within 1..=n bounds it (too few values).
pub fn quantile_ranks(n: u64, p: f64, level: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 || !(0.0..1.0).contains(&p) || p == 0.0 {
        return (None, None);
    }
    let tail = (1.0 - level) / 2.0;
    if n <= EXACT_BINOMIAL_MAX {
        exact_ranks(n, p, tail)
    } else {
        let nf = n as f64;
        let z = normal_quantile(1.0 - tail);
        let sd = (nf * p * (1.0 - p)).sqrt();
        // P(B <= lo - 1) <= tail  and  P(B <= hi - 1) >= 1 - tail, with B ~ N(np, sd^2)
        // and a continuity correction of one half.
        let lo = (nf * p - z * sd + 0.5).floor();
        let hi = (nf * p + z * sd + 0.5).ceil();
        let lo = (lo >= 1.0).then_some(lo as u64);
        let hi = (hi <= nf).then_some(hi as u64);
        (lo, hi)
    }
}

/// Exact binomial ranks: the cumulative distribution summed in log space (no underflow for
/// p = 0.99 and n = 1000).
fn exact_ranks(n: u64, p: f64, tail: f64) -> (Option<u64>, Option<u64>) {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_choose = 0.0f64; // ln C(n, 0)
    let mut cdf = 0.0f64;
    let (mut lo, mut hi) = (None, None);
    for k in 0..=n {
        if k > 0 {
            ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        cdf += (ln_choose + k as f64 * lp + (n - k) as f64 * lq).exp();
        // cdf = P(B <= k): rank k + 1 is a lower bound while P(B <= k) <= tail
        if cdf <= tail {
            lo = Some(k + 1);
        }
        if cdf >= 1.0 - tail {
            hi = Some(k + 1).filter(|&r| r <= n);
            break;
        }
    }
    (lo, hi)
}

/// The interval of the `p`-quantile of `sorted` values (ascending) at `level`.
pub fn quantile_ci(sorted: &[f64], p: f64, level: f64) -> Bounds {
    let (lo, hi) = quantile_ranks(sorted.len() as u64, p, level);
    [
        lo.map(|r| sorted[(r - 1) as usize]),
        hi.map(|r| sorted[(r - 1) as usize]),
    ]
}

/// The same interval read from a value-at-rank function (the HDR histogram's), for `n`
/// values in all.
pub fn quantile_ci_by_rank(n: u64, p: f64, level: f64, at_rank: impl Fn(u64) -> f64) -> Bounds {
    let (lo, hi) = quantile_ranks(n, p, level);
    [lo.map(&at_rank), hi.map(&at_rank)]
}

/// A mean with its two-sided Student-t interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); 0 for one value.
    pub sd: f64,
    /// `None` for fewer than two values (no spread to measure).
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// Mean and `level` t-interval of `values` (`None` when empty or not all finite).
pub fn mean_t_ci(values: &[f64], level: f64) -> Option<MeanCi> {
    let n = values.len();
    if n == 0 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(MeanCi {
            n,
            mean,
            sd: 0.0,
            lo: None,
            hi: None,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let half = t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as u64) * sd / (n as f64).sqrt();
    Some(MeanCi {
        n,
        mean,
        sd,
        lo: Some(mean - half),
        hi: Some(mean + half),
    })
}

/// P(|T| <= t) for Student's t with `df` degrees of freedom (Abramowitz and Stegun
/// 26.7.3 and 26.7.4: exact finite series for integer degrees of freedom).
pub fn t_two_sided_cdf(t: f64, df: u64) -> f64 {
    let t = t.abs();
    if df == 0 {
        return f64::NAN;
    }
    let theta = (t / (df as f64).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    if df % 2 == 1 {
        // (2/pi) [theta + sin(theta) (cos + 2/3 cos^3 + ... + (2*4..(df-3))/(1*3..(df-2)) cos^(df-2))]
        let mut sum = 0.0;
        if df > 1 {
            let mut term = c;
            sum = term;
            let mut k = 1;
            while 2 * k + 1 < df {
                term *= c2 * (2 * k) as f64 / (2 * k + 1) as f64;
                sum += term;
                k += 1;
            }
        }
        (2.0 / std::f64::consts::PI) * (theta + s * sum)
    } else {
        // sin(theta) [1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ... + (1*3..(df-3))/(2*4..(df-2)) cos^(df-2)]
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1;
        while 2 * k < df {
            term *= c2 * (2 * k - 1) as f64 / (2 * k) as f64;
            sum += term;
            k += 1;
        }
        s * sum
    }
}

/// The `q`-quantile (0.5 < q < 1) of Student's t with `df` degrees of freedom, by
/// bisection on [`t_two_sided_cdf`] (to 1e-12).
pub fn t_quantile(q: f64, df: u64) -> f64 {
    let target = 2.0 * q - 1.0; // P(|T| <= t)
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while t_two_sided_cdf(hi, df) < target {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_cdf(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The `q`-quantile (0 < q < 1) of the standard normal distribution, by bisection on
/// [`normal_cdf`].
pub fn normal_quantile(q: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal distribution function, from the complementary error function of
/// Numerical Recipes (`erfcc`, fractional error under 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests;
