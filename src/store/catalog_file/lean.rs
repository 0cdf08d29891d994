//! The lean `Metadata` `compare` builds from a catalog row: the row's figures in the
//! places the metadata has them, every other part empty, enough for the comparison table,
//! its sort orders and the head-to-head.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::schema::{GpuInfo, Latencies, LatencySummary, Metadata, RepeatLink, Status, SweepLink};

/// A row's `run` as `compare` reads it: typed, unknown keys skipped.
#[derive(Debug, Deserialize)]
struct LeanLine {
    test_id: String,
    timestamp: String,
    platform: String,
    model: String,
    status: Status,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    run: Option<Lean>,
}

#[derive(Debug, Deserialize)]
struct Lean {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    sweep: Option<SweepLink>,
    #[serde(default)]
    repeat: Option<RepeatLink>,
    test: LeanTest,
    results: LeanResults,
    #[serde(default)]
    gpu: Option<LeanGpu>,
}

#[derive(Debug, Deserialize)]
struct LeanTest {
    #[serde(default)]
    num_requests: u64,
    #[serde(default)]
    input_file: Option<String>,
    #[serde(default)]
    input_sha256: Option<String>,
    #[serde(default)]
    synthetic: Option<Value>,
    #[serde(default)]
    load: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct LeanResults {
    #[serde(default)]
    success_count: u64,
    #[serde(default)]
    failure_count: u64,
    #[serde(default)]
    total_time_seconds: Option<f64>,
    #[serde(default)]
    model_load_time_seconds: Option<f64>,
    #[serde(default)]
    throughput_tokens_per_sec: Option<f64>,
    #[serde(default)]
    throughput_requests_per_sec: Option<f64>,
    #[serde(default)]
    output_tokens_per_sec: Option<f64>,
    #[serde(default)]
    avg_prompt_tokens: Option<f64>,
    #[serde(default)]
    avg_completion_tokens: Option<f64>,
    #[serde(default)]
    gpu_utilization_percent: Option<f64>,
    #[serde(default)]
    total_completion_tokens: u64,
    #[serde(default)]
    output_tokens_per_joule: Option<f64>,
    #[serde(default)]
    unknown: Option<Value>,
    #[serde(default)]
    latency_ms: Option<LeanLatencies>,
}

#[derive(Debug, Deserialize)]
struct LeanLatencies {
    #[serde(default)]
    ttft: Option<LeanStat>,
    #[serde(default)]
    tpot: Option<LeanStat>,
    #[serde(default)]
    itl: Option<LeanStat>,
    #[serde(default)]
    e2e: Option<LeanStat>,
}

/// A percentile the row lacks (or that was NaN, written `null`) is NaN.
#[derive(Debug, Deserialize)]
struct LeanStat {
    #[serde(default)]
    p50: Option<f64>,
    #[serde(default)]
    p95: Option<f64>,
    #[serde(default)]
    p99: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct LeanGpu {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    vram_used_gb: Option<f64>,
    #[serde(default)]
    energy_joules: Option<f64>,
}

impl LeanStat {
    /// What the row keeps of a latency summary; the rest (count, mean, p90, max, the
    /// interval) is unknown here: NaN, never shown by a listing.
    fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: 0,
            mean: f64::NAN,
            p50: self.p50.unwrap_or(f64::NAN),
            p90: f64::NAN,
            p95: self.p95.unwrap_or(f64::NAN),
            p99: self.p99.unwrap_or(f64::NAN),
            max: f64::NAN,
            ci: None,
        }
    }
}

/// A lean `Metadata` from a row's bytes: the row's figures in the places the metadata
/// has them, every other part empty (cloned from `template`). Enough for the comparison
/// table, its sort orders and the head-to-head, which read nothing else; `None` when the
/// row has no run or does not parse.
#[cfg(test)]
pub fn lean_metadata(line: &[u8], template: &Metadata) -> Option<Metadata> {
    let mut m = template.clone();
    fill_lean(line, &mut m).then_some(m)
}

/// [`lean_metadata`] into `m`, a clone of [`template`] already in its place: `false`
/// (and `m` untouched) when the row has no run or does not parse.
pub fn fill_lean(line: &[u8], m: &mut Metadata) -> bool {
    let Ok(line) = serde_json::from_slice::<LeanLine>(line) else {
        return false;
    };
    let Some(lean) = line.run else {
        return false;
    };
    m.schema_version = lean.schema_version;
    m.test_id = line.test_id;
    m.timestamp = line.timestamp;
    m.platform = line.platform;
    m.model = line.model;
    m.status = line.status;
    m.labels = line.labels;
    m.sweep = lean.sweep.map(Box::new);
    m.repeat = lean.repeat;
    m.test.num_requests = lean.test.num_requests;
    m.test.input_file = lean.test.input_file;
    // Kept only when it differs from the raw log's hash (`project`): no raw hash here.
    m.test.input_sha256 = lean.test.input_sha256;
    m.test.raw_sha256 = None;
    if let Some(s) = lean.test.synthetic {
        m.test.extra.insert("synthetic".into(), s);
    }
    if let Some(l) = lean.test.load {
        m.test.extra.insert("load".into(), l);
    }
    let (r, lr) = (&mut m.results, lean.results);
    r.success_count = lr.success_count;
    r.failure_count = lr.failure_count;
    r.total_time_seconds = lr.total_time_seconds.unwrap_or(f64::NAN);
    r.model_load_time_seconds = lr.model_load_time_seconds;
    r.throughput_tokens_per_sec = lr.throughput_tokens_per_sec.unwrap_or(f64::NAN);
    r.throughput_requests_per_sec = lr.throughput_requests_per_sec.unwrap_or(f64::NAN);
    r.output_tokens_per_sec = lr.output_tokens_per_sec.unwrap_or(f64::NAN);
    r.avg_prompt_tokens = lr.avg_prompt_tokens.unwrap_or(f64::NAN);
    r.avg_completion_tokens = lr.avg_completion_tokens.unwrap_or(f64::NAN);
    r.gpu_utilization_percent = lr.gpu_utilization_percent;
    r.total_completion_tokens = lr.total_completion_tokens;
    r.output_tokens_per_joule = lr.output_tokens_per_joule;
    if let Some(u) = lr.unknown {
        r.extra.insert("unknown".into(), u);
    }
    r.latency_ms = lr.latency_ms.map(|l| {
        Box::new(Latencies {
            ttft: l.ttft.as_ref().map(LeanStat::summary),
            tpot: l.tpot.as_ref().map(LeanStat::summary),
            itl: l.itl.as_ref().map(LeanStat::summary),
            e2e: l.e2e.as_ref().map(LeanStat::summary),
            ..Latencies::default()
        })
    });
    r.apply_unknown();
    m.gpu = lean.gpu.map(|g| {
        Box::new(GpuInfo {
            name: g.name,
            vram_used_gb: g.vram_used_gb,
            energy_joules: g.energy_joules,
            ..GpuInfo::default()
        })
    });
    true
}

/// The template a lean run is filled into: an empty run (empty strings: a clone
/// allocates nothing for them).
pub fn template() -> Metadata {
    let mut m = Metadata::new(
        crate::schema::SourceKind::Analyze,
        "",
        "",
        "",
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    );
    m.timestamp = String::new();
    m.tool.name = String::new();
    m.tool.version = String::new();
    m.host = Default::default();
    m
}
