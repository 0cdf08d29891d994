//! The sweep section of `reports/index.html`: per like-for-like group the sentence and
//! the chart (inline SVG), then each sweep's table and conclusions.

use std::fmt::Write as _;

use super::{goodput_text, knee_text, markdown::rows, sentence};
use crate::report::Derived;
use crate::report::html::esc;

/// The section (nothing when the store has no sweep).
pub fn section(o: &mut String, d: &Derived) {
    let s = &d.sweeps;
    if s.views.is_empty() {
        return;
    }
    o.push_str("<section id=\"sweeps\">\n<h2>Sweeps</h2>\n");
    o.push_str("<p class=\"rules\">Each point is a normal run; the knee (two-segment least squares with GuideLLM's acceptance rules), the SLO attainment intervals (Wilson, 95%) and max goodput are derived from the stored points. Sweeps are put side by side only on the same model family, input and axis. Per-user tok/s = 1000 / mean TPOT.</p>\n");
    for g in &s.groups {
        let _ = writeln!(o, "<h3>{}</h3>", esc(&g.title));
        let _ = writeln!(
            o,
            "<p class=\"verdict\"><strong>{}</strong></p>",
            esc(&sentence(s, g))
        );
        o.push_str("<ul>\n");
        for &i in &g.members {
            let v = &s.views[i];
            let _ = writeln!(
                o,
                "<li>{}: {}; {}</li>",
                esc(&v.runs.platform),
                esc(&knee_text(&v.analysis)),
                esc(&goodput_text(&v.analysis))
            );
        }
        o.push_str("</ul>\n");
        if let Some(chart) = g.chart.as_deref().and_then(|f| d.svgs.get(f)) {
            let _ = writeln!(
                o,
                "<figure>{chart}<figcaption>{}</figcaption></figure>",
                esc(&g.title)
            );
        }
    }
    for v in &s.views {
        let _ = writeln!(
            o,
            "<h3>Sweep {} ({}, {}, {} axis)</h3>",
            esc(&v.runs.id),
            esc(&v.runs.platform),
            esc(&v.runs.model),
            esc(&v.analysis.axis)
        );
        let (head, body) = rows(v);
        o.push_str("<table>\n<thead><tr>");
        for h in head {
            let _ = write!(o, "<th>{}</th>", esc(h));
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for r in body {
            o.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                let class = if i == 1 || i == 2 { "" } else { " class=\"n\"" };
                let _ = write!(o, "<td{class}>{}</td>", esc(c));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody>\n</table>\n");
        if let Some(n) = v.analysis.points.iter().filter_map(|p| p.repeats).max() {
            let _ = writeln!(
                o,
                "<p class=\"repeats\">Points run several times (up to {n} repeats, <code>sweep --repeat</code>) show the mean across their repeats with its 95% Student-t interval [lo, hi], drawn as error bars in the chart; the knee is found on the means.</p>"
            );
        }
        let _ = writeln!(
            o,
            "<p>{}<br>{}<br>Stored in <code>{}</code>.</p>",
            esc(&knee_text(&v.analysis)),
            esc(&goodput_text(&v.analysis)),
            esc(&v.path())
        );
    }
    o.push_str("</section>\n");
}
