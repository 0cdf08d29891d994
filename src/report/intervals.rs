//! Intervals in the report: a percentile with its confidence interval as text
//! (`200.3 [199.8, 200.9]`), and the figures of `run --repeat N` groups (the mean and
//! Student-t interval across repeats), derived from the group's runs, as a table, a text
//! block and a bar chart with error bars.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Result;

use crate::metrics::interval::{self, MeanCi};
use crate::report::charts::{self, Bar, BarPanel};
use crate::report::markdown::escape;
use crate::schema::{Bounds, LatencySummary, Metadata};

/// The file of the repeat groups' chart in `charts/` (a tier-1 prefix).
pub const CHART_FILE: &str = "repeats.svg";
/// Groups drawn in the chart (the latest ones).
const CHART_MAX_GROUPS: usize = 12;

/// A value with its interval: `200.3 [199.8, 200.9]`; an unbounded side is `-`; no
/// interval at all gives the value alone.
pub fn with_bounds(value: f64, bounds: Option<Bounds>, decimals: usize) -> String {
    let side = |b: Option<f64>| match b {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_string(),
    };
    match bounds {
        Some([lo, hi]) => format!(
            "{value:.decimals$} [{}, {}]",
            side(lo),
            side(hi),
            decimals = decimals
        ),
        None => format!("{value:.decimals$}"),
    }
}

/// A named percentile of a summary with its interval (`p50` .. `p99`).
pub fn percentile(s: &LatencySummary, name: &str, decimals: usize) -> String {
    let v = match name {
        "p50" => s.p50,
        "p90" => s.p90,
        "p95" => s.p95,
        "p99" => s.p99,
        _ => return "-".into(),
    };
    with_bounds(v, s.ci.as_ref().and_then(|c| c.get(name)), decimals)
}

/// The block `show` prints under the latency table: each percentile with its interval,
/// `p50 200.3 ms [199.8, 200.9]` (nothing when no summary has intervals).
pub fn detail_block(l: &crate::schema::Latencies) -> String {
    let rows = [
        ("TTFT", &l.ttft),
        ("TPOT", &l.tpot),
        ("ITL", &l.itl),
        ("E2E", &l.e2e),
    ];
    let Some(ci) = rows
        .iter()
        .find_map(|(_, s)| s.as_ref().and_then(|s| s.ci.as_deref()))
    else {
        return String::new();
    };
    let mut out = format!(
        "\nLatency intervals ({:.0}% confidence, {}; `-`: too few requests to bound that side)\n",
        ci.level * 100.0,
        ci.method.as_str()
    );
    for (name, s) in rows {
        let Some(s) = s.as_ref().filter(|s| s.ci.is_some()) else {
            continue;
        };
        let cells: Vec<String> = ["p50", "p90", "p99"]
            .iter()
            .map(|p| {
                let d = if s.p50 >= 100.0 { 1 } else { 2 };
                format!("{p} {}", percentile(s, p, d).replacen(' ', " ms ", 1))
            })
            .collect();
        let _ = writeln!(out, "  {name:<5} {}", cells.join("   "));
    }
    out
}

/// One figure of a repeat group.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: &'static str,
    pub ci: MeanCi,
}

/// The runs of one `run --repeat N` group that finished with a success, and their
/// figures across repeats.
#[derive(Debug, Clone)]
pub struct RepeatGroup {
    pub group: String,
    pub platform: String,
    pub model: String,
    /// Planned repeats.
    pub count: u32,
    /// Indexes (into the runs) of the repeats used, by repeat index.
    pub runs: Vec<usize>,
    pub figures: Vec<Figure>,
}

type Pick = fn(&Metadata) -> Option<f64>;

fn lat(
    m: &Metadata,
    f: fn(&crate::schema::Latencies) -> Option<&LatencySummary>,
) -> Option<&LatencySummary> {
    m.results.latency_ms.as_deref().and_then(f)
}

/// The figures a group is summarised by: name, how to read it from a run.
pub const FIGURES: [(&str, Pick); 8] = [
    ("output tok/s", |m| Some(m.results.output_tokens_per_sec)),
    ("req/s", |m| Some(m.results.throughput_requests_per_sec)),
    ("TTFT p50 ms", |m| {
        lat(m, |l| l.ttft.as_ref()).map(|s| s.p50)
    }),
    ("TTFT p99 ms", |m| {
        lat(m, |l| l.ttft.as_ref()).map(|s| s.p99)
    }),
    ("TPOT p50 ms", |m| {
        lat(m, |l| l.tpot.as_ref()).map(|s| s.p50)
    }),
    ("TPOT p99 ms", |m| {
        lat(m, |l| l.tpot.as_ref()).map(|s| s.p99)
    }),
    ("E2E p50 ms", |m| lat(m, |l| l.e2e.as_ref()).map(|s| s.p50)),
    ("E2E p99 ms", |m| lat(m, |l| l.e2e.as_ref()).map(|s| s.p99)),
];

