//! The server's own view of a run (`results.server_view`): what the server says its
//! requests spent in queue, prefill and decode (vLLM's `/metrics` histograms, before/after
//! difference; or Ollama's per-request durations), and where the client's TTFT went.
//! Documented in docs/server-view.md and schemas/metadata.schema.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `source` when the server's `/metrics` was scraped.
pub const SOURCE_VLLM: &str = "vllm_metrics";
/// `source` when Ollama's per-request durations were used.
pub const SOURCE_OLLAMA: &str = "ollama_durations";
/// `source` when the server offered no view (no `/metrics`, not vLLM's): see `note`.
pub const SOURCE_NONE: &str = "unavailable";

/// Server-side means over this run's requests, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerMeans {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl: Option<f64>,
}

/// Percentiles estimated from histogram buckets (Prometheus' `histogram_quantile`: linear
/// within a bucket), in milliseconds: as coarse as the buckets, never exact.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BucketPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Always `true`: these come from buckets, not from the requests' own values.
    pub from_buckets: bool,
    /// The first bucket's upper bound, ms: a percentile at or below it says only "somewhere
    /// in `(0, first_bucket_ms]`" (its interpolated value is the bucket's midpoint-ish, not a
    /// measurement), so readers show it as `<=first_bucket_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bucket_ms: Option<f64>,
}

impl BucketPercentiles {
    /// A percentile for display: `<=300` when it lies in the first bucket, else its value.
    pub fn shown(&self, x: f64) -> String {
        match self.first_bucket_ms {
            Some(first) if x <= first => format!("<={first}"),
            _ => format!("{x:.1}"),
        }
    }
}

/// Where the client's mean TTFT went: `client_ttft_ms = server_queue_ms +
/// server_prefill_ms + remainder_ms` (the remainder: the network, HTTP, the server's
/// front end and the client).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    pub client_ttft_ms: f64,
    pub server_queue_ms: f64,
    pub server_prefill_ms: f64,
    pub remainder_ms: f64,
    /// The server's own mean TTFT (vLLM's histogram: from its front end's arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ttft_ms: Option<f64>,
    /// Client mean E2E and the server's, when both are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_e2e_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_e2e_ms: Option<f64>,
}

/// The server's gauges over the run (`raw/<test_id>.server.jsonl`), summarized.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesSummary {
    /// The series file, relative to the store.
    pub file: String,
    pub samples: u64,
    pub interval_s: f64,
    /// The file reached its cap and later samples were not written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_max: Option<f64>,
    /// Mean waiting requests in the first and the last quarter of the run's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_first_quarter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_last_quarter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage_max: Option<f64>,
    /// Scrapes during the run that failed (skipped samples).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_scrapes: u64,
}

/// `results.server_view`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerView {
    /// `vllm_metrics`, `ollama_durations` or `unavailable`.
    pub source: String,
    /// Requests the server finished during the run (vLLM: the E2E histogram's count
    /// difference; Ollama: responses carrying durations).
    #[serde(default)]
    pub requests: u64,
    /// The server finished more requests than this run sent: other traffic was mixed in,
    /// and the means are not this run's alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_traffic: bool,
    #[serde(default)]
    pub mean_ms: ServerMeans,
    /// By metric (`ttft`, `queue`, `prefill`, `decode`, `e2e`, `itl`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub percentiles_from_buckets: BTreeMap<String, BucketPercentiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesSummary>,
    /// Why a figure is missing or what to keep in mind (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::BucketPercentiles;

    #[test]
    fn a_percentile_in_the_first_bucket_is_shown_as_at_most_its_bound() {
        let p = BucketPercentiles {
            p50: 150.0,
            p90: 270.0,
            p99: 450.0,
            from_buckets: true,
            first_bucket_ms: Some(300.0),
        };
        assert_eq!(p.shown(p.p50), "<=300");
        assert_eq!(p.shown(p.p90), "<=300");
        assert_eq!(p.shown(p.p99), "450.0");
        let old = BucketPercentiles {
            first_bucket_ms: None,
            ..p
        };
        assert_eq!(old.shown(150.0), "150.0", "a stored view without the bound");
    }
}
