//! Sweep analysis over stored points: achieved/offered ratios, the knee of throughput
//! against load, SLO attainment with its Wilson interval, and max goodput. Pure functions
//! over [`Point`]s read from metadata, so they work on any stored sweep (made by `sweep`,
//! or imported from another tool).

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

#[cfg(test)]
mod tests {
    use super::wilson;

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
}
