//! The head-to-head section: each like-for-like group's table with ratios coloured by
//! direction, its sentences, spreads and chart, and the runs not compared.

use std::fmt::Write;

use super::{esc, svg};
use crate::report::Full;
use crate::report::h2h::{Better, Group, METRICS, fmt_ratio, fmt_value};
use crate::report::markdown::{group_title, spread_lines};

pub(super) fn head_to_head(o: &mut String, full: &Full) {
    let d = &full.derived;
    o.push_str("<section id=\"head-to-head\">\n<h2>Head-to-head</h2>\n");
    o.push_str("<p class=\"rules\">Like against like: a run is compared only with runs on the same input (the same request file by sha256, the same synthetic workload, or the same <code>input</code> label) and of the same model family (the model name lowercased, without org prefix, <code>:latest</code>, <code>-it</code>/<code>-instruct</code>/<code>-chat</code> or punctuation, or the <code>family</code> label). Each platform shows its latest run; ratios are to the baseline platform. For latencies and memory, below 1.00x is better.</p>\n");
    if d.h2h.groups.is_empty() {
        o.push_str(
            "<p>No two platforms have run the same input with the same model family yet.</p>\n",
        );
    }
    for g in &d.h2h.groups {
        group(o, full, g);
    }
    if !d.h2h.unpaired.is_empty() {
        o.push_str("<h3>Not compared</h3>\n<div class=\"scroll\"><table>\n<tr><th>Platform</th><th>Model</th><th>Family</th><th>Input</th><th>Latest run</th><th>Runs</th><th>Why</th></tr>\n");
        for u in &d.h2h.unpaired {
            let m = &d.runs[u.run];
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"#run-{}\">{}</a></td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&u.platform),
                esc(&m.model),
                esc(&u.family),
                esc(&u
                    .input
                    .as_ref()
                    .map(|i| i.display())
                    .unwrap_or_else(|| "unknown".into())),
                u.run,
                esc(&m.test_id),
                u.count,
                esc(&u.reason)
            );
        }
        o.push_str("</table></div>\n");
    }
    o.push_str("</section>\n");
}

fn ratio_class(better: Better, r: f64) -> &'static str {
    let up = r > 1.05;
    let down = r < 0.95;
    match (better, up, down) {
        (Better::Higher, true, _) | (Better::Lower, _, true) => "good",
        (Better::Higher, _, true) | (Better::Lower, true, _) => "bad",
        _ => "",
    }
}

fn group(o: &mut String, full: &Full, g: &Group) {
    let d = &full.derived;
    let _ = writeln!(
        o,
        "<article id=\"g-{}\">\n<h3>{}</h3>",
        esc(&g.slug),
        esc(&group_title(g))
    );
    let models: Vec<String> = g.models.iter().map(|m| esc(m)).collect();
    let _ = writeln!(
        o,
        "<p class=\"note\">Models: {}. Baseline: <strong>{}</strong>{}.</p>",
        models.join(", "),
        esc(&g.baseline().platform),
        g.baseline_note
            .as_deref()
            .map(|n| format!(" ({})", esc(n)))
            .unwrap_or_default()
    );
    let sentences = g.ratio_sentences();
    if !sentences.is_empty() {
        o.push_str("<ul class=\"ratios\">\n");
        for s in sentences {
            let (p, rest) = s.split_once(": ").unwrap_or((&s, ""));
            let _ = writeln!(o, "<li><strong>{}</strong>: {}</li>", esc(p), esc(rest));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<div class=\"scroll\"><table>\n<tr><th>Platform</th><th>Runs</th>");
    for m in &METRICS {
        let _ = write!(o, "<th>{}</th>", esc(m.label));
    }
    o.push_str("</tr>\n");
    for (n, e) in g.entries.iter().enumerate() {
        let _ = write!(
            o,
            "<tr><td>{}{}</td><td class=\"n\">{}</td>",
            esc(&e.platform),
            if n == 0 {
                " <span class=\"base\">(baseline)</span>"
            } else {
                ""
            },
            e.runs.len()
        );
        for (k, def) in METRICS.iter().enumerate() {
            match (e.values[k], e.ratios[k]) {
                (Some(v), Some(r)) => {
                    let _ = write!(
                        o,
                        "<td class=\"n\">{}<br><span class=\"r {}\">{}</span></td>",
                        fmt_value(def, v),
                        ratio_class(def.better, r),
                        fmt_ratio(r)
                    );
                }
                (Some(v), None) => {
                    let _ = write!(o, "<td class=\"n\">{}</td>", fmt_value(def, v));
                }
                (None, _) => o.push_str("<td class=\"n\">–</td>"),
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table></div>\n");
    let latest: Vec<String> = g
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} <a href=\"#run-{}\">{}</a>",
                esc(&e.platform),
                e.latest,
                esc(&d.runs[e.latest].test_id)
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "<p class=\"note\">Latest runs: {}.</p>",
        latest.join(", ")
    );
    let spreads = spread_lines(g);
    if !spreads.is_empty() {
        o.push_str("<p class=\"note\">Spread over a platform's runs on this input (min to max, coefficient of variation; the table shows the latest run):</p>\n<ul class=\"ratios\">\n");
        for s in spreads {
            let _ = writeln!(o, "<li>{}</li>", esc(&s));
        }
        o.push_str("</ul>\n");
    }
    if let Some(s) = d.group_charts.get(&g.slug).and_then(|f| svg(full, f)) {
        let _ = writeln!(o, "<figure>{s}</figure>");
    }
    if let Some(s) = svg(full, &crate::report::server_view::breakdown_file(&g.slug)) {
        let _ = writeln!(o, "<figure>{s}</figure>");
    }
    if let Some(set) = full
        .latency_sets
        .iter()
        .find(|s| s.group.as_deref() == Some(&g.slug))
        && set.chart.is_some()
    {
        let _ = writeln!(
            o,
            "<p class=\"note\"><a href=\"#lat-{}\">Latency distributions of these runs</a></p>",
            esc(&g.slug)
        );
    }
    o.push_str("</article>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_colours_follow_direction() {
        assert_eq!(ratio_class(Better::Higher, 3.0), "good");
        assert_eq!(ratio_class(Better::Lower, 3.0), "bad");
        assert_eq!(ratio_class(Better::Lower, 0.2), "good");
        assert_eq!(ratio_class(Better::Higher, 1.01), "");
    }
}
