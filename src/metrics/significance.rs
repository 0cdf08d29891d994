//! Significance tests for regression gating: Mann-Whitney U and a distribution-free
//! interval of a quantile difference for per-request latencies, Welch's t-test for batch
//! means or repeats, a t prediction test of one run against its history, and a
//! two-proportion test for success rates. Pure functions on numbers; see docs/gating.md.

/// The two-sided 97.5 % point of the standard normal (95 % intervals).
pub const Z95: f64 = 1.959_963_984_540_054;

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(π x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lead = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * lead
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        lead * h
    }
}

/// P(Z > z) for a standard normal Z, accurate in the far tail.
pub fn normal_sf(z: f64) -> f64 {
    // erfc(t) = Q(1/2, t^2) for t >= 0.
    let t = z / std::f64::consts::SQRT_2;
    if t >= 0.0 {
        0.5 * gamma_q(0.5, t * t)
    } else {
        1.0 - 0.5 * gamma_q(0.5, t * t)
    }
}

/// The regularized incomplete beta function I_x(a, b).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(b, a, 1.0 - x);
    }
    // Continued fraction (modified Lentz).
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * h / a
}

/// Two-sided p-value of Student's t with `df` degrees of freedom.
pub fn t_two_sided(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    inc_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// The two-sided 95 % point of Student's t with `df` degrees of freedom (bisection).
pub fn t95(df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided(mid, df) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A test's outcome: the estimated change (candidate minus baseline), its 95 % interval,
/// the test statistic and the two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub effect: f64,
    pub lo: f64,
    pub hi: f64,
    pub statistic: f64,
    pub p: f64,
}

/// The Mann-Whitney U test of two samples, both sorted ascending: `U` of `x`, and the
/// two-sided p-value by the normal approximation with tie and continuity correction
/// (scipy.stats.mannwhitneyu(x, y, method="asymptotic")). `None` when a side is empty.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // Walk both sorted samples at once; a group of equal values gets their mid-rank.
    let (mut i, mut j, mut pos) = (0usize, 0usize, 0f64);
    let (mut r1, mut ties) = (0f64, 0f64);
    while i < n1 || j < n2 {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => unreachable!(),
        };
        let (i0, j0) = (i, j);
        while i < n1 && x[i] == v {
            i += 1;
        }
        while j < n2 && y[j] == v {
            j += 1;
        }
        let (cx, t) = ((i - i0) as f64, (i - i0 + j - j0) as f64);
        r1 += cx * (pos + (t + 1.0) / 2.0);
        ties += t * t * t - t;
        pos += t;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let n = a + b;
    let u1 = r1 - a * (a + 1.0) / 2.0;
    let mu = a * b / 2.0;
    let var = a * b / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some((u1, 1.0));
    }
    let u = u1.max(a * b - u1);
    let z = (u - mu - 0.5) / var.sqrt();
    Some((u1, (2.0 * normal_sf(z)).min(1.0)))
}

/// The distribution-free standard error of the `q` quantile (0-1) of a sorted sample: the
/// half-width of the order-statistic 95 % interval (ranks nq +/- 1.96 sqrt(nq(1-q))),
/// divided by 1.96 (McKean and Schrader's estimate, for any q).
pub fn quantile_se(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len() as f64;
    let half = Z95 * (n * q * (1.0 - q)).sqrt();
    let rank = |r: f64| (r.round().clamp(1.0, n) as usize) - 1;
    let (lo, hi) = (sorted[rank(n * q - half)], sorted[rank(n * q + half + 1.0)]);
    (hi - lo) / (2.0 * Z95)
}

/// The change of the `q` quantile (0-1) from `base` to `cand` (both sorted), with a 95 %
/// interval and a z-test from the order-statistic standard errors of both quantiles.
pub fn quantile_shift(base: &[f64], cand: &[f64], q: f64) -> Option<Test> {
    if base.is_empty() || cand.is_empty() {
        return None;
    }
    let qb = super::percentile(base, q * 100.0);
    let qc = super::percentile(cand, q * 100.0);
    let se = quantile_se(base, q).hypot(quantile_se(cand, q));
    Some(z_test(qc - qb, se))
}

