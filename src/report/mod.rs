//! Derived views of the store: pure functions from runs (and raw files) to bytes.
//!
//! Two tiers, both re-derivable at any time (RELIABILITY.md P5):
//!
//! * [`tier1_files`], after every change to the store (`analyze`, `run`, `record`,
//!   `compare`): `analysis/summary.json`, `reports/COMPARISON.md` (the seed's table, the
//!   head-to-head, trends, latency percentiles) and the charts it links in
//!   `reports/charts/`. Metadata only, so it stays fast on a large store.
//! * [`report_files`], for `benchkeep report`: all of the above plus `reports/index.html`,
//!   the self-contained page, whose latency distributions, example errors and GPU time
//!   series come from the raw files. Until `report` is run again the page describes the
//!   store as it was then (it says how many runs it covers).
//!
//! Renderers take a finished model and return bytes; nothing inside reads the clock or
//! writes a file: [`crate::derive`] decides when to render and writes what comes back.

pub mod bundle;
pub mod charts;
pub mod cost;
pub mod decision;
pub mod deltas;
pub mod detail;
pub mod export;
pub mod gate;
pub mod h2h;
pub mod html;
pub mod intervals;
pub mod markdown;
pub mod matrix;
pub mod names;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod rawdata;
pub mod rows;
pub mod server_view;
pub mod steady;
pub mod summary_json;
pub mod sweep;
pub mod table;
pub mod trackers;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::schema::Metadata;
use crate::store::{Runs, Skipped, Store};
use charts::{Bar, BarPanel, Line, LinePanel, XAxis};
use h2h::{HeadToHead, METRICS, Settings};
use rawdata::{GpuSeries, Latency};

/// Store-relative path of the summary.
pub const SUMMARY_PATH: &str = "analysis/summary.json";
/// Store-relative path of the comparison report.
pub const COMPARISON_PATH: &str = "reports/COMPARISON.md";
/// Store-relative path of the HTML report.
pub const HTML_PATH: &str = "reports/index.html";
/// Store-relative directory of the chart files.
pub const CHARTS_DIR: &str = "reports/charts";

/// The derived files [`tier1_files`] produces (store-relative); its charts come with
/// COMPARISON.md.
pub const DERIVED_FILES: &[&str] = &[SUMMARY_PATH, COMPARISON_PATH];

/// Latency distribution charts drawn at most (the most recent comparison sets).
pub const MAX_LATENCY_CHARTS: usize = 60;
/// GPU time series charts drawn at most (the most recent runs that sampled one).
pub const MAX_GPU_CHARTS: usize = 40;
/// Runs with failures whose raw log is read for example errors (the most recent).
pub const MAX_ERROR_RUNS: usize = 40;

/// Chart file prefixes written by [`tier1_files`] (stale ones are removed).
pub const TIER1_PREFIXES: [&str; 5] = [
    "h2h-",
    "trend-",
    sweep::CHART_PREFIX,
    server_view::BREAKDOWN_PREFIX,
    "repeats",
];
/// Chart file prefixes written only by [`report_files`].
pub const TIER2_PREFIXES: [&str; 3] = ["latency-", "gpu-", server_view::SERIES_PREFIX];

/// The metadata-derived model: runs, head-to-head, and the charts drawn from them.
pub struct Derived<'a> {
    pub runs: &'a [Metadata],
    pub skipped: &'a [Skipped],
    pub settings: Settings,
    pub h2h: HeadToHead,
    /// The stored sweeps, their conclusions and like-for-like groups.
    pub sweeps: sweep::Sweeps,
    /// Platform name -> colour index (the same colour in every chart).
    pub colors: BTreeMap<String, usize>,
    /// Group slug -> chart file name in `charts/`.
    pub group_charts: BTreeMap<String, String>,
    /// (family, chart file name), by family.
    pub trend_charts: Vec<(String, String)>,
    /// Chart file name -> SVG text.
    pub svgs: BTreeMap<String, String>,
    /// Charts that could not be drawn.
    pub warnings: Vec<String>,
}

