//! Known answers for the interval statistics, and the coverage of the percentile interval
//! checked by simulation.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, LogNormal};

use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn t_quantiles_match_published_tables() {
    // two-sided 95 % critical values (t_{0.975, df}), to the tables' 6 decimals
    for (df, want) in [
        (1, 12.706205),
        (2, 4.302653),
        (3, 3.182446),
        (4, 2.776445),
        (9, 2.262157),
        (29, 2.045230),
        (100, 1.983972),
    ] {
        let got = t_quantile(0.975, df);
        assert!(close(got, want, 2e-6), "df {df}: {got} vs {want}");
    }
    assert!(close(t_quantile(0.95, 5), 2.015048, 2e-6));
    assert!(close(t_two_sided_cdf(0.0, 7), 0.0, 1e-15));
    assert!(close(t_two_sided_cdf(1e9, 6), 1.0, 1e-9));
}

#[test]
fn normal_quantiles_match_published_values() {
    assert!(close(normal_quantile(0.975), 1.959964, 1e-6));
    assert!(close(normal_quantile(0.995), 2.575829, 1e-6));
    assert!(close(normal_quantile(0.5), 0.0, 1e-6));
    assert!(close(normal_cdf(1.0), 0.841345, 1e-6));
}

#[test]
fn exact_binomial_ranks_match_known_answers() {
    // the textbook median interval for n = 10 is [x(2), x(9)] (coverage 97.9 %)
    assert_eq!(quantile_ranks(10, 0.5, LEVEL), (Some(2), Some(9)));
    assert_eq!(quantile_ranks(100, 0.5, LEVEL), (Some(40), Some(61)));
    assert_eq!(quantile_ranks(100, 0.9, LEVEL), (Some(84), Some(96)));
    assert_eq!(quantile_ranks(1000, 0.5, LEVEL), (Some(469), Some(532)));
    assert_eq!(quantile_ranks(1000, 0.99, LEVEL), (Some(983), Some(997)));
    // too few values: p99 of 100 has no upper bound, the median of 5 neither side
    assert_eq!(quantile_ranks(100, 0.99, LEVEL), (Some(97), None));
    assert_eq!(quantile_ranks(20, 0.9, LEVEL), (Some(15), None));
    assert_eq!(quantile_ranks(35, 0.9, LEVEL).1, None);
    assert!(quantile_ranks(36, 0.9, LEVEL).1.is_some());
    assert_eq!(quantile_ranks(6, 0.5, LEVEL), (Some(1), Some(6)));
    assert_eq!(quantile_ranks(5, 0.5, LEVEL), (None, None));
    assert_eq!(quantile_ranks(0, 0.5, LEVEL), (None, None));
    // p99's upper bound needs 1 - 0.99^n >= 0.975: n >= 368
    assert_eq!(quantile_ranks(367, 0.99, LEVEL).1, None);
    assert!(quantile_ranks(368, 0.99, LEVEL).1.is_some());
}

#[test]
fn normal_approximation_continues_the_exact_ranks() {
    // just past the exact range the approximation lands within a rank of the exact answer
    let (lo, hi) = quantile_ranks(1001, 0.5, LEVEL);
    let (elo, ehi) = exact_ranks(1001, 0.5, (1.0 - LEVEL) / 2.0);
    assert!(lo.unwrap().abs_diff(elo.unwrap()) <= 1, "{lo:?} vs {elo:?}");
    assert!(hi.unwrap().abs_diff(ehi.unwrap()) <= 1, "{hi:?} vs {ehi:?}");
    let (lo, hi) = quantile_ranks(1_000_000, 0.99, LEVEL);
    // n p = 990,000, sd = 99.5: 990000 -+ 1.96 * 99.5 (+ 0.5)
    assert_eq!((lo, hi), (Some(989_805), Some(990_196)));
}

#[test]
fn interval_reads_the_order_statistics() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(quantile_ci(&v, 0.5, LEVEL), [Some(2.0), Some(9.0)]);
    assert_eq!(quantile_ci(&v, 0.99, LEVEL), [Some(9.0), None]);
    let by_rank = quantile_ci_by_rank(10, 0.5, LEVEL, |r| r as f64 * 10.0);
    assert_eq!(by_rank, [Some(20.0), Some(90.0)]);
}

#[test]
fn t_interval_of_fixed_data() {
    let ci = mean_t_ci(&[1.0, 2.0, 3.0, 4.0, 5.0], LEVEL).unwrap();
    assert_eq!(ci.n, 5);
    assert!(close(ci.mean, 3.0, 1e-12));
    assert!(close(ci.sd, 1.581139, 1e-6));
    // 3 -+ 2.776445 * 1.581139 / sqrt(5)
    assert!(close(ci.lo.unwrap(), 1.036757, 1e-6), "{ci:?}");
    assert!(close(ci.hi.unwrap(), 4.963243, 1e-6), "{ci:?}");
    let one = mean_t_ci(&[7.0], LEVEL).unwrap();
    assert_eq!((one.mean, one.lo, one.hi), (7.0, None, None));
    assert!(mean_t_ci(&[], LEVEL).is_none());
    assert!(mean_t_ci(&[1.0, f64::NAN], LEVEL).is_none());
    let same = mean_t_ci(&[4.0, 4.0, 4.0], LEVEL).unwrap();
    assert_eq!((same.lo, same.hi), (Some(4.0), Some(4.0)));
}

/// How often the 95 % interval of the median covers the true median in 1,000 seeded
/// synthetic runs of `n` lognormal values.
fn median_coverage(n: usize, seed: u64) -> usize {
    let (mu, sigma) = (5.3f64, 0.4f64); // median e^5.3 = 200.3 ms
    let truth = mu.exp();
    let dist = LogNormal::new(mu, sigma).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut covered = 0;
    for _ in 0..1000 {
        let mut v: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        let [lo, hi] = quantile_ci(&v, 0.5, LEVEL);
        if lo.unwrap() <= truth && truth <= hi.unwrap() {
            covered += 1;
        }
    }
    covered
}

#[test]
fn the_median_interval_covers_the_true_median_95_percent_of_the_time() {
    // exact ranks (n = 500, coverage by construction 95.2 %) and the normal approximation
    // (n = 5,000)
    for (n, seed) in [(500, 1), (5000, 2)] {
        let c = median_coverage(n, seed);
        assert!((930..=970).contains(&c), "n {n}: covered {c} of 1000");
    }
}

#[test]
fn the_p90_interval_covers_the_true_p90() {
    let (mu, sigma) = (5.3f64, 0.4f64);
    let truth = (mu + sigma * normal_quantile(0.9)).exp();
    let dist = LogNormal::new(mu, sigma).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let covered = (0..1000)
        .filter(|_| {
            let mut v: Vec<f64> = (0..2000).map(|_| dist.sample(&mut rng)).collect();
            v.sort_by(f64::total_cmp);
            let [lo, hi] = quantile_ci(&v, 0.9, LEVEL);
            lo.unwrap() <= truth && truth <= hi.unwrap()
        })
        .count();
    assert!((930..=970).contains(&covered), "covered {covered} of 1000");
}
