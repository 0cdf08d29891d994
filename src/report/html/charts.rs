//! The chart sections: latency distributions with the per-run percentile table, and the
//! per-platform trends over time.

use std::fmt::Write;

use super::{esc, svg};
use crate::report::{Full, MAX_LATENCY_CHARTS};
use crate::schema::{LatencySummary, Metadata};

fn cell(s: &Option<LatencySummary>, f: fn(&LatencySummary) -> f64) -> String {
    match s {
        Some(s) => format!("<td class=\"n\">{:.1}</td>", f(s)),
        None => "<td class=\"n\">–</td>".to_string(),
    }
}

pub(super) fn latency(o: &mut String, full: &Full) {
    let d = &full.derived;
    o.push_str("<section id=\"latency\">\n<h2>Latency</h2>\n");
    o.push_str("<p class=\"rules\">Distributions (CDF: the share of requests at or below a latency) from the raw per-request records of each group's latest runs, and of the latest run on inputs no other platform ran. TTFT and E2E are measured from the scheduled send time; TPOT = (E2E − TTFT) / (output tokens − 1).</p>\n");
    let drawn: Vec<_> = full
        .latency_sets
        .iter()
        .filter_map(|s| Some((s, svg(full, s.chart.as_deref()?)?)))
        .collect();
    if drawn.is_empty() {
        o.push_str("<p>No run has per-request latencies in its raw log (imported results files rarely do; <code>benchkeep run</code> records them).</p>\n");
    }
    for (set, chart) in drawn {
        let anchor = match &set.group {
            Some(slug) => format!(" id=\"lat-{}\"", esc(slug)),
            None => String::new(),
        };
        let counts: Vec<String> = set
            .members
            .iter()
            .map(|(p, r)| {
                let n = full
                    .latency
                    .get(r)
                    .and_then(|l| l.e2e.as_ref().or(l.ttft.as_ref()))
                    .map(|c| c.count)
                    .unwrap_or(0);
                format!("{} {} ({} requests)", esc(p), esc(&d.runs[*r].test_id), n)
            })
            .collect();
        let _ = writeln!(
            o,
            "<figure{anchor}>{chart}<figcaption>{}</figcaption></figure>",
            counts.join(" · ")
        );
    }
    if full.latency_sets_omitted > 0 {
        let _ = writeln!(
            o,
            "<p class=\"note\">{} older sets of runs are not charted (only the {MAX_LATENCY_CHARTS} most recent are); their percentiles are in the table below.</p>",
            full.latency_sets_omitted
        );
    }
    let with: Vec<(usize, &Metadata)> = d
        .runs
        .iter()
        .enumerate()
        .filter(|(_, m)| m.results.latency_ms.as_ref().is_some_and(|l| !l.is_empty()))
        .rev()
        .collect();
    if !with.is_empty() {
        o.push_str("<h3>Percentiles per run (ms), newest first</h3>\n<div class=\"scroll\"><table>\n<tr><th>Run</th><th>Platform</th><th>Model</th><th>TTFT p50</th><th>TTFT p90</th><th>TTFT p99</th><th>TPOT p50</th><th>TPOT p99</th><th>ITL p50</th><th>E2E p50</th><th>E2E p90</th><th>E2E p99</th><th>E2E max</th></tr>\n");
        for (i, m) in with {
            let l = m.results.latency_ms.as_ref().expect("filtered");
            let _ = writeln!(
                o,
                "<tr><td><a href=\"#run-{i}\">{}</a></td><td>{}</td><td>{}</td>{}{}{}{}{}{}{}{}{}{}</tr>",
                esc(&m.test_id),
                esc(&m.platform),
                esc(&m.model),
                cell(&l.ttft, |s| s.p50),
                cell(&l.ttft, |s| s.p90),
                cell(&l.ttft, |s| s.p99),
                cell(&l.tpot, |s| s.p50),
                cell(&l.tpot, |s| s.p99),
                cell(&l.itl, |s| s.p50),
                cell(&l.e2e, |s| s.p50),
                cell(&l.e2e, |s| s.p90),
                cell(&l.e2e, |s| s.p99),
                cell(&l.e2e, |s| s.max),
            );
        }
        o.push_str("</table></div>\n");
    }
    o.push_str("</section>\n");
}

pub(super) fn trends(o: &mut String, full: &Full) {
    let d = &full.derived;
    o.push_str("<section id=\"trends\">\n<h2>Trends</h2>\n<p class=\"rules\">Each platform's runs of a model family over time (every run, whatever its input), so a regression shows. Each dot is a run.</p>\n");
    if d.trend_charts.is_empty() {
        o.push_str("<p>A trend needs two runs or more of one platform and model family.</p>\n");
    }
    for (_, file) in &d.trend_charts {
        if let Some(s) = svg(full, file) {
            let _ = writeln!(o, "<figure>{s}</figure>");
        }
    }
    o.push_str("</section>\n");
}
