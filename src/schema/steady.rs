//! The steady-state block of a run's results (`results.steady_state`): the figures over
//! the window where the load was at its target, kept beside the whole-run figures, and the
//! throughput interval from batch means over that window. Computed by `metrics::steady`;
//! the definitions are in `docs/steady-state.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Latencies;

/// How the steady-state window was chosen.
pub mod method {
    /// Closed loop: from the end of the first generation (the last of the initial
    /// `--concurrency` requests finished) to the first completion after the last send.
    pub const IN_FLIGHT: &str = "in_flight";
    /// Open loop (`--rate`): from the end of the first request to the last send.
    pub const ARRIVALS: &str = "arrivals";
    /// `--warmup`/`--cooldown` given as durations or fractions of the run.
    pub const WARMUP_COOLDOWN: &str = "warmup_cooldown";
}

/// The figures over the steady-state window (`results.steady_state`). Times are seconds
/// on the raw records' clock (the measured phase's start is 0).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SteadyState {
    /// `in_flight`, `arrivals` or `warmup_cooldown` (see [`method`]).
    pub method: String,
    /// The load's target: requests in flight in a closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_in_flight: Option<u32>,
    pub start_s: f64,
    pub end_s: f64,
    /// `end_s - start_s`.
    pub duration_s: f64,
    /// The whole run's span (first send to last response) the window is part of.
    pub run_span_s: f64,
    /// Successful requests that started inside the window (the latencies' population).
    pub requests: u64,
    /// Successful requests that completed inside the window (`requests_per_sec`'s count).
    pub completed: u64,
    /// Output tokens generated inside the window: each successful request's first token
    /// at its first-token time, the others spread evenly to its end (pro-rated).
    pub output_tokens: f64,
    /// `output_tokens / duration_s`.
    pub output_tokens_per_sec: f64,
    /// `completed / duration_s`.
    pub requests_per_sec: f64,
    /// TTFT, TPOT and E2E of the requests that started inside the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latencies>,
    /// The interval of `output_tokens_per_sec` from batch means; `null` when the window is
    /// too short for one (`throughput_ci_note` says why): never a made-up interval.
    pub throughput_ci: Option<ThroughputCi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_ci_note: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A confidence interval of the steady-state output throughput from batch means: the
/// window cut into `batches` equal batches, one output tok/s per batch, Student's t over
/// the batch means.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThroughputCi {
    /// `batch_means`.
    pub method: String,
    /// Confidence level (0.95).
    pub level: f64,
    /// Output tok/s: the mean of the batch means (equal to the window's figure).
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub batches: u32,
    /// Length of one batch, seconds.
    pub batch_s: f64,
    /// Sample standard deviation of the batch means, tok/s.
    pub std_dev: f64,
    /// Lag-1 autocorrelation of the batch means (near 0: batches independent enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag1_autocorrelation: Option<f64>,
}
