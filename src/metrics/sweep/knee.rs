//! The knee of output tok/s against load: a two-segment least-squares fit with GuideLLM's
//! acceptance rules, or "no knee" with the reason.

use serde::Serialize;

/// The method named in every knee result.
pub const METHOD: &str = "two-segment least squares (GuideLLM's acceptance rules)";
/// Distinct loads needed for a fit.
pub const MIN_POINTS: usize = 5;
/// Largest tail slope as a fraction of the first slope.
pub const MAX_SLOPE_RATIO: f64 = 0.25;
/// Smallest improvement of the two-segment fit over one line (1 - sse2 / sse1).
pub const MIN_IMPROVEMENT: f64 = 0.5;
/// Smallest throughput at the break as a fraction of the peak.
pub const MIN_PEAK_FRACTION: f64 = 0.85;

/// The knee, or why there is none. Loads and throughputs in the data's own units.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Knee {
    /// `ok` or `no_knee`.
    pub status: &'static str,
    pub method: &'static str,
    /// Why there is no knee (`None` when there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The load where the two fitted lines cross (clamped to the points either side of
    /// the break).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knee: Option<f64>,
    /// The first measured load at or above the knee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturation_load: Option<f64>,
    /// The measured load the segments split at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakpoint_load: Option<f64>,
    /// Throughput (output tok/s) measured at the saturation load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturation_output_tokens_per_sec: Option<f64>,
    /// Slopes of the two segments on data scaled to [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail_slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope_ratio: Option<f64>,
    /// 1 - (two-segment squared error / one-line squared error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_improvement: Option<f64>,
    /// Throughput at the break / the peak throughput.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_fraction: Option<f64>,
}

impl Knee {
    fn none(reason: impl Into<String>) -> Knee {
        Knee {
            status: "no_knee",
            method: METHOD,
            reason: Some(reason.into()),
            knee: None,
            saturation_load: None,
            breakpoint_load: None,
            saturation_output_tokens_per_sec: None,
            pre_slope: None,
            tail_slope: None,
            slope_ratio: None,
            fit_improvement: None,
            throughput_fraction: None,
        }
    }

    /// No knee, for a reason found outside the fit (a matrix has no load axis).
    pub fn none_for(reason: &str) -> Knee {
        Knee::none(reason)
    }

    pub fn found(&self) -> bool {
        self.status == "ok"
    }
}

/// Ordinary least squares over `xs, ys`: (slope, intercept, sum of squared errors).
fn ols(xs: &[f64], ys: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let icpt = my - slope * mx;
    let sse = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - (slope * x + icpt)).powi(2))
        .sum();
    (slope, icpt, sse)
}

