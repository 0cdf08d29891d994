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
    results: &'a crate::schema::Results,
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
        results: &m.results,
    }
}

/// The summary document as a JSON value (also used by `compare --format json`).
pub fn value(runs: &Runs) -> Value {
    let s = Summary {
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
    };
    serde_json::to_value(s).expect("summary serializes")
}

/// The summary file's bytes.
pub fn render(runs: &Runs) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&value(runs)).expect("summary serializes");
    bytes.push(b'\n');
    bytes
}
