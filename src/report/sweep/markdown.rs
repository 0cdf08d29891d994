//! The sweep section of COMPARISON.md and the sweep tables `compare`/`query` print.

use std::fmt::Write as _;

use super::{SweepView, Sweeps, goodput_text, knee_text, load_unit, num, sentence, shards_text};
use crate::report::markdown::escape;

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

/// A figure of a point, with its t-interval across repeats when it has one:
/// `3,100 [2,950, 3,250]`.
fn ci(p: &crate::metrics::sweep::Point, key: &str, v: Option<f64>) -> String {
    match (v, p.intervals.get(key)) {
        (Some(v), Some([lo, hi])) => format!("{} [{}, {}]", num(v), num(*lo), num(*hi)),
        (v, _) => opt(v),
    }
}

/// A sweep's points as rows: load, role, status, offered and achieved req/s and their
/// ratio, output tok/s, per-user tok/s, TTFT p50/p99, attainment with its interval.
pub fn rows(v: &SweepView) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let unit = load_unit(&v.analysis.axis);
    let head = vec![
        if unit == "users" {
            "Users"
        } else {
            "Rate (req/s)"
        },
        "Role",
        "Status",
        "Achieved req/s",
        "Achieved/offered",
        "Output tok/s",
        "Per-user tok/s",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "SLO attainment [95% interval]",
    ];
    let rows = v
        .analysis
        .points
        .iter()
        .map(|p| {
            let att = match (p.attainment, p.attainment_low, p.attainment_high) {
                (Some(a), Some(lo), Some(hi)) => {
                    format!("{:.1}% [{:.1}, {:.1}]", a * 100.0, lo * 100.0, hi * 100.0)
                }
                _ => "-".into(),
            };
            let role = match p.repeats {
                Some(n) => format!("{} (mean of {n})", p.role),
                None => p.role.clone(),
            };
            vec![
                num(p.load),
                role,
                p.status.clone(),
                ci(p, "achieved_rate", Some(p.achieved_rate)),
                p.achieved_ratio
                    .map(|r| format!("{:.0}%", r * 100.0))
                    .unwrap_or_else(|| "-".into()),
                ci(p, "output_tokens_per_sec", Some(p.output_tokens_per_sec)),
                ci(p, "per_user_tokens_per_sec", p.per_user_tokens_per_sec),
                ci(p, "ttft_p50_ms", p.ttft_p50_ms),
                ci(p, "ttft_p99_ms", p.ttft_p99_ms),
                att,
            ]
        })
        .collect();
    (head, rows)
}

/// One sweep as Markdown: title, table, conclusions.
pub fn one(out: &mut String, v: &SweepView) {
    let _ = writeln!(
        out,
        "\n### Sweep {} ({}, {}, {} axis)\n",
        escape(&v.runs.id),
        escape(&v.runs.platform),
        escape(&v.runs.model),
        escape(&v.analysis.axis)
    );
    let (head, rows) = rows(v);
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", " ---: |".repeat(head.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if let Some(n) = v.analysis.points.iter().filter_map(|p| p.repeats).max() {
        let _ = writeln!(
            out,
            "\nPoints run several times (up to {n} repeats, `sweep --repeat`) show the mean across their repeats with its 95% Student-t interval `[lo, hi]`; the knee is found on the means."
        );
    }
    let _ = writeln!(out, "\n- {}", escape(&knee_text(&v.analysis)));
    let _ = writeln!(out, "- {}", escape(&goodput_text(&v.analysis)));
    if let Some(t) = shards_text(v) {
        let _ = writeln!(out, "- {}", escape(&t));
    }
    let _ = writeln!(out, "- Conclusions stored in `{}`.", v.path());
}

/// The sweep section of COMPARISON.md (nothing when there is no sweep).
pub fn section(out: &mut String, s: &Sweeps) {
    if s.views.is_empty() {
        return;
    }
    out.push_str("\n## Sweeps\n\n");
    out.push_str("Each sweep's points are normal runs; the knee, the attainment intervals and max goodput are derived from them (definitions in docs/sweep-analysis.md). Sweeps are put side by side only on the same model family, input and axis.\n");
    for g in &s.groups {
        let _ = writeln!(out, "\n### {}\n", escape(&g.title));
        let _ = writeln!(out, "**{}**\n", escape(&sentence(s, g)));
        for &i in &g.members {
            let v = &s.views[i];
            let _ = writeln!(
                out,
                "- {}: {}; {}",
                escape(&v.runs.platform),
                escape(&knee_text(&v.analysis)),
                escape(&goodput_text(&v.analysis))
            );
        }
        if let Some(file) = &g.chart {
            let _ = writeln!(out, "\n![{} sweep](charts/{file})", escape(&g.title));
        }
    }
    for v in &s.views {
        one(out, v);
    }
}

/// One sweep for a terminal: a heading, an aligned table, the conclusions.
pub fn text(v: &SweepView) -> String {
    let (head, rows) = rows(v);
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!(
        "Sweep {} ({}, {}, {} axis, {} points)\n",
        clean(&v.runs.id),
        clean(&v.runs.platform),
        clean(&v.runs.model),
        clean(&v.analysis.axis),
        v.analysis.points.len()
    );
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 1 || i == 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(head.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.iter().map(|c| clean(c)).collect());
    }
    let _ = writeln!(out, "{}", clean(&knee_text(&v.analysis)));
    let _ = writeln!(out, "{}", clean(&goodput_text(&v.analysis)));
    if let Some(t) = shards_text(v) {
        let _ = writeln!(out, "{}", clean(&t));
    }
    out
}
