//! The server's own view, rendered: the `show` section (means, bucket percentiles, where
//! the client's TTFT went, the queue's series), the stacked bar per platform of a
//! head-to-head group (queue / prefill / remainder of TTFT), and the running/waiting
//! chart of a run's `raw/<test_id>.server.jsonl`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::charts::{self, Line, LinePanel, XAxis};
use crate::schema::Metadata;
use crate::schema::server_view::{Breakdown, ServerView};

/// Chart file prefix of the TTFT breakdown of a head-to-head group.
pub const BREAKDOWN_PREFIX: &str = "ttft-breakdown-";
/// Chart file prefix of a run's running/waiting series.
pub const SERIES_PREFIX: &str = "server-";
/// Most lines of a series file read for its chart.
const MAX_READ_LINES: usize = 100_000;

/// The `show` section of a run's server view (empty when it has none).
pub fn text(m: &Metadata) -> String {
    let Some(v) = &m.results.server_view else {
        return String::new();
    };
    let mut s = String::new();
    if v.source == crate::schema::server_view::SOURCE_NONE {
        let _ = writeln!(
            s,
            "\nServer view: not available ({})",
            v.note.as_deref().unwrap_or("no reason given")
        );
        return s;
    }
    let _ = writeln!(s, "\nServer view ({}, {} requests)", v.source, v.requests);
    let m = &v.mean_ms;
    let cols = [
        ("TTFT", m.ttft),
        ("queue", m.queue),
        ("prefill", m.prefill),
        ("decode", m.decode),
        ("E2E", m.e2e),
        ("ITL", m.itl),
    ];
    let shown: Vec<_> = cols.iter().filter(|c| c.1.is_some()).collect();
    let _ = write!(s, "  {:<22}", "ms");
    for (name, _) in &shown {
        let _ = write!(s, " {name:>9}");
    }
    let _ = write!(s, "\n  {:<22}", "server mean");
    for (_, val) in &shown {
        let _ = write!(s, " {:>9.2}", val.unwrap_or(0.0));
    }
    s.push('\n');
    for (label, q) in [("p50", 0), ("p90", 1), ("p99", 2)] {
        if v.percentiles_from_buckets.is_empty() {
            break;
        }
        let _ = write!(s, "  {:<22}", format!("{label} (from buckets)"));
        for (name, _) in &shown {
            let key = name.to_ascii_lowercase();
            match v.percentiles_from_buckets.get(&key) {
                Some(p) => {
                    let x = [p.p50, p.p90, p.p99][q];
                    let _ = write!(s, " {:>9}", p.shown(x));
                }
                None => {
                    let _ = write!(s, " {:>9}", "-");
                }
            }
        }
        s.push('\n');
    }
    if let Some(b) = &v.breakdown {
        let _ = writeln!(s, "  Where the client's TTFT went: {}", breakdown_line(b));
    }
    if let Some(p) = v.preemptions {
        let _ = writeln!(s, "  Preemptions: {p}");
    }
    if let Some(sr) = &v.series {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
        let _ = writeln!(
            s,
            "  Queue: waiting mean {}, max {} (rise: first quarter {}, last quarter {}); running max {}; KV cache max {}; {} samples every {}s in {}",
            f(sr.waiting_mean),
            f(sr.waiting_max),
            f(sr.waiting_first_quarter),
            f(sr.waiting_last_quarter),
            f(sr.running_max),
            sr.kv_cache_usage_max
                .map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0)),
            sr.samples,
            sr.interval_s,
            sr.file
        );
    }
    if let Some(n) = &v.note {
        let _ = writeln!(s, "  Note: {n}");
    }
    s
}

/// `1388 ms = queue 1323 (95%) + prefill 53 (4%) + network, HTTP and client 12 (1%)`.
pub fn breakdown_line(b: &Breakdown) -> String {
    let pct = |x: f64| {
        if b.client_ttft_ms > 0.0 {
            format!("{:.0}%", 100.0 * x / b.client_ttft_ms)
        } else {
            "-".into()
        }
    };
    format!(
        "{:.1} ms = server queue {:.1} ({}) + server prefill {:.1} ({}) + network, HTTP and client {:.1} ({})",
        b.client_ttft_ms,
        b.server_queue_ms,
        pct(b.server_queue_ms),
        b.server_prefill_ms,
        pct(b.server_prefill_ms),
        b.remainder_ms,
        pct(b.remainder_ms)
    )
}

