//! The end-of-run text: the seed's summary (platform, model, requests ok/total,
//! throughput, time, saved path) and a latency table (mean, p50, p90, p99 of TTFT, TPOT,
//! ITL, E2E). A pure function of the metadata.

use std::path::Path;

use crate::schema::{LatencySummary, Metadata};

/// The summary printed after `run` and `recover`.
pub fn text(meta: &Metadata, metadata_path: &Path, raw_path: &Path) -> String {
    let r = &meta.results;
    let mut s = crate::report::detail::seed_summary(meta, metadata_path);
    s.push_str(&format!("  Raw log: {}\n", raw_path.display()));
    if let Some(l) = &r.latency_ms {
        let rows: Vec<(&str, &LatencySummary)> = [
            ("TTFT", l.ttft.as_ref()),
            ("TPOT", l.tpot.as_ref()),
            ("ITL", l.itl.as_ref()),
            ("E2E", l.e2e.as_ref()),
            ("Lag", l.lag.as_ref()),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
        if !rows.is_empty() {
            s.push_str(&format!(
                "\n  {:<13}{:>10}{:>10}{:>10}{:>10}\n",
                "Latency (ms)", "mean", "p50", "p90", "p99"
            ));
            for (name, v) in rows {
                s.push_str(&format!(
                    "  {:<13}{:>10}{:>10}{:>10}{:>10}\n",
                    name,
                    fmt(v.mean),
                    fmt(v.p50),
                    fmt(v.p90),
                    fmt(v.p99)
                ));
            }
        }
    }
    s
}

fn fmt(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}
