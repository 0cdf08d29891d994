//! `reports/index.html`: one self-contained page, a pure function of the report model.
//!
//! No script, no network: charts are inline SVG, styles are inline, and a
//! Content-Security-Policy meta tag (`default-src 'none'`) forbids loading anything, so the
//! page opens the same from a file, a git checkout or an artifact store. Every string that
//! came from a user or a server goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::report::h2h::{self, Better, Group, METRICS, fmt_ratio, fmt_value};
use crate::report::markdown::{group_title, spread_lines};
use crate::report::rawdata::Latency;
use crate::report::rows::{HEADERS, Row};
use crate::report::{Full, MAX_GPU_CHARTS, MAX_LATENCY_CHARTS};
use crate::schema::{LatencySummary, Metadata, SourceKind};

/// The policy: nothing may load, inline styles and data: images excepted.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Escape text for HTML element content and quoted attribute values. Control characters
/// (other than newline and tab) are dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #1b1f24; background: #f6f7f9; line-height: 1.45; }
header { background: #14233a; color: #fff; padding: 18px 28px 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 8px; color: #c9d3e0; font-size: 14px; }
nav a { color: #9cc7ff; margin-right: 18px; font-size: 14px; text-decoration: none; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 6px 22px 18px; margin: 18px 0; }
h2 { font-size: 20px; border-bottom: 1px solid #e6e9ed; padding-bottom: 6px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
p.note, p.rules { color: #4a5562; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #dde1e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
.good { color: #0a7a3b; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.base { font-style: italic; color: #4a5562; }
.r { font-size: 12px; color: #4a5562; }
.r.good { color: #0a7a3b; }
.r.bad { color: #b3261e; }
ul.ratios { margin: 6px 0; padding-left: 20px; }
ul.ratios li { margin: 2px 0; }
figure { margin: 10px 0; }
figcaption { font-size: 12px; color: #4a5562; }
svg.chart { max-width: 100%; height: auto; border: 1px solid #eef0f3; }
details { border: 1px solid #dde1e6; border-radius: 6px; margin: 6px 0; padding: 4px 10px; background: #fbfbfc; }
details[open] { background: #fff; }
summary { cursor: pointer; font-size: 14px; }
summary .st { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e6e9ed; margin-left: 6px; }
summary .st.failed, summary .st.interrupted { background: #f8d7d5; }
summary .st.partial, summary .st.running { background: #fdeccc; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; margin: 6px 0; }
dt { color: #4a5562; }
dd { margin: 0; word-break: break-word; }
pre { background: #f6f7f9; border: 1px solid #e6e9ed; padding: 8px; font-size: 12px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
footer { text-align: center; color: #6b7582; font-size: 12px; padding: 10px; }
"#;

/// The whole page.
pub fn render(full: &Full) -> String {
    let d = &full.derived;
    let runs = d.runs;
    let mut o = String::with_capacity(256 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        o,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    o.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<title>benchkeep report</title>\n<style>");
    o.push_str(STYLE);
    o.push_str("</style>\n</head>\n<body>\n<header>\n<h1>Benchmark report</h1>\n");
    let platforms: std::collections::BTreeSet<&str> =
        runs.iter().map(|m| m.platform.as_str()).collect();
    let latest = runs
        .iter()
        .map(|m| m.timestamp.as_str())
        .max()
        .unwrap_or("none");
    let _ = writeln!(
        o,
        "<p>{} runs · {} platforms · {} like-for-like groups · latest run {} · benchkeep {}</p>",
        runs.len(),
        platforms.len(),
        d.h2h.groups.len(),
        esc(latest),
        env!("CARGO_PKG_VERSION")
    );
    o.push_str("<nav><a href=\"#head-to-head\">Head-to-head</a><a href=\"#latency\">Latency</a><a href=\"#trends\">Trends</a><a href=\"#runs\">Runs</a></nav>\n</header>\n<main>\n");
    head_to_head(&mut o, full);
    latency(&mut o, full);
    trends(&mut o, full);
    all_runs(&mut o, full);
    o.push_str("</main>\n<footer>Generated by benchkeep from metadata/ and raw/. This page is derived: <code>benchkeep report</code> rebuilds it; deleting it loses nothing.</footer>\n</body>\n</html>\n");
    o
}

fn svg<'s>(full: &'s Full, file: &str) -> Option<&'s str> {
    full.derived.svgs.get(file).map(String::as_str)
}

fn head_to_head(o: &mut String, full: &Full) {
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

fn cell(s: &Option<LatencySummary>, f: fn(&LatencySummary) -> f64) -> String {
    match s {
        Some(s) => format!("<td class=\"n\">{:.1}</td>", f(s)),
        None => "<td class=\"n\">–</td>".to_string(),
    }
}

fn latency(o: &mut String, full: &Full) {
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

fn trends(o: &mut String, full: &Full) {
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

fn all_runs(o: &mut String, full: &Full) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            esc("</script><img src=x onerror=alert(1)>\"'&"),
            "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"
        );
        assert_eq!(esc("a\u{1b}[31mb\u{0}"), "a[31mb");
    }

    #[test]
    fn ratio_colours_follow_direction() {
        assert_eq!(ratio_class(Better::Higher, 3.0), "good");
        assert_eq!(ratio_class(Better::Lower, 3.0), "bad");
        assert_eq!(ratio_class(Better::Lower, 0.2), "good");
        assert_eq!(ratio_class(Better::Higher, 1.01), "");
    }
}
