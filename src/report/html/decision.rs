//! The decision summary at the top of the page: per group, who wins each figure, by how
//! much and how sure, the cost, and the caveats (see `report::decision`).

use std::fmt::Write;

use super::esc;
use crate::report::Full;
use crate::report::decision::{self, Noise};
use crate::report::h2h::{METRICS, fmt_value};

pub(super) fn decision(o: &mut String, full: &Full) {
    let d = &full.derived;
    let dec = decision::build(d.runs, &d.h2h, &d.settings);
    o.push_str("<section id=\"decision\">\n<h2>Decision summary</h2>\n");
    o.push_str("<p class=\"rules\">Per like-for-like group: the platform that wins each figure, by how much, and whether the difference is beyond the noise of the runs (with one run per platform there is no interval; with several, the runs' min..max ranges are compared). Caveats that would change the answer are listed under each group.</p>\n");
    if dec.groups.is_empty() {
        o.push_str("<p class=\"caveat\">Nothing is comparable yet: no two platforms ran the same input with the same model family.</p>\n");
    }
    for g in &dec.groups {
        let _ = writeln!(
            o,
            "<h3>{}</h3>\n<p class=\"verdict\">{}</p>",
            esc(&g.title),
            esc(&g.headline)
        );
        o.push_str("<div class=\"scroll\"><table class=\"decision\">\n<tr><th>Figure</th><th>Winner</th><th>Winner's value</th><th>Runner-up</th><th>By</th><th>Noise</th></tr>\n");
        for f in &g.figures {
            let def = METRICS.iter().find(|m| m.key == f.key).expect("metric");
            let tie = f.winner.is_none();
            let noise_class = match f.noise {
                _ if tie => "",
                Noise::BeyondSpread => "good",
                Noise::WithinSpread => "bad",
                Noise::SingleRun => "",
            };
            let noise = if tie { "-" } else { f.noise_text.as_str() };
            let by = if f.winner.is_none() {
                "tie".to_string()
            } else if f.factor.is_finite() {
                format!("{:.2}x", f.factor)
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td>{} <span class=\"r\">{}</span></td><td class=\"n\">{}</td><td class=\"{noise_class}\">{}</td></tr>",
                esc(f.label),
                if tie { "" } else { "good" },
                esc(f.winner.as_deref().unwrap_or("tie")),
                fmt_value(def, f.winner_value),
                esc(&f.runner_up),
                fmt_value(def, f.runner_up_value),
                by,
                esc(noise)
            );
        }
        o.push_str("</table></div>\n");
        for c in &g.cost {
            let _ = writeln!(o, "<p class=\"cost\">{}</p>", esc(c));
        }
        if !g.caveats.is_empty() {
            o.push_str("<ul class=\"caveats\">\n");
            for c in &g.caveats {
                let _ = writeln!(o, "<li>{}</li>", esc(c));
            }
            o.push_str("</ul>\n");
        }
    }
    if !dec.not_like_for_like.is_empty() {
        o.push_str("<h4>Not like for like</h4>\n<ul class=\"caveats\">\n");
        for n in &dec.not_like_for_like {
            let _ = writeln!(o, "<li>{}</li>", esc(&n.sentence));
        }
        o.push_str("</ul>\n");
    }
    let _ = writeln!(o, "<p class=\"note\">Sweeps: {}.</p>", esc(&dec.sweeps));
    if let Some(f) = dec.cost_formula {
        let _ = writeln!(o, "<p class=\"note\">Cost formula: {}.</p>", esc(f));
    }
    o.push_str("</section>\n");
}