/// The repeat groups among `runs`, in the order their first run appears. A repeat that is
/// still running or had no success is left out (its figures would not be comparable).
pub fn groups(runs: &[Metadata]) -> Vec<RepeatGroup> {
    let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (i, m) in runs.iter().enumerate() {
        let Some(r) = &m.repeat else { continue };
        if crate::report::h2h::unusable_reason(m).is_some() {
            continue;
        }
        let e = by.entry(r.group.as_str()).or_default();
        if e.is_empty() {
            order.push(r.group.as_str());
        }
        e.push(i);
    }
    order
        .into_iter()
        .map(|g| {
            let mut idx = by.remove(g).unwrap_or_default();
            idx.sort_by_key(|&i| runs[i].repeat.as_ref().map_or(0, |r| r.index));
            summarize(g, &idx, runs)
        })
        .collect()
}

/// The group's figures from its runs.
pub fn summarize(group: &str, idx: &[usize], runs: &[Metadata]) -> RepeatGroup {
    let first = &runs[idx[0]];
    let figures = FIGURES
        .iter()
        .filter_map(|(name, pick)| {
            let vals: Vec<f64> = idx.iter().filter_map(|&i| pick(&runs[i])).collect();
            // a figure some repeat lacks is not summarised (a mean over fewer runs would
            // pass for the group's)
            (vals.len() == idx.len())
                .then(|| interval::mean_t_ci(&vals, interval::LEVEL))
                .flatten()
                .map(|ci| Figure { name, ci })
        })
        .collect();
    RepeatGroup {
        group: group.to_string(),
        platform: first.platform.clone(),
        model: first.model.clone(),
        count: first.repeat.as_ref().map_or(0, |r| r.count),
        runs: idx.to_vec(),
        figures,
    }
}

fn decimals(name: &str) -> usize {
    if name.ends_with("tok/s") { 1 } else { 2 }
}

/// `12.34 [11.90, 12.78]`, or the mean alone (`12.34 [-, -]`) for a single repeat.
pub fn mean_cell(f: &Figure) -> String {
    with_bounds(f.ci.mean, Some([f.ci.lo, f.ci.hi]), decimals(f.name))
}

/// The text printed at the end of `run --repeat N`.
pub fn text(g: &RepeatGroup) -> String {
    let mut s = format!(
        "\nRepeat group {} ({} of {} repeat(s) with a success): mean [95% t-interval]\n",
        g.group,
        g.runs.len(),
        g.count
    );
    for f in &g.figures {
        let _ = writeln!(s, "  {:<13} {}", f.name, mean_cell(f));
    }
    s
}

/// The `## Repeat groups` section of COMPARISON.md (nothing when there are none).
pub fn markdown(out: &mut String, groups: &[RepeatGroup], chart: Option<&str>) {
    if groups.is_empty() {
        return;
    }
    out.push_str("\n## Repeat groups\n\nEach group is one `run --repeat N`: the mean across its repeats with a 95% Student-t interval `[lo, hi]` (`-` with a single repeat). See docs/intervals.md.\n\n");
    out.push_str("| Group | Platform | Model | Repeats |");
    for (name, _) in FIGURES {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n| --- | --- | --- | ---: |");
    for _ in FIGURES {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for g in groups {
        let _ = write!(
            out,
            "| {} | {} | {} | {}/{} |",
            escape(&g.group),
            escape(&g.platform),
            escape(&g.model),
            g.runs.len(),
            g.count
        );
        for (name, _) in FIGURES {
            let cell = g
                .figures
                .iter()
                .find(|f| f.name == name)
                .map(mean_cell)
                .unwrap_or_else(|| "–".into());
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    if let Some(file) = chart {
        let _ = writeln!(out, "\n![Repeat groups](charts/{file})");
    }
}

/// Bars of the latest groups' means with their t-intervals as error bars.
pub fn chart(groups: &[RepeatGroup], color: &dyn Fn(&str) -> usize) -> Option<Result<String>> {
    if groups.is_empty() {
        return None;
    }
    let shown = &groups[groups.len().saturating_sub(CHART_MAX_GROUPS)..];
    let panels: Vec<BarPanel> = ["output tok/s", "req/s", "TTFT p50 ms", "E2E p50 ms"]
        .iter()
        .filter(|name| {
            shown
                .iter()
                .any(|g| g.figures.iter().any(|f| f.name == **name))
        })
        .map(|name| BarPanel {
            title: name.to_string(),
            decimals: decimals(name),
            bars: shown
                .iter()
                .map(|g| {
                    let f = g.figures.iter().find(|f| f.name == *name);
                    Bar {
                        label: g.platform.clone(),
                        value: f.map(|f| f.ci.mean),
                        color: color(&g.platform),
                        whisker: f.and_then(|f| Some((f.ci.lo?, f.ci.hi?))),
                    }
                })
                .collect(),
        })
        .collect();
    Some(charts::bars(
        "Repeat groups: mean and 95% interval",
        &panels,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_text() {
        assert_eq!(
            with_bounds(200.31, Some([Some(199.8), Some(200.94)]), 1),
            "200.3 [199.8, 200.9]"
        );
        assert_eq!(
            with_bounds(200.31, Some([Some(199.8), None]), 1),
            "200.3 [199.8, -]"
        );
        assert_eq!(with_bounds(5.0, Some([None, None]), 2), "5.00 [-, -]");
        assert_eq!(with_bounds(5.0, None, 2), "5.00");
    }
}
