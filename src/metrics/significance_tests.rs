//! Known answers for `metrics::significance`: every reference value was computed once
//! with scipy 1.17.1 (numpy 2) in a venv; the Python is in the comment above each check.

use super::*;

fn close(a: f64, b: f64, rel: f64) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1e-300),
        "{a} vs {b} (relative {rel})"
    );
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn normal_tail_matches_scipy() {
    // stats.norm.sf(1.0), sf(5.0), sf(12.0), sf(-0.5)
    close(normal_sf(1.0), 0.15865525393145707, 1e-12);
    close(normal_sf(5.0), 2.866515718791933e-07, 1e-10);
    close(normal_sf(12.0), 1.776482112077653e-33, 1e-9);
    close(normal_sf(-0.5), 0.6914624612740131, 1e-12);
}

#[test]
fn student_t_matches_scipy() {
    // 2 * stats.t.sf(2.5, 3); 2 * stats.t.sf(40.0, 12.5)
    close(t_two_sided(2.5, 3.0), 0.08770664700806556, 1e-10);
    close(t_two_sided(40.0, 12.5), 1.429153296371695e-14, 1e-8);
    // stats.t.ppf(0.975, 4); stats.t.ppf(0.975, 7.3)
    close(t95(4.0), 2.7764451051977934, 1e-9);
    close(t95(7.3), 2.345066736547703, 1e-9);
}

#[test]
fn mann_whitney_with_ties_matches_scipy() {
    // x = [1.1,2.2,2.2,3.5,4.0,4.0,4.0,5.1,6.3,7.7]
    // y = [2.2,3.9,4.0,5.5,6.1,6.1,7.0,8.2,9.4,9.9,10.5]
    // stats.mannwhitneyu(x, y, method="asymptotic") -> U 25.5, p 0.04015633818235363
    let x = vec![1.1, 2.2, 2.2, 3.5, 4.0, 4.0, 4.0, 5.1, 6.3, 7.7];
    let y = vec![2.2, 3.9, 4.0, 5.5, 6.1, 6.1, 7.0, 8.2, 9.4, 9.9, 10.5];
    let (u, p) = mann_whitney(&x, &y).unwrap();
    assert_eq!(u, 25.5);
    close(p, 0.04015633818235363, 1e-9);
    // Symmetric: the p-value does not depend on the order of the samples.
    let (u2, p2) = mann_whitney(&y, &x).unwrap();
    assert_eq!(u2, 110.0 - 25.5);
    close(p2, p, 1e-12);
}

#[test]
fn mann_whitney_larger_samples_match_scipy() {
    // x = [(i*37 % 101)/10 for i in range(300)]; y = [(i*53 % 97)/10 + 0.8 for i in range(280)]
    // stats.mannwhitneyu(x, y, method="asymptotic") -> U 37109.0, p 0.01530328199889549
    let x = sorted((0..300).map(|i| (i * 37 % 101) as f64 / 10.0).collect());
    let y = sorted(
        (0..280)
            .map(|i| (i * 53 % 97) as f64 / 10.0 + 0.8)
            .collect(),
    );
    let (u, p) = mann_whitney(&x, &y).unwrap();
    assert_eq!(u, 37109.0);
    close(p, 0.01530328199889549, 1e-8);
    // Identical samples: no evidence at all.
    let (_, p) = mann_whitney(&x, &x).unwrap();
    assert!(p > 0.99, "{p}");
    assert!(mann_whitney(&x, &[]).is_none());
}

#[test]
fn welch_matches_scipy() {
    // a = [10,11,12,13,14.5]; b = [12,13.5,15,16,17.5,18]
    // r = stats.ttest_ind(b, a, equal_var=False): t 2.636103162213424,
    // p 0.027222579887142016, df 8.944957496819427;
    // r.confidence_interval(0.95): (0.456061605497299, 6.01060506116937)
    let a = [10.0, 11.0, 12.0, 13.0, 14.5];
    let b = [12.0, 13.5, 15.0, 16.0, 17.5, 18.0];
    let t = welch(&a, &b).unwrap();
    close(t.statistic, 2.636103162213424, 1e-12);
    close(t.p, 0.027222579887142016, 1e-8);
    close(t.lo, 0.456061605497299, 1e-8);
    close(t.hi, 6.01060506116937, 1e-8);
    close(t.effect, 15.333333333333334 - 12.1, 1e-12);
    assert!(welch(&a[..1], &b).is_none());
    // Two constant samples that differ are certainly different; equal ones are not.
    assert_eq!(welch(&[1.0, 1.0], &[2.0, 2.0]).unwrap().p, 0.0);
    assert_eq!(welch(&[1.0, 1.0], &[1.0, 1.0]).unwrap().p, 1.0);
}