impl<'a> Derived<'a> {
    /// Group the runs (no chart is drawn yet: see [`Derived::draw_charts`]).
    pub fn build(runs: &'a Runs, settings: Settings) -> Derived<'a> {
        let h2h = h2h::build(&runs.runs, &settings);
        let platforms: BTreeSet<&str> = runs.runs.iter().map(|m| m.platform.as_str()).collect();
        let colors = platforms
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), i))
            .collect();
        Derived {
            runs: &runs.runs,
            skipped: &runs.skipped,
            settings,
            h2h,
            sweeps: sweep::build(&runs.runs),
            colors,
            group_charts: BTreeMap::new(),
            trend_charts: Vec::new(),
            svgs: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Draw the head-to-head and trend charts.
    pub fn draw_charts(&mut self) {
        self.draw_group_charts();
        self.draw_trend_charts();
        let repeats = intervals::groups(self.runs);
        if let Some(svg) = intervals::chart(&repeats, &|p| self.color(p)) {
            self.add_chart(intervals::CHART_FILE.to_string(), svg);
        }
        let drawn = sweep::draw(&self.sweeps, &|p| self.color(p));
        for (g, file, svg) in drawn {
            if self.add_chart(file.clone(), svg) {
                self.sweeps.groups[g].chart = Some(file);
            }
        }
        for (file, svg) in server_view::draw_breakdowns(self) {
            self.add_chart(file, svg);
        }
    }

    /// The colour index of a platform.
    pub fn color(&self, platform: &str) -> usize {
        self.colors.get(platform).copied().unwrap_or(0)
    }

    fn add_chart(&mut self, file: String, drawn: Result<String>) -> bool {
        match drawn {
            Ok(svg) => {
                self.svgs.insert(file, svg);
                true
            }
            Err(e) => {
                self.warnings.push(format!("chart {file}: {e:#}"));
                false
            }
        }
    }

    fn draw_group_charts(&mut self) {
        let mut drawn = Vec::new();
        for g in &self.h2h.groups {
            let panels: Vec<BarPanel> = [0usize, 2, 3, 6]
                .iter()
                .filter(|&&k| g.entries.iter().any(|e| e.values[k].is_some()))
                .map(|&k| BarPanel {
                    title: METRICS[k].label.to_string(),
                    decimals: METRICS[k].decimals.min(2),
                    bars: g
                        .entries
                        .iter()
                        .map(|e| Bar {
                            label: e.platform.clone(),
                            value: e.values[k],
                            color: self.color(&e.platform),
                            whisker: None,
                        })
                        .collect(),
                })
                .collect();
            let title = markdown::group_title(g);
            drawn.push((
                g.slug.clone(),
                format!("h2h-{}.svg", g.slug),
                charts::bars(&title, &panels),
            ));
        }
        for (slug, file, svg) in drawn {
            if self.add_chart(file.clone(), svg) {
                self.group_charts.insert(slug, file);
            }
        }
    }

    fn draw_trend_charts(&mut self) {
        // family -> platform -> [(day, output tok/s, ttft p50)]
        type Point = (f64, f64, Option<f64>);
        type Points = Vec<Point>;
        let mut fams: BTreeMap<String, BTreeMap<String, Points>> = BTreeMap::new();
        for m in self.runs {
            if h2h::unusable_reason(m).is_some() {
                continue;
            }
            let Some(day) = day_of(&m.timestamp) else {
                continue;
            };
            fams.entry(h2h::model_family(m))
                .or_default()
                .entry(m.platform.clone())
                .or_default()
                .push((day, m.results.output_tokens_per_sec, (METRICS[3].get)(m)));
        }
        for (family, platforms) in fams {
            // A trend needs a platform with two runs or more.
            if platforms.values().all(|pts| pts.len() < 2) {
                continue;
            }
            let line = |pick: &dyn Fn(&Point) -> Option<f64>| -> Vec<Line> {
                platforms
                    .iter()
                    .map(|(p, pts)| Line {
                        label: p.clone(),
                        color: self.color(p),
                        points: pts.iter().filter_map(|t| Some((t.0, pick(t)?))).collect(),
                    })
                    .collect()
            };
            let mut panels = vec![LinePanel {
                title: "Output tok/s".into(),
                x_desc: "run date".into(),
                y_desc: "tok/s".into(),
                x_axis: XAxis::Date,
                lines: line(&|t| Some(t.1)),
                markers: true,
                y_range: None,
                error_bars: Vec::new(),
            }];
            if platforms.values().flatten().any(|t| t.2.is_some()) {
                panels.push(LinePanel {
                    title: "TTFT p50 (ms)".into(),
                    x_desc: "run date".into(),
                    y_desc: "ms".into(),
                    x_axis: XAxis::Date,
                    lines: line(&|t| t.2),
                    markers: true,
                    y_range: None,
                    error_bars: Vec::new(),
                });
            }
            let file = format!("trend-{}.svg", h2h::slug(&family, "trend"));
            let svg = charts::lines(&format!("Trend: {family}"), &panels, 2, (520, 300));
            if self.add_chart(file.clone(), svg) {
                self.trend_charts.push((family, file));
            }
        }
    }
}

