//! The tuning-matrix table: for each matrix in the store (runs linked by
//! `sweep.axis = "matrix"`), one row per combination with its settings, whether it fit
//! (`fit`, `oom`, `failed: why`, `interrupted`), output tok/s, req/s, wall time and peak
//! VRAM, the fastest fitting one marked. Rendered as Markdown, HTML and a terminal table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::schema::{Metadata, Status};

/// One combination's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub index: u32,
    pub test_id: String,
    /// The settings' values, in the order of [`Matrix::names`].
    pub values: Vec<String>,
    /// `fit`, `fit (N failed requests)`, `oom`, `failed: why`, `interrupted`, `running`.
    pub status: String,
    pub fits: bool,
    pub output_tok_s: f64,
    pub req_s: f64,
    pub wall_s: f64,
    pub vram_gb: Option<f64>,
    pub fastest: bool,
    /// Why it did not fit, at most [`WHY_CHARS`] characters (the OOM line, exit code...).
    pub why: Option<String>,
}

/// One matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub id: String,
    pub names: Vec<String>,
    pub rows: Vec<Row>,
}

/// Longest reason shown in a cell.
pub const WHY_CHARS: usize = 80;

fn short(s: &str) -> String {
    match s.char_indices().nth(WHY_CHARS) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Status, whether it fit, and why not.
fn status_of(m: &Metadata) -> (String, bool, Option<String>) {
    let cmd = m.extra.get("command");
    let get = |k: &str| cmd.and_then(|c| c.get(k));
    match m.status {
        Status::Completed => ("fit".into(), true, None),
        Status::Partial => (
            format!("fit ({} failed requests)", m.results.failure_count),
            true,
            None,
        ),
        Status::Interrupted => ("interrupted".into(), false, None),
        Status::Running => ("running".into(), false, None),
        Status::Failed => {
            let reason = get("failure_reason").and_then(|v| v.as_str()).map(short);
            if get("failure_kind").and_then(|v| v.as_str()) == Some("oom")
                || m.results.errors_by_kind.contains_key("oom")
            {
                return ("oom".into(), false, reason);
            }
            let why = if let Some(sig) = get("signal_name").and_then(|v| v.as_str()) {
                format!("killed by {sig}")
            } else if let Some(code) = get("exit_code")
                .and_then(|v| v.as_i64())
                .filter(|c| *c != 0)
            {
                format!("exit code {code}")
            } else if let Some(out) = get("output")
                .and_then(|v| v.as_str())
                .filter(|o| *o != "imported")
            {
                format!("results file {out}")
            } else if let Some(e) = get("error").and_then(|v| v.as_str()) {
                short(e)
            } else {
                "every request failed".into()
            };
            (format!("failed: {why}"), false, reason)
        }
    }
}

/// The matrices in `runs` (ordered by id), each combination's latest run.
pub fn build(runs: &[Metadata]) -> Vec<Matrix> {
    let mut by_id: BTreeMap<&str, BTreeMap<u32, &Metadata>> = BTreeMap::new();
    for m in runs {
        let Some(link) = m.sweep.as_ref().filter(|s| s.axis == "matrix") else {
            continue;
        };
        let slot = by_id.entry(&link.id).or_default();
        match slot.get(&link.index) {
            Some(old) if old.timestamp > m.timestamp => {}
            _ => {
                slot.insert(link.index, m);
            }
        }
    }
    by_id
        .into_iter()
        .map(|(id, points)| {
            let mut names: Vec<String> = Vec::new();
            for m in points.values() {
                for k in m
                    .sweep
                    .as_ref()
                    .map(|s| s.settings.keys())
                    .into_iter()
                    .flatten()
                {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
            let mut rows: Vec<Row> = points
                .into_iter()
                .map(|(index, m)| {
                    let settings = &m.sweep.as_ref().expect("filtered").settings;
                    let (status, fits, why) = status_of(m);
                    Row {
                        index,
                        test_id: m.test_id.clone(),
                        values: names
                            .iter()
                            .map(|n| settings.get(n).cloned().unwrap_or_default())
                            .collect(),
                        status,
                        fits,
                        output_tok_s: m.results.output_tokens_per_sec,
                        req_s: m.results.throughput_requests_per_sec,
                        wall_s: m.results.total_time_seconds,
                        vram_gb: m.gpu.as_ref().and_then(|g| g.vram_used_gb),
                        fastest: false,
                        why,
                    }
                })
                .collect();
            // The fastest fitting combination: most output tok/s (req/s when no run
            // counted tokens).
            let by_tokens = rows.iter().any(|r| r.fits && r.output_tok_s > 0.0);
            let speed = |r: &Row| if by_tokens { r.output_tok_s } else { r.req_s };
            if let Some(best) = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.fits && speed(r) > 0.0)
                .max_by(|a, b| speed(a.1).total_cmp(&speed(b.1)))
                .map(|(i, _)| i)
            {
                rows[best].fastest = true;
            }
            Matrix {
                id: id.to_string(),
                names,
                rows,
            }
        })
        .collect()
}

fn num(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// The cells of a row after the settings: status, output tok/s, req/s, wall, VRAM, run.
fn cells(r: &Row) -> [String; 6] {
    let mut status = r.status.clone();
    if r.fastest {
        status.push_str(", fastest");
    }
    if let Some(why) = &r.why {
        status.push_str(&format!(" ({why})"));
    }
    let fit = |v: f64, d| if r.fits { num(v, d) } else { "-".into() };
    [
        status,
        fit(r.output_tok_s, 1),
        fit(r.req_s, 2),
        num(r.wall_s, 1),
        r.vram_gb.map(|v| num(v, 1)).unwrap_or_else(|| "-".into()),
        r.test_id.clone(),
    ]
}

const TAIL_HEADERS: [&str; 6] = [
    "Status",
    "Output tok/s",
    "Req/s",
    "Wall (s)",
    "Peak VRAM (GB)",
    "Run",
];

/// The `## Tuning matrices` section of COMPARISON.md; empty when there is no matrix.
pub fn markdown(runs: &[Metadata]) -> String {
    let esc = crate::report::markdown::escape;
    let matrices = build(runs);
    if matrices.is_empty() {
        return String::new();
    }
    let mut o = String::from(
        "\n## Tuning matrices\n\nOne run per combination of settings (`record --matrix`): which fit, which ran out of memory or failed and why, and the fastest that fit (most output tok/s).\n",
    );
    for mx in &matrices {
        let _ = write!(o, "\n### {}\n\n| # |", esc(&mx.id));
        for n in &mx.names {
            let _ = write!(o, " {} |", esc(n));
        }
        for h in TAIL_HEADERS {
            let _ = write!(o, " {h} |");
        }
        o.push_str("\n| ---: |");
        o.push_str(&" --- |".repeat(mx.names.len()));
        o.push_str(" --- | ---: | ---: | ---: | ---: | --- |\n");
        for r in &mx.rows {
            let _ = write!(o, "| {} |", r.index);
            for v in r.values.iter().chain(cells(r).iter()) {
                let _ = write!(o, " {} |", esc(v));
            }
            o.push('\n');
        }
    }
    o
}

/// The same section for the HTML page; empty when there is no matrix.
pub fn html(runs: &[Metadata]) -> String {
    let esc = crate::report::html::esc;
    let matrices = build(runs);
    if matrices.is_empty() {
        return String::new();
    }
    let mut o = String::from(
        "<section id=\"matrices\">\n<h2>Tuning matrices</h2>\n<p class=\"rules\">One run per combination of settings: which fit, which ran out of memory or failed and why, and the fastest that fit.</p>\n",
    );
    for mx in &matrices {
        let _ = write!(
            o,
            "<h3>{}</h3>\n<div class=\"scroll\"><table>\n<tr><th>#</th>",
            esc(&mx.id)
        );
        for n in mx.names.iter().map(String::as_str).chain(TAIL_HEADERS) {
            let _ = write!(o, "<th>{}</th>", esc(n));
        }
        o.push_str("</tr>\n");
        for r in &mx.rows {
            let _ = write!(o, "<tr><td>{}</td>", r.index);
            for v in r.values.iter().chain(cells(r).iter()) {
                let _ = write!(o, "<td>{}</td>", esc(v));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table></div>\n");
    }
    o.push_str("</section>\n");
    o
}

/// A plain-text table of one matrix for the terminal (`record --matrix` prints it).
pub fn terminal(mx: &Matrix) -> String {
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(mx.names.iter().cloned());
    header.extend(TAIL_HEADERS.iter().map(|s| s.to_string()));
    let mut table = vec![header];
    for r in &mx.rows {
        let mut line = vec![r.index.to_string()];
        line.extend(r.values.iter().cloned());
        line.extend(cells(r));
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = format!("Matrix {}\n", mx.id);
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        let _ = writeln!(o, "{}", cells.join("  ").trim_end());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SourceKind, SweepLink};
    use serde_json::json;

    fn run(index: u32, gmu: &str, status: Status, tok_s: f64) -> Metadata {
        let mut m = Metadata::new(
            SourceKind::Record,
            "vllm-offline",
            "p",
            "m",
            chrono::Utc::now(),
        );
        m.test_id = format!("run-{index}");
        m.status = status;
        m.results.output_tokens_per_sec = tok_s;
        m.results.throughput_requests_per_sec = tok_s / 10.0;
        m.sweep = Some(Box::new(SweepLink {
            id: "matrix-p-m-2026-01-01".into(),
            index,
            axis: "matrix".into(),
            value: index as f64,
            role: "combination".into(),
            settings: [("gmu".to_string(), gmu.to_string())].into(),
            ..Default::default()
        }));
        m
    }

    #[test]
    fn marks_oom_failures_and_the_fastest_fit() {
        let mut oom = run(2, "0.95", Status::Failed, 0.0);
        oom.extra.insert(
            "command".into(),
            json!({"exit_code": 1, "failure_kind": "oom", "failure_reason": "torch.OutOfMemoryError: CUDA out of memory"}),
        );
        let mut crashed = run(3, "0.99", Status::Failed, 0.0);
        crashed
            .extra
            .insert("command".into(), json!({"exit_code": 7}));
        let mut lone = run(0, "x", Status::Completed, 1.0);
        lone.sweep = None;
        let runs = vec![
            run(0, "0.85", Status::Completed, 100.0),
            run(1, "0.90", Status::Completed, 150.0),
            oom,
            crashed,
            lone,
        ];
        let mx = build(&runs);
        assert_eq!(mx.len(), 1);
        let rows = &mx[0].rows;
        assert_eq!(rows.len(), 4);
        assert!(rows[1].fastest && !rows[0].fastest);
        assert_eq!(rows[2].status, "oom");
        assert_eq!(rows[3].status, "failed: exit code 7");
        let md = markdown(&runs);
        assert!(
            md.contains("| 1 | 0.90 | fit, fastest | 150.0 | 15.00 |"),
            "{md}"
        );
        assert!(
            md.contains("oom (torch.OutOfMemoryError: CUDA out of memory)"),
            "{md}"
        );
        assert!(html(&runs).contains("<td>oom (torch.OutOfMemoryError"));
        let t = terminal(&mx[0]);
        assert!(t.starts_with("Matrix matrix-p-m-2026-01-01\n#  gmu"), "{t}");
        assert_eq!(markdown(&runs[4..]), "");
    }
}
