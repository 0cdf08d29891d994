//! The records benchkeep keeps on disk: run metadata (the seed's schema, extended) and the
//! normalized per-request record every source is turned into.
//!
//! Every struct keeps unknown keys in an `extra` map, so a file written by a newer benchkeep
//! (or edited by hand) survives a read-modify-write without losing a field. The metadata is
//! here; the per-request record is in [`record`].

mod record;
pub mod server_view;
mod status;
mod steady;
mod uncertainty;

pub use record::{
    ErrorKind, ItlOverflow, MAX_FINISH_REASON_BYTES, MAX_ITL_GAPS, MAX_RAW_LINE_BYTES,
    RequestRecord, ServerTimings,
};
pub use status::Status;
pub use steady::{SteadyState, ThroughputCi, method as steady_method};
pub use uncertainty::{Bounds, CiMethod, PercentileCi, RepeatLink};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of the metadata layout this build writes. Readers skip files with a higher one.
pub const SCHEMA_VERSION: u32 = 1;

/// Version of the raw record line format this build writes (`record_version`, first key of
/// every line of a `run` raw log). Lines written before the field existed have none and
/// read as 1. Readers ignore unknown fields, so adding an optional field keeps the version;
/// renaming a field or changing a meaning or unit bumps it. See `schemas/README.md`.
pub const RECORD_VERSION: u32 = 1;

/// Where a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `benchkeep run`: requests sent by benchkeep itself.
    Run,
    /// `benchkeep record`: an offline command wrapped and timed.
    Record,
    /// `benchkeep analyze`: an existing results file imported.
    Analyze,
    /// `benchkeep import`: a run another tool made, from its result files (treated like an
    /// analyzed run everywhere: nothing to recover, no live raw log).
    Import,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One benchmark run: `metadata/<test_id>.json`.
///
/// The seed's keys (`test_id, timestamp, platform, model, gpu, config, test, results,
/// status`) keep their names and places; everything else is an addition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub schema_version: u32,
    pub test_id: String,
    /// RFC 3339, UTC, seconds precision (`2024-10-28T07:38:12Z`): when the run started.
    pub timestamp: String,
    pub platform: String,
    /// The model as the user named it (not made file-safe).
    pub model: String,
    #[serde(default)]
    pub gpu: Option<Box<GpuInfo>>,
    /// Server or engine settings as given with `--config` (always a JSON object).
    #[serde(default)]
    pub config: Map<String, Value>,
    pub test: TestInfo,
    pub results: Results,
    pub status: Status,
    pub tool: ToolInfo,
    #[serde(default)]
    pub host: HostInfo,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub source: SourceInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Box<ServerInfo>>,
    /// Process id of the writer while `status` is `running` (lets `verify` spot a dead run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Who the writer is while `status` is `running`: pid, start time, boot id and host
    /// (RELIABILITY P12), so that a reused pid never makes a dead run look alive. Absent
    /// in metadata written before benchkeep recorded it: the pid alone is checked then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Box<ProcessIdentity>>,
    /// The sweep (or tuning matrix) this run is one point of: `sweep.id`, `sweep.index`,
    /// `sweep.axis`, `sweep.value`. Absent for a run made on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Box<SweepLink>>,
    /// The `run --repeat N` group this run is one repeat of. Absent for a single run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatLink>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What links the runs of one sweep or matrix: every point is a normal run in the store,
/// and these keys put it back in its place. The sweep's conclusions are derived from the
/// points (`analysis/sweeps/<id>.json`), so nothing here is the only copy of anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SweepLink {
    /// The sweep's id: `sweep-{platform}-{model}-{date}[-N]`, shared by its points.
    pub id: String,
    /// Position in the sweep's plan (0-based). A rerun of a point keeps its index.
    pub index: u32,
    /// The load axis: `concurrency` or `rate` (requests per second); `matrix` for a tuning
    /// matrix whose points differ only in settings.
    pub axis: String,
    /// The load on the axis at this point (the concurrency, or the offered rate).
    pub value: f64,
    /// Why this point was run: `point` (a planned point), `synchronous` and `throughput`
    /// (the first two steps of `--auto`), `goodput` (a probe of the max-goodput search),
    /// `combination` (a matrix combination).
    #[serde(default = "SweepLink::default_role")]
    pub role: String,
    /// A matrix combination's settings (`{"max_num_seqs": "64"}`), as filled into the
    /// command and into `config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    /// Which shard of a sweep split across machines ran this point (`index/count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SweepLink {
    fn default_role() -> String {
        "point".to_string()
    }

    /// `shard` as numbers `(index, count)`; None when absent or not `index/count` with
    /// `index < count`.
    pub fn shard_parts(&self) -> Option<(u32, u32)> {
        let (i, n) = self.shard.as_deref()?.split_once('/')?;
        let (i, n): (u32, u32) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (n > 0 && i < n).then_some((i, n))
    }
}

