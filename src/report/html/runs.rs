//! The runs section: the table of every run and each run's details (settings, results,
//! errors, latencies, GPU, server and config), newest first.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::{esc, svg};
use crate::report::h2h;
use crate::report::rawdata::Latency;
use crate::report::rows::{HEADERS, Row};
use crate::report::{Full, MAX_GPU_CHARTS};
use crate::schema::{Metadata, SourceKind};

pub(super) fn all_runs(o: &mut String, full: &Full) {
    let d = &full.derived;
    o.push_str("<section id=\"runs\">\n<h2>Runs</h2>\n");
    if d.runs.is_empty() {
        o.push_str("<p>No benchmarks yet. Add one with <code>benchkeep analyze</code>, <code>benchkeep run</code> or <code>benchkeep record</code>.</p>\n");
    } else {
        o.push_str("<div class=\"scroll\"><table>\n<tr>");
        for h in HEADERS {
            let _ = write!(o, "<th>{}</th>", esc(h));
        }
        o.push_str("</tr>\n");
        for (i, m) in d.runs.iter().enumerate() {
            let cells = Row::from_metadata(m).cells();
            o.push_str("<tr>");
            for (k, c) in cells.iter().enumerate() {
                if k == cells.len() - 1 {
                    let _ = write!(o, "<td><a href=\"#run-{i}\">{}</a></td>", esc(c));
                } else if (2..=6).contains(&k) {
                    let _ = write!(o, "<td class=\"n\">{}</td>", esc(c));
                } else {
                    let _ = write!(o, "<td>{}</td>", esc(c));
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table></div>\n<h3>Details, newest first</h3>\n");
    }
    for (i, m) in d.runs.iter().enumerate().rev() {
        run_details(o, full, i, m);
    }
    if full.gpu_omitted > 0 {
        let _ = writeln!(
            o,
            "<p class=\"note\">GPU time series of {} older runs are not charted (only the {MAX_GPU_CHARTS} most recent are); they are in raw/&lt;test_id&gt;.gpu.jsonl.</p>",
            full.gpu_omitted
        );
    }
    if !d.skipped.is_empty() {
        o.push_str("<h3>Skipped metadata files</h3>\n<ul>\n");
        for s in d.skipped {
            let _ = writeln!(
                o,
                "<li>{}: {}</li>",
                esc(&s.path.display().to_string()),
                esc(&s.reason)
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</section>\n");
}

fn dl(o: &mut String, items: &[(&str, String)]) {
    o.push_str("<dl>");
    for (k, v) in items {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    o.push_str("</dl>\n");
}

fn pre_json(o: &mut String, title: &str, v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(o, "<h4>{}</h4><pre>{}</pre>", esc(title), esc(&text));
}

fn run_details(o: &mut String, full: &Full, i: usize, m: &Metadata) {
    let r = &m.results;
    let _ = writeln!(
        o,
        "<details id=\"run-{i}\"><summary><strong>{}</strong> — {}, {}, {:.1} output tok/s <span class=\"st {}\">{}</span></summary>",
        esc(&m.test_id),
        esc(&m.platform),
        esc(&m.model),
        r.output_tokens_per_sec,
        m.status.as_str(),
        m.status.as_str()
    );
    let source = match m.source.kind {
        SourceKind::Run => "run",
        SourceKind::Record => "record",
        SourceKind::Analyze => "analyze",
        SourceKind::Import => "import",
    };
    let mut items: Vec<(&str, String)> = vec![
        ("timestamp", m.timestamp.clone()),
        ("platform", m.platform.clone()),
        ("model", m.model.clone()),
        ("model family", h2h::model_family(m)),
        (
            "input",
            h2h::input_key(m)
                .map(|k| k.display())
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("status", m.status.to_string()),
        ("source", format!("{source} ({})", m.source.format)),
    ];
    if let Some(c) = &m.source.command {
        items.push(("command", c.clone()));
    }
    if let Some(f) = &m.test.input_file {
        items.push(("input file", f.clone()));
    }
    items.push(("raw file", m.test.output_file.clone()));
    if !m.labels.is_empty() {
        let l: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        items.push(("labels", l.join(", ")));
    }
    items.push((
        "host",
        format!("{} ({}, {} CPUs)", m.host.hostname, m.host.os, m.host.cpus),
    ));
    items.push(("tool", format!("{} {}", m.tool.name, m.tool.version)));
    dl(o, &items);

    let total = r.success_count + r.failure_count;
    let mut res: Vec<(&str, String)> = vec![
        (
            "requests",
            format!(
                "{}/{} succeeded ({:.1}%)",
                r.success_count,
                total,
                h2h::success_percent(m).unwrap_or(0.0)
            ),
        ),
        ("total time", format!("{:.3} s", r.total_time_seconds)),
        (
            "throughput",
            format!(
                "{:.2} tok/s total, {:.2} output tok/s, {:.3} req/s",
                r.throughput_tokens_per_sec, r.output_tokens_per_sec, r.throughput_requests_per_sec
            ),
        ),
        (
            "tokens",
            format!(
                "{} prompt ({:.1} avg), {} completion ({:.1} avg)",
                r.total_prompt_tokens,
                r.avg_prompt_tokens,
                r.total_completion_tokens,
                r.avg_completion_tokens
            ),
        ),
    ];
    if let Some(t) = r.model_load_time_seconds {
        res.push(("model load", format!("{t:.3} s")));
    }
    if let Some(g) = &r.goodput {
        res.push((
            "goodput",
            format!(
                "{:.3} req/s ({} good, {:.1}%)",
                g.requests_per_sec, g.good_requests, g.percent
            ),
        ));
    }
    if let Some(j) = h2h::tokens_per_joule(m) {
        res.push(("efficiency", format!("{j:.3} output tokens/J")));
    }
    if r.unparseable_lines > 0 {
        res.push(("unparseable lines", r.unparseable_lines.to_string()));
    }
    o.push_str("<h4>Results</h4>");
    dl(o, &res);

    if !r.errors_by_kind.is_empty() {
        o.push_str("<h4>Errors by kind</h4><table><tr><th>Kind</th><th>Count</th></tr>");
        for (k, n) in &r.errors_by_kind {
            let _ = write!(o, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(k));
        }
        o.push_str("</table>\n");
    }
    if !r.errors_by_status.is_empty() {
        o.push_str("<h4>Errors by HTTP status</h4><table><tr><th>Status</th><th>Count</th></tr>");
        for (k, n) in &r.errors_by_status {
            let _ = write!(o, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(k));
        }
        o.push_str("</table>\n");
    }
    if r.client_stalled_requests > 0 {
        let _ = writeln!(
            o,
            "<p class=\"note\">{} request(s) were in flight while benchkeep itself was stalled (paused, swapped): their latencies include time that is not the server's.</p>",
            r.client_stalled_requests
        );
    }
    if let Some(l) = full.latency.get(&i) {
        error_examples(o, l);
    }
    if let Some(e) = full.raw_errors.get(&i) {
        let _ = writeln!(o, "<p class=\"note\">Raw log not read: {}</p>", esc(e));
    }
    if let Some(l) = r.latency_ms.as_ref().filter(|l| !l.is_empty()) {
        o.push_str("<h4>Latency (ms)</h4><table><tr><th></th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>");
        for (name, s) in [
            ("TTFT", &l.ttft),
            ("TPOT", &l.tpot),
            ("ITL", &l.itl),
            ("E2E", &l.e2e),
            ("client lag", &l.lag),
        ] {
            if let Some(s) = s {
                let _ = write!(
                    o,
                    "<tr><th>{name}</th><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td></tr>",
                    s.count, s.mean, s.p50, s.p90, s.p95, s.p99, s.max
                );
            }
        }
        o.push_str("</table>\n");
    }
    if let Some(st) = &r.server_timings {
        pre_json(
            o,
            "Server-side timings",
            &serde_json::to_value(st).unwrap_or(Value::Null),
        );
    }
    if let Some(g) = &m.gpu {
        pre_json(o, "GPU", &serde_json::to_value(g).unwrap_or(Value::Null));
    }
    if let Some(s) = full.gpu_charts.get(&i).and_then(|f| svg(full, f)) {
        let _ = writeln!(o, "<figure>{s}</figure>");
    }
    if let Some(v) = &r.server_view {
        pre_json(
            o,
            "Server view",
            &serde_json::to_value(v).unwrap_or(Value::Null),
        );
    }
    if let Some(s) = svg(full, &crate::report::server_view::series_file(&m.test_id)) {
        let _ = writeln!(o, "<figure>{s}</figure>");
    }
    if let Some(s) = &m.server {
        pre_json(o, "Server", &serde_json::to_value(s).unwrap_or(Value::Null));
    }
    if !m.config.is_empty() {
        pre_json(o, "Config", &Value::Object(m.config.clone()));
    }
    let extra: BTreeMap<&String, &Value> = m.extra.iter().collect();
    if !extra.is_empty() {
        pre_json(
            o,
            "Other fields",
            &serde_json::to_value(extra).unwrap_or(Value::Null),
        );
    }
    o.push_str("</details>\n");
}

fn error_examples(o: &mut String, l: &Latency) {
    if l.errors.is_empty() {
        return;
    }
    o.push_str("<h4>Example errors (from the raw log)</h4><table><tr><th>Kind</th><th>Message</th><th>Count</th></tr>");
    for e in &l.errors {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&e.kind),
            esc(&e.message),
            e.count
        );
    }
    o.push_str("</table>\n");
}