/// The parts of the stacked bar, in drawing order (bottom first).
const PARTS: [(&str, RGBColor); 3] = [
    ("server queue", RGBColor(0xD5, 0x5E, 0x00)),
    ("server prefill", RGBColor(0x00, 0x72, 0xB2)),
    ("network, HTTP, client", RGBColor(0x99, 0x99, 0x99)),
];

/// One stacked bar per platform: its client TTFT split into server queue, server prefill
/// and the remainder (a negative remainder is drawn as 0 and named in the label).
pub fn breakdown_chart(title: &str, bars: &[(String, Breakdown)]) -> Result<String> {
    let width = (140 * bars.len() as u32).max(320) + 180;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(&charts::label(title, 90), ("sans-serif", 17).into_font())
            .map_err(err)?;
        let (plot, legend) = root.split_horizontally(width - 180);
        let n = bars.len().max(1) as i32;
        let top = bars
            .iter()
            .map(|(_, b)| {
                b.client_ttft_ms
                    .max(b.server_queue_ms + b.server_prefill_ms)
            })
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let top = if top > 0.0 { top * 1.15 } else { 1.0 };
        let names: Vec<String> = bars.iter().map(|(p, _)| charts::label(p, 16)).collect();
        let mut chart = ChartBuilder::on(&plot)
            .caption("TTFT, ms", ("sans-serif", 13).into_font())
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(50)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .x_labels(n as usize)
            .y_labels(5)
            .label_style(("sans-serif", 11).into_font())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| charts::tick(*v))
            .draw()
            .map_err(err)?;
        for (i, (_, b)) in bars.iter().enumerate() {
            let parts = [b.server_queue_ms, b.server_prefill_ms, b.remainder_ms];
            let mut y = 0.0;
            for (k, part) in parts.iter().enumerate() {
                let h = part.max(0.0);
                if !h.is_finite() || h == 0.0 {
                    continue;
                }
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as i32), y),
                        (SegmentValue::Exact(i as i32 + 1), y + h),
                    ],
                    PARTS[k].1.filled(),
                );
                r.set_margin(0, 0, 14, 14);
                chart.draw_series(std::iter::once(r)).map_err(err)?;
                y += h;
            }
            let style = TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            let text = if b.remainder_ms < 0.0 {
                format!("{:.1} (remainder {:.1})", b.client_ttft_ms, b.remainder_ms)
            } else {
                format!("{:.1}", b.client_ttft_ms)
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(i as i32), y.max(b.client_ttft_ms)),
                    style,
                )))
                .map_err(err)?;
        }
        for (k, (name, color)) in PARTS.iter().enumerate() {
            let y = 60 + 24 * k as i32;
            legend
                .draw(&Rectangle::new([(8, y), (22, y + 14)], color.filled()))
                .map_err(err)?;
            legend
                .draw(&Text::new(
                    name.to_string(),
                    (28, y + 1),
                    ("sans-serif", 12).into_font(),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf.replacen(
        "<svg ",
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" ",
            escape(&charts::label(title, 200))
        ),
        1,
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// The run's series file, when its server view names one inside the store.
pub fn series_rel(m: &Metadata) -> Option<&str> {
    let v: &ServerView = m.results.server_view.as_ref()?;
    let rel = v.series.as_ref()?.file.as_str();
    crate::store::is_store_relative(rel).then_some(rel)
}

/// Running and waiting requests (and the KV cache in percent) over the run, from its
/// series file (read through the store's no-follow open, at most [`MAX_READ_LINES`]).
pub fn series_chart(title: &str, path: &Path) -> Result<Option<String>> {
    use std::io::BufRead;
    let f = crate::store::nofollow::open_read(path)?;
    let (mut run, mut wait, mut kv) = (Vec::new(), Vec::new(), Vec::new());
    for line in std::io::BufReader::new(f).lines().take(MAX_READ_LINES) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        let Some(t) = v["t_s"].as_f64() else { continue };
        if let Some(x) = v["running"].as_f64() {
            run.push((t, x));
        }
        if let Some(x) = v["waiting"].as_f64() {
            wait.push((t, x));
        }
        if let Some(x) = v["kv_cache_usage"].as_f64() {
            kv.push((t, x * 100.0));
        }
    }
    if run.is_empty() && wait.is_empty() {
        return Ok(None);
    }
    let panel = |title: &str, y: &str, lines: Vec<Line>, range| LinePanel {
        title: title.into(),
        x_desc: "seconds".into(),
        y_desc: y.into(),
        x_axis: XAxis::Number,
        lines,
        markers: false,
        y_range: range,
        error_bars: Vec::new(),
    };
    let panels = vec![
        panel(
            "Requests in the server",
            "requests",
            vec![
                Line {
                    label: "running".into(),
                    color: 0,
                    points: run,
                },
                Line {
                    label: "waiting".into(),
                    color: 4,
                    points: wait,
                },
            ],
            None,
        ),
        panel(
            "KV cache used (%)",
            "%",
            vec![Line {
                label: "KV cache".into(),
                color: 2,
                points: kv,
            }],
            Some((0.0, 100.0)),
        ),
    ];
    charts::lines(title, &panels, 2, (460, 260)).map(Some)
}

/// The breakdown chart's file name of a head-to-head group.
pub fn breakdown_file(slug: &str) -> String {
    format!("{BREAKDOWN_PREFIX}{slug}.svg")
}

/// The series chart's file name of a run.
pub fn series_file(test_id: &str) -> String {
    format!("{SERIES_PREFIX}{}.svg", super::h2h::slug("server", test_id))
}

/// A stacked bar chart per head-to-head group where two platforms or more have a
/// breakdown (their latest runs').
pub fn draw_breakdowns(d: &super::Derived) -> Vec<(String, Result<String>)> {
    let mut out = Vec::new();
    for g in &d.h2h.groups {
        let bars: Vec<(String, Breakdown)> = g
            .entries
            .iter()
            .filter_map(|e| {
                let b = d.runs[e.latest]
                    .results
                    .server_view
                    .as_ref()?
                    .breakdown
                    .clone()?;
                Some((e.platform.clone(), b))
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        let title = format!("Where the TTFT went: {}", super::markdown::group_title(g));
        out.push((breakdown_file(&g.slug), breakdown_chart(&title, &bars)));
    }
    out
}

/// The running/waiting charts of the `max` most recent runs with a server series.
pub fn draw_series(
    store: &crate::store::Store,
    runs: &[Metadata],
    max: usize,
) -> Vec<(usize, String, Result<String>)> {
    let with: Vec<(usize, &str)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((i, series_rel(m)?)))
        .collect();
    let skip = with.len().saturating_sub(max);
    let mut out = Vec::new();
    for (i, rel) in with.into_iter().skip(skip) {
        let m = &runs[i];
        let title = format!("Server queue: {}", m.test_id);
        match series_chart(&title, &store.resolve(rel)) {
            Ok(Some(svg)) => out.push((i, series_file(&m.test_id), Ok(svg))),
            Ok(None) => {}
            Err(e) => out.push((i, series_file(&m.test_id), Err(e))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_draw_every_part_and_survive_odd_values() {
        let b = Breakdown {
            client_ttft_ms: 100.0,
            server_queue_ms: 60.0,
            server_prefill_ms: 30.0,
            remainder_ms: 10.0,
            ..Breakdown::default()
        };
        let neg = Breakdown {
            remainder_ms: -5.0,
            client_ttft_ms: 85.0,
            ..b.clone()
        };
        let svg = breakdown_chart(
            "Where <TTFT> went",
            &[("vllm".into(), b), ("proxy\u{7}".into(), neg)],
        )
        .unwrap();
        assert!(
            svg.contains("aria-label=\"Where &lt;TTFT&gt; went\""),
            "{svg}"
        );
        assert!(svg.contains("server queue") && svg.contains("network, HTTP, client"));
        assert!(svg.contains("remainder -5.0"));
        assert!(!svg.contains('\u{7}'));
        assert!(breakdown_chart("empty", &[]).is_ok());
    }

    #[test]
    fn the_breakdown_line_adds_up() {
        let b = Breakdown {
            client_ttft_ms: 200.0,
            server_queue_ms: 150.0,
            server_prefill_ms: 40.0,
            remainder_ms: 10.0,
            ..Breakdown::default()
        };
        assert_eq!(
            breakdown_line(&b),
            "200.0 ms = server queue 150.0 (75%) + server prefill 40.0 (20%) + network, HTTP and client 10.0 (5%)"
        );
    }
}