impl Metadata {
    /// A new run's metadata with everything but its identity left empty: status `running`,
    /// no results, this tool and host, the start time `started` as the timestamp. The
    /// producer fills in the rest (test, config, labels, server, pid) and the store gives
    /// it its id.
    pub fn new(
        kind: SourceKind,
        format: impl Into<String>,
        platform: impl Into<String>,
        model: impl Into<String>,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Metadata {
        Metadata {
            schema_version: SCHEMA_VERSION,
            test_id: String::new(),
            timestamp: started.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            platform: platform.into(),
            model: model.into(),
            gpu: None,
            config: Map::new(),
            test: TestInfo::default(),
            results: Results::default(),
            status: Status::Running,
            tool: ToolInfo::this(),
            host: HostInfo::this(),
            labels: BTreeMap::new(),
            source: SourceInfo {
                kind,
                format: format.into(),
                command: None,
                extra: Map::new(),
            },
            server: None,
            pid: None,
            process: None,
            sweep: None,
            repeat: None,
            extra: Map::new(),
        }
    }
}

/// The seed's `gpu` block, extended with telemetry aggregates.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GpuInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vram_total_gb: Option<f64>,
    /// Peak memory used during the run.
    #[serde(default)]
    pub vram_used_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_avg_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_avg_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `manual` (given with flags), `nvml`, `nvidia-smi`, `rocm-smi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The seed's `test` block.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestInfo {
    /// Every request, failed ones too.
    pub num_requests: u64,
    /// The file the user gave (results file for `analyze`, request file for `run`).
    #[serde(default)]
    pub input_file: Option<String>,
    /// The raw file in the store, relative to the store root (`raw/<test_id>.jsonl`).
    pub output_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Mean, percentiles and max of one latency, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Confidence intervals of the percentiles (absent where no raw values were seen,
    /// e.g. statistics imported from another tool's summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: 144 bytes, absent from a catalog row, and a run holds eight summaries.
    pub ci: Option<Box<PercentileCi>>,
}

/// Latency summaries of a run (only those that were measured).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latencies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e: Option<LatencySummary>,
    /// How far behind its schedule the client sent requests (not counting `slot_wait`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<LatencySummary>,
    /// `--rate` with a `--concurrency` cap: the wait for a free slot after the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_wait: Option<LatencySummary>,
    /// With `slot_wait`: TTFT from the actual send (`ttft` counts from the schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_from_send: Option<LatencySummary>,
    /// With `slot_wait`: E2E from the actual send (`e2e` counts from the schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_from_send: Option<LatencySummary>,
}

impl Latencies {
    pub fn is_empty(&self) -> bool {
        self.ttft.is_none()
            && self.tpot.is_none()
            && self.itl.is_none()
            && self.e2e.is_none()
            && self.lag.is_none()
            && self.slot_wait.is_none()
    }
}

/// Ollama's own server-side timings, averaged over successful requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerTimingSummary {
    /// Requests that carried server timings.
    pub requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ms_total: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_ms_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_ms_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms_mean: Option<f64>,
    /// Sum of prompt tokens / sum of prompt eval time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_tokens_per_sec: Option<f64>,
    /// Sum of generated tokens / sum of eval time (decode speed as the server sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_tokens_per_sec: Option<f64>,
}

/// Goodput: requests that met every SLO given with `--slo` (rule in `docs/metrics.md`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Goodput {
    /// The SLOs in milliseconds, by metric name (`ttft`, `tpot`, `e2e`).
    pub slo_ms: BTreeMap<String, f64>,
    /// Requests that met every SLO.
    pub good_requests: u64,
    pub requests_per_sec: f64,
    /// `good_requests` / `denominator_requests`, in percent (0 when the denominator is 0).
    pub percent: f64,
    /// Successful requests that missed no SLO but lacked a figure one of them needs (a
    /// 1-token answer's TPOT, a non-streamed answer's TTFT): neither good nor bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undetermined_requests: Option<u64>,
    /// The undetermined requests by the SLO metric they lacked (one request may count twice).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub undetermined_by_metric: BTreeMap<String, u64>,
    /// The denominator of `percent`: every request minus the undetermined ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator_requests: Option<u64>,
}

/// The seed's `results` block, extended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub success_count: u64,
    pub failure_count: u64,
    pub total_time_seconds: f64,
    #[serde(default)]
    pub model_load_time_seconds: Option<f64>,
    /// (prompt + completion tokens of successful requests) / total time.
    pub throughput_tokens_per_sec: f64,
    /// Successful requests / total time.
    pub throughput_requests_per_sec: f64,
    pub avg_prompt_tokens: f64,
    /// NaN when unknown ([`Results::mark_unknown`]); written as 0.
    #[serde(serialize_with = "nan_as_zero")]
    pub avg_completion_tokens: f64,
    #[serde(default)]
    pub gpu_utilization_percent: Option<f64>,
    /// Completion tokens of successful requests / total time. NaN when unknown
    /// ([`Results::mark_unknown`]); written as 0.
    #[serde(default, serialize_with = "nan_as_zero")]
    pub output_tokens_per_sec: f64,
    #[serde(default)]
    pub total_prompt_tokens: u64,
    #[serde(default)]
    pub total_completion_tokens: u64,
    /// Lines of the raw file that were not valid JSON or not a known record.
    #[serde(default)]
    pub unparseable_lines: u64,
    /// Lines that are not requests and were passed over on purpose (e.g. an Ollama stream's
    /// intermediate `done: false` chunks, folded into the request they belong to).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_lines: u64,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Failed requests by the HTTP status of their response (`{"429": 3, "500": 7}`),
    /// for those that got a non-2xx status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_status: BTreeMap<String, u64>,
    /// Requests in flight while the client itself was stalled (its latencies include time
    /// that is not the server's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_stalled_requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed, as are the other large optional blocks: a run in memory is then ~1.6 KB, not
    /// 5.5 KB (`compare` holds every run of the store).
    pub latency_ms: Option<Box<Latencies>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<ServerTimingSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<Goodput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_joule: Option<f64>,
    /// Successful requests whose prompt or completion token count is unknown (no usage):
    /// the token throughputs count them as 0 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_without_usage: Option<u64>,
    /// The server's own view of the run (docs/server-view.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_view: Option<Box<server_view::ServerView>>,
    /// The figures over the steady-state window, beside the whole-run ones (see
    /// `docs/steady-state.md`). Absent when not computed (see `steady_state_note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<Box<SteadyState>>,
    /// Why a run whose records carry times has no `steady_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state_note: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A figure that is unknown (NaN in memory) is written as 0, beside its name in
/// `results.unknown`, so the file reads back (RELIABILITY P13).
fn nan_as_zero<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(if v.is_nan() { 0.0 } else { *v })
}