#[test]
fn prediction_matches_a_t_distribution() {
    // h = [100,102,98,101,99]; x = 90; t = (x - mean) / (std(ddof=1) * sqrt(1 + 1/5))
    // -> t -5.773502691896258, p = 2*stats.t.sf(|t|, 4) = 0.004468575556053281,
    // half-width stats.t.ppf(0.975, 4) * s * sqrt(1.2) = 4.808943986628495
    let t = prediction(&[100.0, 102.0, 98.0, 101.0, 99.0], 90.0).unwrap();
    close(t.statistic, -5.773502691896258, 1e-12);
    close(t.p, 0.004468575556053281, 1e-8);
    close(t.effect, -10.0, 1e-12);
    close(t.hi - t.effect, 4.808943986628495, 1e-8);
    assert!(prediction(&[100.0], 90.0).is_none());
}

#[test]
fn proportions_match_the_pooled_z_test() {
    // 95/100 vs 80/100: p = 175/200; z = (0.80 - 0.95) / sqrt(p(1-p)(2/100))
    // -> z -3.2071349029490905, p = 2*stats.norm.sf(|z|) = 0.0013406411172294875
    let t = proportions(95, 100, 80, 100).unwrap();
    close(t.statistic, -3.2071349029490905, 1e-12);
    close(t.p, 0.0013406411172294875, 1e-9);
    close(t.effect, -15.0, 1e-12);
    assert!(t.lo < -15.0 && t.hi > -15.0 && t.hi < 0.0);
    assert_eq!(proportions(100, 100, 100, 100).unwrap().p, 1.0);
}

#[test]
fn quantile_shift_interval_covers_a_known_shift() {
    // 1..=1000 against 1..=1000 shifted by 50: the median moves by exactly 50, and the
    // order-statistic standard error of a median of 1000 evenly spaced values is about
    // sqrt(1000)/2 = 15.8 ranks -> 15.8 (values are ranks here).
    let base: Vec<f64> = (1..=1000).map(f64::from).collect();
    let cand: Vec<f64> = base.iter().map(|v| v + 50.0).collect();
    let t = quantile_shift(&base, &cand, 0.5).unwrap();
    close(t.effect, 50.0, 1e-12);
    let se = quantile_se(&base, 0.5);
    assert!((15.0..17.0).contains(&se), "{se}");
    assert!(t.lo > 0.0 && t.lo < 50.0 && t.hi > 50.0, "{t:?}");
    assert!(t.p < 0.05, "{t:?}");
    // No shift: p = 1.
    assert_eq!(quantile_shift(&base, &base, 0.99).unwrap().p, 1.0);
}

#[test]
fn batch_rates_of_a_steady_stream() {
    // One completion of 10 tokens every 0.1 s: 100 tok/s in every batch.
    let mut pts: Vec<(f64, f64)> = (0..101).rev().map(|i| (i as f64 * 0.1, 10.0)).collect();
    let rates = batch_rates(&mut pts, 10);
    assert_eq!(rates.len(), 10);
    for r in rates {
        close(r, 100.0, 1e-9);
    }
    assert!(batch_rates(&mut pts[..5], 10).is_empty());
}

#[test]
fn reservoir_is_uniform_bounded_and_repeatable() {
    let mut a = Reservoir::new(1000);
    let mut b = Reservoir::new(1000);
    for i in 0..100_000 {
        a.push(i as f64);
        b.push(i as f64);
    }
    assert_eq!(a.values.len(), 1000);
    assert_eq!(a.values, b.values);
    assert!(a.sampled());
    // A uniform sample of 0..100000 has a mean near 50000 (sd of the mean ~ 913).
    let mean = a.values.iter().sum::<f64>() / 1000.0;
    assert!((45_000.0..55_000.0).contains(&mean), "{mean}");
    let mut small = Reservoir::new(10);
    small.push(1.0);
    small.push(f64::NAN);
    assert_eq!(small.values, vec![1.0]);
    assert!(!small.sampled());
}
