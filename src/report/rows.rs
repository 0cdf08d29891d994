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

#[cfg(test)]
mod catalog_lean_tests {
    //! The catalog's lean runs (`store::catalog_file::lean`) against whole runs: what the
    //! comparison table and the head-to-head read of them is the same. Here, in the
    //! report layer, because they check the report's functions.
    use serde_json::Value;

    use crate::report::h2h;
    use crate::report::rows::Row as TableRow;
    use crate::schema::{Metadata, Status};
    use crate::store::FileStat;
    use crate::store::catalog_file::lean::{lean_metadata, template};
    use crate::store::catalog_file::row::{line_of, project, row_of};

    fn run() -> Metadata {
        let mut m = template();
        m.test_id = "vllm-m-1-2026-10-01".into();
        m.timestamp = "2026-10-01T00:00:00Z".into();
        m.platform = "vllm".into();
        m.model = "google/gemma-3-4b-it".into();
        m.status = Status::Completed;
        m.labels.insert("gpu".into(), "h100".into());
        m.test.num_requests = 10;
        m.test.input_sha256 = Some("ab".repeat(32));
        m.test.raw_sha256 = Some("cd".repeat(32));
        m.test.extra.insert(
            "load".into(),
            serde_json::json!({"mode": "rate", "rate": 5.0, "arrival": "constant", "seed": 3}),
        );
        m.results.success_count = 9;
        m.results.failure_count = 1;
        m.results.throughput_tokens_per_sec = 123.5;
        m.results.output_tokens_per_sec = f64::NAN;
        m.results.mark_unknown("output_tokens_per_sec");
        m.config
            .insert("max_model_len".into(), serde_json::json!(4096));
        m
    }

    #[test]
    fn a_lean_run_gives_the_table_row_and_the_pairing_keys_of_the_whole_run() {
        let m = run();
        let line = line_of(&row_of("f.json", FileStat::default(), Ok(m.clone())));
        let lean = lean_metadata(&line, &template()).expect("a row parses");
        let (a, b) = (TableRow::from_metadata(&m), TableRow::from_metadata(&lean));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "NaN compares by text");
        assert_eq!(h2h::input_key(&lean), h2h::input_key(&m));
        assert_eq!(h2h::load_key(&lean), h2h::load_key(&m));
        assert_eq!(h2h::model_family(&lean), h2h::model_family(&m));
        // What the row leaves out is not there: a reader asks the file for it.
        let row: Value = serde_json::from_slice(&line).unwrap();
        assert!(row["run"].get("config").is_none());
        assert!(row["run"]["test"].get("raw_sha256").is_none());
        assert_eq!(
            row["run"]["test"]["load"],
            serde_json::json!({"rate": 5.0, "arrival": "constant"})
        );
        assert!(line.len() < 800, "{}", String::from_utf8_lossy(&line));
    }

    #[test]
    fn only_the_input_identity_that_decides_is_kept() {
        let mut m = run();
        m.test.raw_sha256 = m.test.input_sha256.clone();
        m.test
            .extra
            .insert("synthetic".into(), serde_json::json!({"input_tokens": 8}));
        let p = project(&m);
        assert!(p["test"].get("input_sha256").is_none());
        assert_eq!(p["test"]["synthetic"]["input_tokens"], 8);
        m.labels.insert("input".into(), "batch".into());
        assert!(project(&m)["test"].get("synthetic").is_none());
        let line = line_of(&row_of("f.json", FileStat::default(), Ok(m.clone())));
        let lean = lean_metadata(&line, &template()).unwrap();
        assert_eq!(h2h::input_key(&lean), h2h::input_key(&m));
    }
}
