//! The seed's comparison row, computed once for every renderer (table, markdown, csv, json).

use serde::Serialize;

use crate::schema::Metadata;

/// One run as the comparison shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub test_id: String,
    pub platform: String,
    pub model: String,
    pub status: String,
    pub requests: u64,
    pub success_percent: f64,
    pub throughput_tokens_per_sec: f64,
    pub output_tokens_per_sec: f64,
    pub throughput_requests_per_sec: f64,
    pub total_time_seconds: f64,
    pub ttft_p50_ms: Option<f64>,
    pub date: String,
    pub timestamp: String,
}

/// The headers of the seed's table, plus output tok/s, status and id.
pub const HEADERS: [&str; 10] = [
    "Platform",
    "Model",
    "Requests",
    "Success %",
    "Throughput (tok/s)",
    "Output (tok/s)",
    "Time (s)",
    "Date",
    "Status",
    "ID",
];

impl Row {
    pub fn from_metadata(m: &Metadata) -> Row {
        let r = &m.results;
        let total = r.success_count + r.failure_count;
        Row {
            test_id: m.test_id.clone(),
            platform: m.platform.clone(),
            model: m.model.clone(),
            status: m.status.to_string(),
            requests: total,
            success_percent: if total > 0 {
                100.0 * r.success_count as f64 / total as f64
            } else {
                0.0
            },
            throughput_tokens_per_sec: r.throughput_tokens_per_sec,
            output_tokens_per_sec: r.output_tokens_per_sec,
            throughput_requests_per_sec: r.throughput_requests_per_sec,
            total_time_seconds: r.total_time_seconds,
            ttft_p50_ms: r
                .latency_ms
                .as_ref()
                .and_then(|l| l.ttft.as_ref())
                .map(|t| t.p50),
            date: m.timestamp.chars().take(10).collect(),
            timestamp: m.timestamp.clone(),
        }
    }

    /// The cells in [`HEADERS`] order, formatted for people.
    pub fn cells(&self) -> [String; 10] {
        [
            self.platform.clone(),
            self.model.clone(),
            self.requests.to_string(),
            format!("{:.1}%", self.success_percent),
            format!("{:.0}", self.throughput_tokens_per_sec),
            format!("{:.0}", self.output_tokens_per_sec),
            format!("{:.1}", self.total_time_seconds),
            self.date.clone(),
            self.status.clone(),
            self.test_id.clone(),
        ]
    }
}
