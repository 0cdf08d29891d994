//! `analysis/summary.json`: every run summarized in one file, for scripts and dashboards.

use serde::Serialize;
use serde_json::Value;

use crate::report::rows::Row;
use crate::schema::Metadata;
use crate::store::Runs;

#[derive(Serialize)]
struct Summary<'a> {
    schema_version: u32,
    generated_by: String,
    run_count: usize,
    runs: Vec<RunSummary<'a>>,
    /// Metadata files readers skipped, with the reason.
    skipped: Vec<SkippedFile>,
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

fn document(runs: &Runs) -> Summary<'_> {
    Summary {
        schema_version: crate::schema::SCHEMA_VERSION,
        generated_by: format!("benchkeep {}", env!("CARGO_PKG_VERSION")),
        run_count: runs.runs.len(),
        runs: runs.runs.iter().map(run_summary).collect(),
        skipped: runs
            .skipped
            .iter()
            .map(|s| SkippedFile {
                path: s.path.display().to_string(),
                reason: s.reason.clone(),
            })
            .collect(),
    }
}

/// The summary document as a JSON value (also used by `compare --format json`).
pub fn value(runs: &Runs) -> Value {
    serde_json::to_value(document(runs)).expect("summary serializes")
}

/// The summary file's bytes (one entry per run with its headline figures; the full
/// results stay in each run's metadata file).
pub fn render(runs: &Runs) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&document(runs)).expect("summary serializes");
    bytes.push(b'\n');
    bytes
}
