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
pub fn value(d: &Derived) -> Value {
    let s = Summary {
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
    };
    serde_json::to_value(s).expect("summary serializes")
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

/// The summary file's bytes.
pub fn render(d: &Derived) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&value(d)).expect("summary serializes");
    bytes.push(b'\n');
    bytes
}
