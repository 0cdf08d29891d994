//! SVG charts drawn with plotters' SVG backend: pure functions from chart data to text.
//!
//! plotters is built without its `ttf` and `ab_glyph` features, so no system font, no
//! fontconfig and no freetype are involved: text becomes SVG `<text>` elements whose layout
//! the browser does (plotters only estimates their size). plotters escapes every text and
//! attribute it writes; labels are also stripped of control characters (which would make
//! a standalone `.svg` file invalid XML) and shortened.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colour-blind-safe palette (Okabe-Ito), one colour per platform.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x33, 0x33, 0x33),
];

/// The palette entry for a colour index.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// CSS hex of a colour index (for HTML legends next to the charts).
pub fn css_color(i: usize) -> String {
    let RGBColor(r, g, b) = color(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

const FONT: &str = "sans-serif";

/// Text safe for a chart label: no control characters, at most `max` characters.
pub fn label(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    super::h2h::truncate(clean.trim(), max)
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub color: usize,
    /// An error bar `(lo, hi)` drawn over the bar (a repeat group's interval).
    pub whisker: Option<(f64, f64)>,
}

/// One panel of bars sharing a unit.
#[derive(Debug, Clone)]
pub struct BarPanel {
    pub title: String,
    pub bars: Vec<Bar>,
    pub decimals: usize,
}

/// One line of a line panel.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: usize,
    pub points: Vec<(f64, f64)>,
}

/// How a line panel's x axis is labelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Plain numbers.
    Number,
    /// Days since the Unix epoch, labelled as dates.
    Date,
}

/// One panel of lines.
#[derive(Debug, Clone)]
pub struct LinePanel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_axis: XAxis,
    pub lines: Vec<Line>,
    /// Draw a dot at each point (trends: each dot is a run).
    pub markers: bool,
    /// Fixed y range (a CDF's 0..100 %); otherwise 0 to the largest value.
    pub y_range: Option<(f64, f64)>,
    /// Error bars (a sweep point's interval across repeats), drawn over the lines.
    pub error_bars: Vec<ErrorBars>,
}

/// Vertical error bars in one colour: `(x, lo, hi)` each.
#[derive(Debug, Clone)]
pub struct ErrorBars {
    pub color: usize,
    pub bars: Vec<(f64, f64, f64)>,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// Give the `<svg>` element an accessible name and a class.
fn finish(svg: String, title: &str) -> String {
    let mut name = String::new();
    for c in label(title, 200).chars() {
        match c {
            '&' => name.push_str("&amp;"),
            '<' => name.push_str("&lt;"),
            '>' => name.push_str("&gt;"),
            '"' => name.push_str("&quot;"),
            '\'' => name.push_str("&#39;"),
            c => name.push(c),
        }
    }
    svg.replacen(
        "<svg ",
        &format!("<svg class=\"chart\" role=\"img\" aria-label=\"{name}\" "),
        1,
    )
}

/// A readable tick label: 1234.5 -> "1234", 12.34 -> "12.3", 0.0123 -> "0.0123".
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Panels of bars side by side, one bar per platform, with the value above each bar.
pub fn bars(title: &str, panels: &[BarPanel]) -> Result<String> {
    let width = 260 * panels.len().max(1) as u32;
    let height = 300;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(&label(title, 90), (FONT, 17).into_font())
            .map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            bar_panel(area, panel)?;
        }
        root.present().map_err(err)?;
    }
    Ok(finish(buf, title))
}

