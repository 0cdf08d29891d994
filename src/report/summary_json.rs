//! `analysis/summary.json`: every run summarized in one file, for scripts and dashboards.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::report::Derived;
use crate::report::h2h::{HeadToHead, METRICS};
use crate::report::rows::Row;
use crate::schema::Metadata;

#[derive(Serialize)]
struct Summary<'a> {
    schema_version: u32,
    generated_by: String,
    run_count: usize,
    runs: Vec<RunSummary<'a>>,
    /// Metadata files readers skipped, with the reason.
    skipped: Vec<SkippedFile>,
    /// Like-for-like groups with ratios to the baseline platform, and runs not compared.
    head_to_head: Value,
    /// Each stored sweep's headline conclusions (the full ones are in
    /// `analysis/sweeps/<id>.json`); absent when there is no sweep.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sweeps: Vec<Value>,
}

#[derive(Serialize)]
struct SkippedFile {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct RunSummary<'a> {
    #[serde(flatten)]
    row: Row,
    labels: &'a std::collections::BTreeMap<String, String>,
    gpu: Option<&'a str>,
    input_sha256: Option<&'a str>,
    source: &'static str,
    success_count: u64,
    failure_count: u64,
    model_load_time_seconds: Option<f64>,
    errors_by_kind: &'a std::collections::BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_p50_ms: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_p99_ms: Option<Percentiles>,
}

/// One percentile of each latency.
#[derive(Serialize)]
struct Percentiles {
    ttft: Option<f64>,
    tpot: Option<f64>,
    itl: Option<f64>,
    e2e: Option<f64>,
}

fn percentiles(
    l: &crate::schema::Latencies,
    pick: fn(&crate::schema::LatencySummary) -> f64,
) -> Percentiles {
    Percentiles {
        ttft: l.ttft.as_ref().map(pick),
        tpot: l.tpot.as_ref().map(pick),
        itl: l.itl.as_ref().map(pick),
        e2e: l.e2e.as_ref().map(pick),
    }
}

fn run_summary(m: &Metadata) -> RunSummary<'_> {
    RunSummary {
        row: Row::from_metadata(m),
        labels: &m.labels,
        gpu: m.gpu.as_ref().and_then(|g| g.name.as_deref()),
        input_sha256: m.test.input_sha256.as_deref(),
        source: match m.source.kind {
            crate::schema::SourceKind::Run => "run",
            crate::schema::SourceKind::Record => "record",
            crate::schema::SourceKind::Analyze => "analyze",
            crate::schema::SourceKind::Import => "import",
        },
        success_count: m.results.success_count,
        failure_count: m.results.failure_count,
        model_load_time_seconds: m.results.model_load_time_seconds,
        errors_by_kind: &m.results.errors_by_kind,
        latency_p50_ms: m
            .results
            .latency_ms
            .as_ref()
            .map(|l| percentiles(l, |s| s.p50)),
        latency_p99_ms: m
            .results
            .latency_ms
            .as_ref()
            .map(|l| percentiles(l, |s| s.p99)),
    }
}

fn document<'a>(d: &'a Derived) -> Summary<'a> {
    Summary {
        schema_version: crate::schema::SCHEMA_VERSION,
        generated_by: format!("benchkeep {}", env!("CARGO_PKG_VERSION")),
        run_count: d.runs.len(),
        runs: d.runs.iter().map(run_summary).collect(),
        skipped: d
            .skipped
            .iter()
            .map(|s| SkippedFile {
                path: s.path.display().to_string(),
                reason: s.reason.clone(),
            })
            .collect(),
        head_to_head: head_to_head(d.runs, &d.h2h, d.settings.baseline_platform.as_deref()),
        sweeps: d
            .sweeps
            .views
            .iter()
            .map(|v| {
                serde_json::json!({
                    "sweep_id": v.runs.id,
                    "platform": v.runs.platform,
                    "model": v.runs.model,
                    "axis": v.analysis.axis,
                    "points": v.analysis.points.len(),
                    "knee": v.analysis.knee.knee,
                    "max_goodput_load": v.analysis.max_goodput.max_load,
                    "file": v.path(),
                })
            })
            .collect(),
    }
}

/// The summary document as a JSON value (also used by `compare --format json`).
pub fn value(d: &Derived) -> Value {
    serde_json::to_value(document(d)).expect("summary serializes")
}

/// The summary file's bytes (one entry per run with its headline figures; the full
/// results stay in each run's metadata file), and the head-to-head.
pub fn render(d: &Derived) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&document(d)).expect("summary serializes");
    bytes.push(b'\n');
    bytes
}

fn by_metric<T: Serialize>(values: &[Option<T>]) -> BTreeMap<&'static str, &T> {
    METRICS
        .iter()
        .zip(values)
        .filter_map(|(d, v)| Some((d.key, v.as_ref()?)))
        .collect()
}

/// The head-to-head as JSON: groups (figures, ratios, spread per platform) and the runs
/// that have no partner, with the reason.
pub fn head_to_head(runs: &[Metadata], h: &HeadToHead, baseline: Option<&str>) -> Value {
    let groups: Vec<Value> = h
        .groups
        .iter()
        .map(|g| {
            let platforms: Vec<Value> = g
                .entries
                .iter()
                .map(|e| {
                    json!({
                        "platform": e.platform,
                        "latest_test_id": runs[e.latest].test_id,
                        "test_ids": e.runs.iter().map(|&r| runs[r].test_id.as_str()).collect::<Vec<_>>(),
                        "figures": by_metric(&e.values),
                        "ratios": by_metric(&e.ratios),
                        "spread": by_metric(&e.spread),
                    })
                })
                .collect();
            json!({
                "id": g.slug,
                "family": g.family,
                "input": g.input,
                "models": g.models,
                "input_files": g.input_files,
                "baseline_platform": g.baseline().platform,
                "baseline_note": g.baseline_note,
                "summary": g.ratio_sentences(),
                "platforms": platforms,
            })
        })
        .collect();
    let unpaired: Vec<Value> = h
        .unpaired
        .iter()
        .map(|u| {
            json!({
                "test_id": runs[u.run].test_id,
                "platform": u.platform,
                "model": runs[u.run].model,
                "family": u.family,
                "input": u.input,
                "runs": u.count,
                "reason": u.reason,
            })
        })
        .collect();
    json!({
        "baseline_platform_requested": baseline,
        "groups": groups,
        "not_compared": unpaired,
    })
}