/// The figures that can be unknown: a source without them (`vllm bench throughput` counts
/// no output tokens) names them in `results.unknown`.
pub const UNKNOWABLE: [&str; 2] = ["output_tokens_per_sec", "avg_completion_tokens"];

impl Results {
    /// Mark `figure` (one of [`UNKNOWABLE`]) unknown: NaN in memory, so every ratio,
    /// comparison and ranking leaves the run out of that figure (a 0 would read as a
    /// measurement); 0 on disk, named in `results.unknown`.
    pub fn mark_unknown(&mut self, figure: &str) {
        let list = self
            .extra
            .entry("unknown")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(names) = list
            && !names.iter().any(|n| n == figure)
        {
            names.push(figure.into());
        }
        self.apply_unknown();
    }

    /// Set the figures named in `results.unknown` to NaN (done when metadata is read).
    pub fn apply_unknown(&mut self) {
        let Some(Value::Array(names)) = self.extra.get("unknown") else {
            return;
        };
        for n in names.iter().filter_map(Value::as_str) {
            match n {
                "output_tokens_per_sec" => self.output_tokens_per_sec = f64::NAN,
                "avg_completion_tokens" => self.avg_completion_tokens = f64::NAN,
                _ => {}
            }
        }
    }
}

/// The tool that wrote the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn this() -> Self {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// A process as it can be told apart from a later one that got the same pid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22; Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` (Linux only): changes at every boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The host name.
    #[serde(default)]
    pub host: String,
}

/// The machine benchkeep ran on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostInfo {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub cpus: u32,
}

impl HostInfo {
    pub fn this() -> Self {
        HostInfo {
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
        }
    }
}

/// How the run was produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: SourceKind,
    /// The input format (`openai`, `openai-batch`, `ollama`, `vllm-offline`, `benchkeep`).
    pub format: String,
    /// The command line (secrets redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the server said about itself before the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerInfo {
    pub api: String,
    /// With any `user:pass@` removed.
    pub base_url: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub max_model_len: Option<u64>,
    #[serde(default)]
    pub details: Map<String, Value>,
}

/// Longest error message kept in a record (bytes, cut at a character boundary), whether
/// it came from a live server (`client`) or a results file (`ingest`).
pub const MAX_ERROR_MESSAGE: usize = 1000;

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut with `...`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Round to `digits` decimals (stored figures stay readable; raw data keeps full precision).
pub fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
