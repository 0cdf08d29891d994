//! The head-to-head metric catalogue: which figures are compared, which way is better,
//! how each is read from a run and how it is formatted.

use serde::Serialize;

use crate::schema::Metadata;

/// Whether a bigger value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One figure of the head-to-head table.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Stable key (summary.json, CSV).
    pub key: &'static str,
    /// Column header.
    pub label: &'static str,
    /// Name in a ratio sentence ("3.4x ollama output tok/s").
    pub short: &'static str,
    pub better: Better,
    /// Decimals shown.
    pub decimals: usize,
    pub get: fn(&Metadata) -> Option<f64>,
}

fn latency(m: &Metadata, pick: fn(&crate::schema::Latencies) -> Option<f64>) -> Option<f64> {
    m.results.latency_ms.as_deref().and_then(pick)
}

/// Success rate in percent (None when there were no requests).
pub fn success_percent(m: &Metadata) -> Option<f64> {
    let total = m.results.success_count + m.results.failure_count;
    (total > 0).then(|| 100.0 * m.results.success_count as f64 / total as f64)
}

/// Output tokens per joule of GPU energy, where known.
pub fn tokens_per_joule(m: &Metadata) -> Option<f64> {
    m.results.output_tokens_per_joule.or_else(|| {
        let e = m.gpu.as_ref()?.energy_joules?;
        (e > 0.0 && m.results.total_completion_tokens > 0)
            .then(|| m.results.total_completion_tokens as f64 / e)
    })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The head-to-head figures, in column order.
pub const METRICS: [MetricDef; 10] = [
    MetricDef {
        key: "output_tokens_per_sec",
        label: "Output tok/s",
        short: "output tok/s",
        better: Better::Higher,
        decimals: 1,
        get: |m| finite(m.results.output_tokens_per_sec),
    },
    MetricDef {
        key: "throughput_tokens_per_sec",
        label: "Total tok/s",
        short: "total tok/s",
        better: Better::Higher,
        decimals: 1,
        get: |m| finite(m.results.throughput_tokens_per_sec),
    },
    MetricDef {
        key: "throughput_requests_per_sec",
        label: "Req/s",
        short: "req/s",
        better: Better::Higher,
        decimals: 3,
        get: |m| finite(m.results.throughput_requests_per_sec),
    },
    MetricDef {
        key: "ttft_p50_ms",
        label: "TTFT p50 (ms)",
        short: "TTFT p50",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.ttft.as_ref().map(|s| s.p50)),
    },
    MetricDef {
        key: "ttft_p99_ms",
        label: "TTFT p99 (ms)",
        short: "TTFT p99",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.ttft.as_ref().map(|s| s.p99)),
    },
    MetricDef {
        key: "tpot_p50_ms",
        label: "TPOT p50 (ms)",
        short: "TPOT p50",
        better: Better::Lower,
        decimals: 2,
        get: |m| latency(m, |l| l.tpot.as_ref().map(|s| s.p50)),
    },
    MetricDef {
        key: "e2e_p50_ms",
        label: "E2E p50 (ms)",
        short: "E2E p50",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.e2e.as_ref().map(|s| s.p50)),
    },
    MetricDef {
        key: "success_percent",
        label: "Success %",
        short: "success %",
        better: Better::Higher,
        decimals: 1,
        get: success_percent,
    },
    MetricDef {
        key: "peak_vram_gb",
        label: "Peak VRAM (GB)",
        short: "peak VRAM",
        better: Better::Lower,
        decimals: 1,
        get: |m| m.gpu.as_ref().and_then(|g| g.vram_used_gb),
    },
    MetricDef {
        key: "output_tokens_per_joule",
        label: "Tok/J",
        short: "tokens per joule",
        better: Better::Higher,
        decimals: 3,
        get: tokens_per_joule,
    },
];

/// The metrics named in a group's one-line summary, by index into [`METRICS`].
pub(super) const HEADLINE: [usize; 4] = [0, 2, 3, 6];

/// Format a figure with the metric's decimals.
pub fn fmt_value(def: &MetricDef, v: f64) -> String {
    format!("{:.*}", def.decimals, v)
}

/// Format a ratio: `3.42x`.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.2}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_format() {
        assert_eq!(fmt_ratio(3.4166), "3.42x");
        assert_eq!(fmt_ratio(0.2149), "0.21x");
        assert_eq!(fmt_ratio(250.0), "250x");
    }
}