/// Days since the Unix epoch of an RFC 3339 timestamp.
pub fn day_of(ts: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some(t.timestamp() as f64 / 86_400.0)
}

/// Runs whose latency distributions are drawn together: a head-to-head group's latest
/// runs, or one platform's latest run on an input nobody else ran.
#[derive(Debug, Clone)]
pub struct LatencySet {
    pub title: String,
    /// Anchor of the head-to-head group, when it is one.
    pub group: Option<String>,
    /// (platform, run index).
    pub members: Vec<(String, usize)>,
    /// Chart file name in `charts/`, once drawn.
    pub chart: Option<String>,
}

/// The whole HTML report's model: the metadata model plus what the raw files said.
pub struct Full<'a> {
    pub derived: Derived<'a>,
    pub latency_sets: Vec<LatencySet>,
    /// Sets not drawn because of [`MAX_LATENCY_CHARTS`].
    pub latency_sets_omitted: usize,
    /// Run index -> what its raw log said.
    pub latency: BTreeMap<usize, Latency>,
    /// Run index -> why its raw log could not be read.
    pub raw_errors: BTreeMap<usize, String>,
    /// Run index -> GPU chart file name.
    pub gpu_charts: BTreeMap<usize, String>,
    /// Runs with a GPU series not drawn because of [`MAX_GPU_CHARTS`].
    pub gpu_omitted: usize,
}

