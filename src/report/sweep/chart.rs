//! The sweep charts: per like-for-like group, output tok/s against load (knee marked),
//! TTFT p50/p99 against output tok/s, and per-user tok/s against total tok/s (the Pareto
//! view); one line per platform, SVG via plotters like every other chart.

use anyhow::Result;

use super::{CHART_PREFIX, SweepGroup, Sweeps, curve, load_unit};
use crate::metrics::sweep::Point;
use crate::report::charts::{self, ErrorBars, Line, LinePanel, XAxis};

fn panel(title: &str, x: &str, y: &str, lines: Vec<Line>) -> LinePanel {
    LinePanel {
        title: title.into(),
        x_desc: x.into(),
        y_desc: y.into(),
        x_axis: XAxis::Number,
        lines,
        markers: true,
        y_range: None,
        error_bars: Vec::new(),
    }
}

/// Draw one chart per group: (group index, file name, SVG or why not).
pub fn draw(s: &Sweeps, color: &dyn Fn(&str) -> usize) -> Vec<(usize, String, Result<String>)> {
    s.groups
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            let file = format!("{CHART_PREFIX}{}.svg", g.slug);
            (gi, file, group_chart(s, g, color))
        })
        .collect()
}

fn group_chart(s: &Sweeps, g: &SweepGroup, color: &dyn Fn(&str) -> usize) -> Result<String> {
    let unit = load_unit(&g.axis);
    let mut out_lines = Vec::new();
    let mut p50_lines = Vec::new();
    let mut p99_lines = Vec::new();
    let mut pareto = Vec::new();
    // error bars of points run with --repeat: (panel, colour, (x, lo, hi))
    let mut whiskers: [Vec<ErrorBars>; 4] = Default::default();
    let mut repeats = 0u32;
    for &i in &g.members {
        let v = &s.views[i];
        let a = &v.analysis;
        let p = v.runs.platform.as_str();
        let c = color(p);
        let throughput = curve(a, |pt| Some(pt.output_tokens_per_sec));
        if let (Some(knee), Some(top)) = (
            a.knee.knee,
            throughput
                .iter()
                .map(|t| t.1)
                .fold(None, |m: Option<f64>, y| Some(m.map_or(y, |m| m.max(y)))),
        ) {
            // The knee: a vertical line in the platform's colour.
            out_lines.push(Line {
                label: format!("{p} knee ({} {unit})", super::num(knee)),
                color: c,
                points: vec![(knee, 0.0), (knee, top)],
            });
        }
        out_lines.push(Line {
            label: p.to_string(),
            color: c,
            points: throughput,
        });
        let on: Vec<&Point> = a.points.iter().filter(|pt| pt.on_curve(&a.axis)).collect();
        repeats = repeats.max(on.iter().filter_map(|pt| pt.repeats).max().unwrap_or(0));
        let bars = |key: &str, x: fn(&Point) -> f64| ErrorBars {
            color: c,
            bars: on
                .iter()
                .filter_map(|pt| pt.intervals.get(key).map(|[lo, hi]| (x(pt), *lo, *hi)))
                .collect(),
        };
        whiskers[0].push(bars("output_tokens_per_sec", |pt| pt.load));
        whiskers[1].push(bars("ttft_p50_ms", |pt| pt.output_tokens_per_sec));
        whiskers[2].push(bars("ttft_p99_ms", |pt| pt.output_tokens_per_sec));
        whiskers[3].push(bars("per_user_tokens_per_sec", |pt| {
            pt.output_tokens_per_sec
        }));
        let by_tps = |pick: fn(&Point) -> Option<f64>| {
            let mut pts: Vec<(f64, f64)> = a
                .points
                .iter()
                .filter(|pt| pt.on_curve(&a.axis))
                .filter_map(|pt| Some((pt.output_tokens_per_sec, pick(pt)?)))
                .collect();
            pts.sort_by(|x, y| x.0.total_cmp(&y.0));
            pts
        };
        p50_lines.push(Line {
            label: p.to_string(),
            color: c,
            points: by_tps(|pt| pt.ttft_p50_ms),
        });
        p99_lines.push(Line {
            label: p.to_string(),
            color: c,
            points: by_tps(|pt| pt.ttft_p99_ms),
        });
        pareto.push(Line {
            label: p.to_string(),
            color: c,
            points: by_tps(|pt| pt.per_user_tokens_per_sec),
        });
    }
    // Points run N times are means: say so in the titles the error bars are on.
    let first_title = if repeats > 1 {
        format!("Output tok/s by load (knee marked; 95% CI, {repeats} repeats)")
    } else {
        "Output tok/s against load (knee marked)".to_string()
    };
    let mut panels = vec![
        panel(
            &first_title,
            &format!("load ({unit})"),
            "output tok/s",
            out_lines,
        ),
        panel(
            "TTFT p50 against throughput",
            "output tok/s",
            "TTFT p50 (ms)",
            p50_lines,
        ),
        panel(
            "TTFT p99 against throughput",
            "output tok/s",
            "TTFT p99 (ms)",
            p99_lines,
        ),
        panel(
            "Per-user tok/s against total tok/s",
            "total output tok/s",
            "per-user tok/s",
            pareto,
        ),
    ];
    for (p, w) in panels.iter_mut().zip(whiskers) {
        p.error_bars = w.into_iter().filter(|e| !e.bars.is_empty()).collect();
    }
    charts::lines(&format!("Sweep: {}", g.title), &panels, 2, (520, 300))
}
