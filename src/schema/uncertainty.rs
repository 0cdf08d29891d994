//! The stored shape of uncertainty: confidence intervals of latency percentiles
//! (`LatencySummary.ci`) and the link that ties the runs of `run --repeat N` together
//! (`Metadata.repeat`). The statistics themselves are in `metrics::interval`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One interval `[lo, hi]`; a side is `None` (`null` on disk) when the data cannot bound
/// it at the stated level (too few values for that quantile), never a made-up number.
pub type Bounds = [Option<f64>; 2];

/// How a percentile's interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CiMethod {
    /// Distribution-free order-statistic interval over the exact, sorted values: the ranks
    /// come from the binomial(n, p) distribution (exact up to 1,000 values, its normal
    /// approximation above).
    OrderStatistic,
    /// The same ranks read from the HDR histogram that replaces exact values past 2M
    /// (bounds carry the histogram's 0.1 % resolution).
    OrderStatisticHdr,
}

impl CiMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CiMethod::OrderStatistic => "order-statistic",
            CiMethod::OrderStatisticHdr => "order-statistic-hdr",
        }
    }
}

/// Confidence intervals of a latency summary's percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentileCi {
    /// The confidence level (0.95).
    pub level: f64,
    pub method: CiMethod,
    pub p50: Bounds,
    pub p90: Bounds,
    pub p95: Bounds,
    pub p99: Bounds,
}

impl PercentileCi {
    /// The bounds of the named percentile (`p50`, `p90`, `p95`, `p99`).
    pub fn get(&self, name: &str) -> Option<Bounds> {
        match name {
            "p50" => Some(self.p50),
            "p90" => Some(self.p90),
            "p95" => Some(self.p95),
            "p99" => Some(self.p99),
            _ => None,
        }
    }
}

/// What links the runs of one `run --repeat N` (or one point of `sweep --repeat N`): each
/// repeat is a normal run; the group's figures (mean and t-interval across repeats) are
/// derived from them by the report, so nothing here is the only copy of anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepeatLink {
    /// The group's id, shared by its runs: `repeat-{platform}-{UTC time}-{8 hex}`
    /// (`run --repeat`), `{sweep id}-p{point index}` (`sweep --repeat`).
    pub group: String,
    /// This run's position in the group (0-based).
    pub index: u32,
    /// How many repeats were planned.
    pub count: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