fn bar_panel(area: &DrawingArea<SVGBackend, Shift>, panel: &BarPanel) -> Result<()> {
    let n = panel.bars.len().max(1) as i32;
    // A discrete i32 range includes its end: 0..n-1 makes exactly n segments.
    let top = panel
        .bars
        .iter()
        .flat_map(|b| [b.value, b.whisker.map(|w| w.1)])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.18 } else { 1.0 };
    let names: Vec<String> = panel.bars.iter().map(|b| label(&b.label, 14)).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(label(&panel.title, 40), (FONT, 14).into_font())
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(46)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_labels(n as usize)
        .y_labels(5)
        .label_style((FONT, 11).into_font())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(panel.bars.iter().enumerate().filter_map(|(i, b)| {
            let v = b.value.filter(|v| v.is_finite())?;
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i as i32), 0.0),
                    (SegmentValue::Exact(i as i32 + 1), v),
                ],
                color(b.color).filled(),
            );
            r.set_margin(0, 0, 10, 10);
            Some(r)
        }))
        .map_err(err)?;
    // error bars (a repeat group's interval): a capped vertical line over the bar
    chart
        .draw_series(panel.bars.iter().enumerate().filter_map(|(i, b)| {
            let (lo, hi) = b.whisker.filter(|w| w.0.is_finite() && w.1.is_finite())?;
            let mid = b.value.unwrap_or((lo + hi) / 2.0);
            Some(ErrorBar::new_vertical(
                SegmentValue::CenterOf(i as i32),
                lo.max(0.0),
                mid,
                hi,
                BLACK.mix(0.75).stroke_width(2),
                12,
            ))
        }))
        .map_err(err)?;
    let value_style =
        TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
            let (text, y) = match b.value.filter(|v| v.is_finite()) {
                Some(v) => (
                    format!("{:.*}", panel.decimals, v),
                    b.whisker.map_or(v, |w| w.1.max(v)),
                ),
                None => ("n/a".to_string(), 0.0),
            };
            Text::new(
                text,
                (SegmentValue::CenterOf(i as i32), y),
                value_style.clone(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// Panels of lines in a grid of `cols` columns; each panel has its own legend.
pub fn lines(
    title: &str,
    panels: &[LinePanel],
    cols: usize,
    panel_size: (u32, u32),
) -> Result<String> {
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let width = panel_size.0 * cols as u32;
    let height = panel_size.1 * rows as u32 + 30;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(&label(title, 90), (FONT, 17).into_font())
            .map_err(err)?;
        let areas = root.split_evenly((rows, cols));
        for (area, panel) in areas.iter().zip(panels) {
            line_panel(area, panel)?;
        }
        root.present().map_err(err)?;
    }
    Ok(finish(buf, title))
}

fn bounds(panel: &LinePanel) -> ((f64, f64), (f64, f64)) {
    let pts = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    for &(_, _, hi) in panel.error_bars.iter().flat_map(|e| e.bars.iter()) {
        if hi.is_finite() {
            y1 = y1.max(hi);
        }
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 <= f64::EPSILON * x1.abs().max(1.0) {
        let pad = if panel.x_axis == XAxis::Date {
            1.0 / 24.0
        } else {
            x0.abs().max(1.0) * 0.1
        };
        (x0, x1) = (x0 - pad, x1 + pad);
    } else if panel.x_axis == XAxis::Date {
        let pad = (x1 - x0) * 0.04;
        (x0, x1) = (x0 - pad, x1 + pad);
    }
    let y = panel
        .y_range
        .unwrap_or((0.0, if y1 > 0.0 { y1 * 1.12 } else { 1.0 }));
    ((x0, x1), y)
}

/// A date label; with the time of day when the axis spans less than three days.
fn date_label(days: f64, span_days: f64) -> String {
    let secs = (days * 86_400.0).round() as i64;
    let format = if span_days < 3.0 {
        "%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn line_panel(area: &DrawingArea<SVGBackend, Shift>, panel: &LinePanel) -> Result<()> {
    let ((x0, x1), (y0, y1)) = bounds(panel);
    let mut chart = ChartBuilder::on(area)
        .caption(label(&panel.title, 60), (FONT, 14).into_font())
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let x_axis = panel.x_axis;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_labels(if x_axis == XAxis::Date { 4 } else { 6 })
        .y_labels(5)
        .label_style((FONT, 11).into_font())
        .x_desc(label(&panel.x_desc, 40))
        .y_desc(label(&panel.y_desc, 40))
        .axis_desc_style((FONT, 12).into_font())
        .x_label_formatter(&|v| match x_axis {
            XAxis::Date => date_label(*v, x1 - x0),
            XAxis::Number => tick(*v),
        })
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    let mut any = false;
    for line in &panel.lines {
        let c = color(line.color);
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if pts.is_empty() {
            continue;
        }
        any = true;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(label(&line.label, 28))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(3)));
        if panel.markers {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(err)?;
        }
    }
    for e in &panel.error_bars {
        let c = color(e.color);
        chart
            .draw_series(
                e.bars
                    .iter()
                    .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
                    .map(|&(x, lo, hi)| {
                        ErrorBar::new_vertical(
                            x,
                            lo.max(y0),
                            (lo + hi) / 2.0,
                            hi,
                            c.stroke_width(1),
                            8,
                        )
                    }),
            )
            .map_err(err)?;
    }
    if any {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.2))
            .label_font((FONT, 11).into_font())
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
    } else {
        area.draw(&Text::new(
            "no data",
            (
                (area.dim_in_pixel().0 / 2) as i32,
                (area.dim_in_pixel().1 / 2) as i32,
            ),
            TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Keep the points up to `x_max`, ending exactly at it (interpolated).
pub(crate) fn clip_x(points: &[(f64, f64)], x_max: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    for (i, &(x, y)) in points.iter().enumerate() {
        if x <= x_max {
            out.push((x, y));
            continue;
        }
        if i > 0 {
            let (px, py) = points[i - 1];
            let y_at = if x > px {
                py + (y - py) * (x_max - px) / (x - px)
            } else {
                py
            };
            out.push((x_max, y_at));
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_escapes_and_names_itself() {
        let svg = bars(
            "group <b>&",
            &[BarPanel {
                title: "Output tok/s".into(),
                bars: vec![
                    Bar {
                        whisker: None,
                        label: "</script><img src=x onerror=alert(1)>".into(),
                        value: Some(120.0),
                        color: 0,
                    },
                    Bar {
                        whisker: None,
                        label: "vllm\u{1b}[31m".into(),
                        value: None,
                        color: 1,
                    },
                ],
                decimals: 1,
            }],
        )
        .unwrap();
        assert!(
            svg.starts_with(
                "<svg class=\"chart\" role=\"img\" aria-label=\"group &lt;b&gt;&amp;\" "
            )
        );
        assert!(!svg.contains("<img") && !svg.contains("<b>") && !svg.contains('\u{1b}'));
        assert!(svg.contains("120.0") && svg.contains("n/a"));
    }

    #[test]
    fn line_chart_handles_empty_and_single_points() {
        let panel = |points: Vec<(f64, f64)>, x_axis| LinePanel {
            title: "t".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            x_axis,
            lines: vec![Line {
                label: "a".into(),
                color: 0,
                points,
            }],
            markers: true,
            y_range: None,
            error_bars: Vec::new(),
        };
        let svg = lines(
            "x",
            &[
                panel(vec![], XAxis::Number),
                panel(vec![(20000.0, 5.0)], XAxis::Date),
                panel(vec![(1.0, f64::NAN), (2.0, 3.0)], XAxis::Number),
            ],
            2,
            (400, 250),
        )
        .unwrap();
        assert!(svg.contains("no data"));
        assert!(svg.contains("10-04 "), "date labels with the time of day");
    }

    #[test]
    fn error_bars_are_drawn_one_capped_line_each() {
        let panel = |error_bars| LinePanel {
            title: "t".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            x_axis: XAxis::Number,
            lines: vec![Line {
                label: "a".into(),
                color: 0,
                points: vec![(1.0, 10.0), (2.0, 20.0)],
            }],
            markers: true,
            y_range: None,
            error_bars,
        };
        let count = |e| {
            lines("x", &[panel(e)], 1, (400, 250))
                .unwrap()
                .matches("<line")
                .count()
        };
        let bars = ErrorBars {
            color: 0,
            bars: vec![(1.0, 8.0, 12.0), (2.0, 15.0, 40.0), (3.0, f64::NAN, 1.0)],
        };
        // a vertical line and two caps per finite bar; the NaN one is skipped
        assert_eq!(count(vec![bars]) - count(Vec::new()), 6);
        // the y axis reaches the top of the highest bar
        let svg = lines(
            "x",
            &[panel(vec![ErrorBars {
                color: 0,
                bars: vec![(2.0, 15.0, 400.0)],
            }])],
            1,
            (400, 250),
        )
        .unwrap();
        assert!(svg.lines().any(|l| l.trim() == "400"), "{svg}");
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(1234.5), "1234");
        assert_eq!(tick(12.34), "12.3");
        assert_eq!(tick(0.0123), "0.012");
        assert_eq!(tick(0.0), "0");
    }
}