/// The knee of `(load, output tok/s)` points. Repeated loads are averaged first; at least
/// [`MIN_POINTS`] distinct loads are needed. Both axes are scaled to [0, 1]; every break
/// `i` from 2 to n-2 (n-1 when n is 5) splits the points into `[0..=i]` and `[i..n)`, each
/// fitted by least squares; a break is kept when the first slope is > 0, tail/first
/// <= [`MAX_SLOPE_RATIO`], the fit improves on one line by >= [`MIN_IMPROVEMENT`] and the
/// throughput at the break is >= [`MIN_PEAK_FRACTION`] of the peak; the kept break with
/// the smallest squared error wins.
pub fn knee(points: &[(f64, f64)]) -> Knee {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut avg: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    while i < pts.len() {
        let x = pts[i].0;
        let same: Vec<f64> = pts[i..]
            .iter()
            .take_while(|p| p.0 == x)
            .map(|p| p.1)
            .collect();
        i += same.len();
        avg.push((x, same.iter().sum::<f64>() / same.len() as f64));
    }
    let n = avg.len();
    if n < MIN_POINTS {
        return Knee::none(format!(
            "too few loads: {n} distinct, a fit needs at least {MIN_POINTS}"
        ));
    }
    let (x0, x1) = (avg[0].0, avg[n - 1].0);
    let (y0, y1) = avg
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if y1 - y0 <= f64::EPSILON * y1.abs().max(1.0) {
        return Knee::none("flat: throughput does not change with load");
    }
    let xs: Vec<f64> = avg.iter().map(|p| (p.0 - x0) / (x1 - x0)).collect();
    let ys: Vec<f64> = avg.iter().map(|p| (p.1 - y0) / (y1 - y0)).collect();
    let (_, _, sse1) = ols(&xs, &ys);
    if sse1 < 1e-12 {
        return Knee::none("linear: one straight line fits every point");
    }
    let last = if n == MIN_POINTS { n - 1 } else { n - 2 };
    let mut best: Option<(f64, usize, [f64; 4])> = None;
    let mut why = Vec::new();
    for b in 2..=last {
        let (m1, c1, e1) = ols(&xs[..=b], &ys[..=b]);
        let (m2, c2, e2) = if n - b >= 2 {
            ols(&xs[b..], &ys[b..])
        } else {
            (0.0, ys[b], 0.0)
        };
        let improvement = 1.0 - (e1 + e2) / sse1;
        let fraction = avg[b].1 / y1;
        if m1 <= 0.0 {
            why.push("the first segment does not rise");
            continue;
        }
        if m2 / m1 > MAX_SLOPE_RATIO {
            why.push("the tail still rises (tail/first slope above 0.25)");
            continue;
        }
        if improvement < MIN_IMPROVEMENT {
            why.push("two segments fit less than 50% better than one line");
            continue;
        }
        if fraction < MIN_PEAK_FRACTION {
            why.push("throughput at the break is below 85% of the peak");
            continue;
        }
        let sse = e1 + e2;
        if best.as_ref().is_none_or(|(s, _, _)| sse < *s) {
            best = Some((sse, b, [m1, c1, m2, c2]));
        }
    }
    let Some((sse, b, [m1, c1, m2, c2])) = best else {
        why.sort_unstable();
        why.dedup();
        return Knee::none(format!("no break passes: {}", why.join("; ")));
    };
    let cross = if (m1 - m2).abs() > 0.0 {
        (c2 - c1) / (m1 - m2)
    } else {
        xs[b]
    };
    let cross = cross.clamp(xs[b - 1], xs[(b + 1).min(n - 1)]);
    let knee_x = x0 + cross * (x1 - x0);
    let sat = avg
        .iter()
        .find(|p| p.0 >= knee_x - 1e-9 * knee_x.abs().max(1.0));
    Knee {
        status: "ok",
        method: METHOD,
        reason: None,
        knee: Some(knee_x),
        saturation_load: sat.map(|p| p.0),
        breakpoint_load: Some(avg[b].0),
        saturation_output_tokens_per_sec: sat.map(|p| p.1),
        pre_slope: Some(m1),
        tail_slope: Some(m2),
        slope_ratio: Some(m2 / m1),
        fit_improvement: Some(1.0 - sse / sse1),
        throughput_fraction: Some(avg[b].1 / y1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rises 100 tok/s per user up to 16 users, then flat at 1600.
    fn two_segment(noise: &[f64]) -> Vec<(f64, f64)> {
        [1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0]
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let y = 100.0 * f64::min(c, 16.0);
                (c, y * (1.0 + noise.get(i).copied().unwrap_or(0.0)))
            })
            .collect()
    }

    #[test]
    fn linear_data_gives_no_knee() {
        let lin: Vec<(f64, f64)> = (1..=10).map(|c| (c as f64, 50.0 * c as f64)).collect();
        let k = knee(&lin);
        assert_eq!(k.status, "no_knee");
        assert!(k.reason.as_deref().unwrap().starts_with("linear"), "{k:?}");
        // Linear with noise: a fit exists but the tail still rises.
        let noisy: Vec<(f64, f64)> = lin
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| (x, y * if i % 2 == 0 { 1.02 } else { 0.98 }))
            .collect();
        let k = knee(&noisy);
        assert_eq!(k.status, "no_knee", "{k:?}");
        assert!(k.reason.unwrap().contains("tail still rises"));
    }

    #[test]
    fn clean_two_segments_give_the_break() {
        let k = knee(&two_segment(&[]));
        assert!(k.found(), "{k:?}");
        let at = k.knee.unwrap();
        assert!((at - 16.0).abs() < 1.0, "{at}");
        assert_eq!(k.saturation_load, Some(16.0));
        assert_eq!(k.saturation_output_tokens_per_sec, Some(1600.0));
        assert!(k.slope_ratio.unwrap().abs() < 1e-9);
    }

    #[test]
    fn noisy_data_within_tolerance() {
        let noise = [
            0.03, -0.02, 0.025, -0.03, 0.01, -0.015, 0.03, -0.025, 0.02, -0.01,
        ];
        let k = knee(&two_segment(&noise));
        assert!(k.found(), "{k:?}");
        let at = k.knee.unwrap();
        // Within the neighbouring measured loads of the true break.
        assert!((12.0..=24.0).contains(&at), "{at}");
        assert!(k.fit_improvement.unwrap() >= 0.5);
    }

    #[test]
    fn too_few_and_flat() {
        let k = knee(&[(1.0, 1.0), (2.0, 2.0), (2.0, 2.2), (4.0, 3.0)]);
        assert!(k.reason.unwrap().contains("3 distinct"));
        let flat: Vec<(f64, f64)> = (1..=6).map(|c| (c as f64, 7.0)).collect();
        assert!(knee(&flat).reason.unwrap().starts_with("flat"));
    }
}