impl<'a> Full<'a> {
    /// Read the raw files the report draws (in parallel) and draw their charts.
    pub fn build(store: &Store, derived: Derived<'a>) -> Full<'a> {
        let runs = derived.runs;
        let mut sets: Vec<LatencySet> = Vec::new();
        for g in &derived.h2h.groups {
            let members: Vec<(String, usize)> = g
                .entries
                .iter()
                .filter(|e| rawdata::has_latency(&runs[e.latest]))
                .map(|e| (e.platform.clone(), e.latest))
                .collect();
            if !members.is_empty() {
                sets.push(LatencySet {
                    title: markdown::group_title(g),
                    group: Some(g.slug.clone()),
                    members,
                    chart: None,
                });
            }
        }
        for u in &derived.h2h.unpaired {
            let m = &runs[u.run];
            if rawdata::has_latency(m) && h2h::unusable_reason(m).is_none() {
                sets.push(LatencySet {
                    title: format!("{}: {}", u.platform, m.test_id),
                    group: None,
                    members: vec![(u.platform.clone(), u.run)],
                    chart: None,
                });
            }
        }
        // Most recent first; draw a bounded number.
        let newest = |s: &LatencySet| s.members.iter().map(|&(_, r)| r).max().unwrap_or(0);
        sets.sort_by_key(|s| std::cmp::Reverse(newest(s)));
        let omitted = sets.len().saturating_sub(MAX_LATENCY_CHARTS);
        sets.truncate(MAX_LATENCY_CHARTS);
        sets.sort_by_key(|s| (s.group.is_none(), s.title.clone()));

        // Runs whose raw log is read: the charted ones, and the latest runs with failures
        // (for their example error messages).
        let with_failures = runs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.results.failure_count > 0)
            .map(|(i, _)| i)
            .rev()
            .take(MAX_ERROR_RUNS);
        let to_read: Vec<usize> = sets
            .iter()
            .flat_map(|s| s.members.iter().map(|&(_, r)| r))
            .chain(with_failures)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut gpu_runs: Vec<(usize, std::path::PathBuf)> = runs
            .iter()
            .enumerate()
            .filter_map(|(i, m)| rawdata::gpu_path(store, m).map(|p| (i, p)))
            .collect();
        let gpu_omitted = gpu_runs.len().saturating_sub(MAX_GPU_CHARTS);
        gpu_runs.drain(..gpu_omitted);

        enum Job {
            Latency(usize),
            Gpu(usize, std::path::PathBuf),
        }
        enum Done {
            Latency(usize, Result<Latency>),
            Gpu(usize, Result<Vec<GpuSeries>>),
        }
        let jobs: Vec<Job> = to_read
            .iter()
            .map(|&r| Job::Latency(r))
            .chain(gpu_runs.into_iter().map(|(r, p)| Job::Gpu(r, p)))
            .collect();
        let done = rawdata::parallel(&jobs, |job| match job {
            Job::Latency(r) => Done::Latency(*r, rawdata::read_latency(store, &runs[*r])),
            Job::Gpu(r, p) => Done::Gpu(*r, rawdata::read_gpu(p)),
        });

        let mut full = Full {
            derived,
            latency_sets: Vec::new(),
            latency_sets_omitted: omitted,
            latency: BTreeMap::new(),
            raw_errors: BTreeMap::new(),
            gpu_charts: BTreeMap::new(),
            gpu_omitted,
        };
        let mut gpu_data = Vec::new();
        for d in done {
            match d {
                Done::Latency(r, Ok(l)) => {
                    full.latency.insert(r, l);
                }
                Done::Latency(r, Err(e)) => {
                    full.raw_errors.insert(r, format!("{e:#}"));
                }
                Done::Gpu(r, Ok(series)) if !series.is_empty() => gpu_data.push((r, series)),
                Done::Gpu(..) => {}
            }
        }
        for mut set in sets {
            if let Some(file) = full.draw_latency(&set) {
                set.chart = Some(file);
            }
            full.latency_sets.push(set);
        }
        for (r, series) in gpu_data {
            full.draw_gpu(r, &series);
        }
        for (_, file, svg) in server_view::draw_series(store, runs, MAX_GPU_CHARTS) {
            full.derived.add_chart(file, svg);
        }
        full
    }