fn z_test(effect: f64, se: f64) -> Test {
    let (z, p) = if se > 0.0 {
        let z = effect / se;
        (z, (2.0 * normal_sf(z.abs())).min(1.0))
    } else if effect == 0.0 {
        (0.0, 1.0)
    } else {
        // Two constant samples that differ: the change is certain.
        (effect.signum() * f64::INFINITY, 0.0)
    };
    Test {
        effect,
        lo: effect - Z95 * se,
        hi: effect + Z95 * se,
        statistic: z,
        p,
    }
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Welch's t-test of mean(cand) - mean(base), with its 95 % interval
/// (scipy.stats.ttest_ind(cand, base, equal_var=False)). `None` below 2 values a side.
pub fn welch(base: &[f64], cand: &[f64]) -> Option<Test> {
    if base.len() < 2 || cand.len() < 2 {
        return None;
    }
    let (mb, vb) = mean_var(base);
    let (mc, vc) = mean_var(cand);
    let (sb, sc) = (vb / base.len() as f64, vc / cand.len() as f64);
    let effect = mc - mb;
    let se2 = sb + sc;
    if se2 <= 0.0 {
        return Some(z_test(effect, 0.0));
    }
    let df =
        se2 * se2 / (sb * sb / (base.len() as f64 - 1.0) + sc * sc / (cand.len() as f64 - 1.0));
    let (se, t) = (se2.sqrt(), effect / se2.sqrt());
    let half = t95(df) * se;
    Some(Test {
        effect,
        lo: effect - half,
        hi: effect + half,
        statistic: t,
        p: t_two_sided(t, df),
    })
}

/// One new value against its history (Bencher's t-test threshold model): how far `value`
/// lies from the history's mean in units of the prediction standard error
/// s * sqrt(1 + 1/n), Student's t with n - 1 degrees of freedom. `None` below 2 values.
pub fn prediction(history: &[f64], value: f64) -> Option<Test> {
    if history.len() < 2 {
        return None;
    }
    let n = history.len() as f64;
    let (mean, var) = mean_var(history);
    let effect = value - mean;
    let se = (var * (1.0 + 1.0 / n)).sqrt();
    if se <= 0.0 {
        return Some(z_test(effect, 0.0));
    }
    let t = effect / se;
    let half = t95(n - 1.0) * se;
    Some(Test {
        effect,
        lo: effect - half,
        hi: effect + half,
        statistic: t,
        p: t_two_sided(t, n - 1.0),
    })
}

/// The two-proportion z-test of a success rate in percent (pooled variance for the
/// p-value, unpooled for the interval of the difference in percentage points).
pub fn proportions(ok_base: u64, n_base: u64, ok_cand: u64, n_cand: u64) -> Option<Test> {
    if n_base == 0 || n_cand == 0 {
        return None;
    }
    let (nb, nc) = (n_base as f64, n_cand as f64);
    let (pb, pc) = (ok_base as f64 / nb, ok_cand as f64 / nc);
    let pooled = (ok_base + ok_cand) as f64 / (nb + nc);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / nb + 1.0 / nc)).sqrt();
    let se = (pb * (1.0 - pb) / nb + pc * (1.0 - pc) / nc).sqrt();
    let effect = pc - pb;
    let mut t = z_test(effect, se0);
    t.lo = (effect - Z95 * se) * 100.0;
    t.hi = (effect + Z95 * se) * 100.0;
    t.effect = effect * 100.0;
    Some(t)
}

/// Output rates over equal-count batches of completions: `points` are (completion time s,
/// amount) pairs; `k` batches of the completions after the first one, each batch's rate
/// its amount over the time from the previous batch's last completion to its own last one.
/// Batches of zero duration are left out.
// TODO(lead): use metrics::steady once merged
pub fn batch_rates(points: &mut [(f64, f64)], k: usize) -> Vec<f64> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if k == 0 || points.len() < k + 1 {
        return Vec::new();
    }
    let m = (points.len() - 1) / k;
    (0..k)
        .filter_map(|i| {
            let (start, end) = (i * m, (i + 1) * m);
            let dt = points[end].0 - points[start].0;
            let amount: f64 = points[start + 1..=end].iter().map(|p| p.1).sum();
            (dt > 0.0).then(|| amount / dt)
        })
        .collect()
}

/// A uniform sample of at most `cap` values of a stream (reservoir sampling, algorithm R)
/// with a fixed seed: the same stream always gives the same sample.
#[derive(Debug, Clone)]
pub struct Reservoir {
    pub values: Vec<f64>,
    pub seen: u64,
    cap: usize,
    state: u64,
}

impl Reservoir {
    pub fn new(cap: usize) -> Self {
        Reservoir {
            values: Vec::new(),
            seen: 0,
            cap: cap.max(1),
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.seen += 1;
        if self.values.len() < self.cap {
            self.values.push(v);
        } else {
            let j = self.next() % self.seen;
            if (j as usize) < self.cap {
                self.values[j as usize] = v;
            }
        }
    }

    /// Whether some values were dropped.
    pub fn sampled(&self) -> bool {
        self.seen > self.values.len() as u64
    }
}

#[cfg(test)]
#[path = "significance_tests.rs"]
mod tests;