    fn draw_latency(&mut self, set: &LatencySet) -> Option<String> {
        type Pick = fn(&Latency) -> Option<&rawdata::Cdf>;
        let pick: [(&str, Pick); 3] = [
            ("TTFT", |l| l.ttft.as_ref()),
            ("TPOT", |l| l.tpot.as_ref()),
            ("E2E", |l| l.e2e.as_ref()),
        ];
        let mut panels = Vec::new();
        for (name, get) in pick {
            let cdfs: Vec<(&str, &rawdata::Cdf)> = set
                .members
                .iter()
                .filter_map(|(p, r)| Some((p.as_str(), get(self.latency.get(r)?)?)))
                .collect();
            if cdfs.is_empty() {
                continue;
            }
            // The x axis ends at the largest p99, so the tail does not squash the body.
            let x_max = cdfs.iter().map(|(_, c)| c.at(99.0)).fold(0.0, f64::max);
            panels.push(LinePanel {
                title: format!("{name} distribution (ms)"),
                x_desc: "ms (axis ends at the largest p99)".into(),
                y_desc: "% of requests at or below".into(),
                x_axis: XAxis::Number,
                lines: cdfs
                    .iter()
                    .map(|(p, c)| Line {
                        label: (*p).to_string(),
                        color: self.derived.color(p),
                        points: charts::clip_x(&c.points(), x_max),
                    })
                    .collect(),
                markers: false,
                y_range: Some((0.0, 100.0)),
                error_bars: Vec::new(),
            });
        }
        if panels.is_empty() {
            return None;
        }
        let key = set
            .members
            .iter()
            .map(|(_, r)| self.derived.runs[*r].test_id.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let file = format!("latency-{}.svg", h2h::slug("cdf", &key));
        let svg = charts::lines(
            &format!("Latency CDF: {}", set.title),
            &panels,
            3,
            (400, 300),
        );
        self.derived.add_chart(file.clone(), svg).then_some(file)
    }

    fn draw_gpu(&mut self, run: usize, series: &[GpuSeries]) {
        let lines = |pick: fn(&GpuSeries) -> &Vec<(f64, f64)>| -> Vec<Line> {
            series
                .iter()
                .map(|s| Line {
                    label: format!("GPU {}", s.gpu),
                    color: s.gpu as usize,
                    points: pick(s).clone(),
                })
                .collect()
        };
        let panel = |title: &str, y: &str, l: Vec<Line>, range: Option<(f64, f64)>| LinePanel {
            title: title.into(),
            x_desc: "seconds".into(),
            y_desc: y.into(),
            x_axis: XAxis::Number,
            lines: l,
            markers: false,
            y_range: range,
            error_bars: Vec::new(),
        };
        let panels = vec![
            panel("Memory used (GB)", "GB", lines(|s| &s.memory_gb), None),
            panel(
                "Utilization (%)",
                "%",
                lines(|s| &s.utilization_percent),
                Some((0.0, 100.0)),
            ),
            panel("Power (W)", "W", lines(|s| &s.power_w), None),
        ];
        let m = &self.derived.runs[run];
        let file = format!("gpu-{}.svg", h2h::slug("gpu", &m.test_id));
        let svg = charts::lines(&format!("GPU: {}", m.test_id), &panels, 3, (400, 260));
        if self.derived.add_chart(file.clone(), svg) {
            self.gpu_charts.insert(run, file);
        }
    }
}

/// One rendered derived file: its store-relative path and its bytes.
pub type File = (String, Vec<u8>);

/// The metadata-derived files (charts, summary.json, COMPARISON.md) of `runs`, and the
/// warnings of their build (charts not drawn). The files are pure functions of the
/// metadata (no clock inside), so a writer can leave a file alone whose bytes would not
/// change: `compare` on a large, unchanged store writes nothing.
pub fn tier1_files(runs: &Runs, settings: Settings) -> (Vec<File>, Vec<String>) {
    let mut d = Derived::build(runs, settings);
    d.draw_charts();
    let files = tier1_of(&d);
    (files, d.warnings)
}

fn tier1_of(d: &Derived) -> Vec<File> {
    let mut files: Vec<File> = d
        .svgs
        .iter()
        .map(|(file, svg)| (format!("{CHARTS_DIR}/{file}"), svg.clone().into_bytes()))
        .collect();
    files.extend(d.sweeps.views.iter().map(|v| (v.path(), sweep::render(v))));
    files.push((SUMMARY_PATH.to_string(), summary_json::render(d)));
    files.push((
        COMPARISON_PATH.to_string(),
        markdown::comparison(d).into_bytes(),
    ));
    files
}

/// What `benchkeep report` renders: every derived file including `reports/index.html`.
#[derive(Debug)]
pub struct Rendered {
    pub files: Vec<File>,
    pub runs: usize,
    pub groups: usize,
    pub charts: usize,
    pub warnings: Vec<String>,
}

/// Every derived file including `reports/index.html`, whose raw-data charts read the
/// store's raw files.
pub fn report_files(store: &Store, runs: &Runs, settings: Settings) -> Rendered {
    let mut d = Derived::build(runs, settings);
    d.draw_charts();
    let full = Full::build(store, d);
    let mut files = tier1_of(&full.derived);
    files.push((HTML_PATH.to_string(), html::render(&full).into_bytes()));
    Rendered {
        files,
        runs: runs.runs.len(),
        groups: full.derived.h2h.groups.len(),
        charts: full.derived.svgs.len(),
        warnings: full.derived.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_interpolates_at_the_edge() {
        let pts = [(0.0, 0.0), (10.0, 50.0), (30.0, 100.0)];
        assert_eq!(
            charts::clip_x(&pts, 20.0),
            vec![(0.0, 0.0), (10.0, 50.0), (20.0, 75.0)]
        );
        assert_eq!(charts::clip_x(&pts, 40.0), pts.to_vec());
    }

    #[test]
    fn days() {
        assert_eq!(day_of("1970-01-02T00:00:00Z"), Some(1.0));
        assert_eq!(day_of("yesterday"), None);
    }
}
