//! One run as text for a terminal: in full (`benchkeep show`), the seed's summary when a
//! run is saved, and the end-of-run summary of `run` and `recover` with its latency table.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::schema::{LatencySummary, Metadata};

/// The seed's summary, printed by `analyze`, `record` and `run` when a run is saved:
/// where it went, platform, model, requests ok/total, throughput, time, status, and what
/// went wrong. Callers append what is theirs (a log path, a latency table).
pub fn seed_summary(m: &Metadata, saved: &std::path::Path) -> String {
    let r = &m.results;
    let total = r.success_count + r.failure_count;
    let mut s = String::new();
    let _ = writeln!(s, "Saved metadata: {}\n", saved.display());
    let _ = writeln!(s, "Benchmark Summary:");
    let _ = writeln!(s, "  Test id: {}", clean(&m.test_id));
    let _ = writeln!(s, "  Platform: {}", clean(&m.platform));
    let _ = writeln!(s, "  Model: {}", clean(&m.model));
    let _ = writeln!(s, "  Format: {}", clean(&m.source.format));
    let _ = writeln!(s, "  Requests: {}/{}", r.success_count, total);
    let _ = writeln!(
        s,
        "  Throughput: {:.0} tok/s ({:.0} output tok/s, {} req/s)",
        r.throughput_tokens_per_sec, r.output_tokens_per_sec, r.throughput_requests_per_sec
    );
    let _ = writeln!(s, "  Time: {:.1}s", r.total_time_seconds);
    if let Some(load) = r.model_load_time_seconds {
        let _ = writeln!(s, "  Model load: {load:.1}s");
    }
    if let Some(g) = &m.gpu {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("?".to_string(), |v| format!("{v:.1}{unit}"));
        let _ = writeln!(
            s,
            "  GPU: {} x{} ({}), util {}, peak memory {}, energy {}",
            clean(g.name.as_deref().unwrap_or("?")),
            g.count.unwrap_or(1),
            g.source.as_deref().unwrap_or("?"),
            opt(g.utilization_avg_percent, "%"),
            opt(g.vram_used_gb, " GB"),
            opt(g.energy_joules, " J"),
        );
    }
    if !r.errors_by_kind.is_empty() {
        let kinds: Vec<String> = r
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(s, "  Errors: {}", kinds.join(", "));
    }
    if !r.errors_by_status.is_empty() {
        let _ = writeln!(s, "  Errors by HTTP status: {}", by_status(r));
    }
    if r.client_stalled_requests > 0 {
        let _ = writeln!(
            s,
            "  Client stalls: {} request(s) were in flight while benchkeep itself was paused; their latencies include that time",
            r.client_stalled_requests
        );
    }
    if r.skipped_lines > 0 {
        let _ = writeln!(
            s,
            "  Skipped lines: {} (not requests, e.g. stream chunks)",
            r.skipped_lines
        );
    }
    if r.unparseable_lines > 0 {
        let _ = writeln!(s, "  Unparseable lines: {}", r.unparseable_lines);
    }
    if let Some(g) = &r.goodput {
        let _ = writeln!(
            s,
            "  Goodput: {} requests met the SLOs ({}%{}, {} req/s)",
            g.good_requests,
            g.percent,
            goodput_denominator(g),
            g.requests_per_sec
        );
    }
    if let Some(n) = r.requests_without_usage.filter(|n| *n > 0) {
        let _ = writeln!(s, "  {}", without_usage(n));
    }
    let _ = writeln!(s, "  Status: {}", m.status);
    s
}

/// The run as readable text: identity, test, results, latencies, errors, GPU, config.
pub fn render(m: &Metadata) -> String {
    let mut s = String::new();
    let r = &m.results;
    let total = r.success_count + r.failure_count;
    let _ = writeln!(s, "{}", clean(&m.test_id));
    let _ = writeln!(s, "  status        {}", m.status);
    let _ = writeln!(s, "  timestamp     {}", m.timestamp);
    let _ = writeln!(s, "  platform      {}", clean(&m.platform));
    let _ = writeln!(s, "  model         {}", clean(&m.model));
    let _ = writeln!(
        s,
        "  source        {} ({})",
        match m.source.kind {
            crate::schema::SourceKind::Run => "run",
            crate::schema::SourceKind::Record => "record",
            crate::schema::SourceKind::Analyze => "analyze",
            crate::schema::SourceKind::Import => "import",
        },
        clean(&m.source.format)
    );
    if let Some(cmd) = &m.source.command {
        let _ = writeln!(s, "  command       {}", clean(cmd));
    }
    if !m.labels.is_empty() {
        let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "  labels        {}", clean(&labels.join(", ")));
    }
    let _ = writeln!(s, "\nTest");
    let _ = writeln!(s, "  requests      {}", m.test.num_requests);
    if let Some(i) = &m.test.input_file {
        let _ = writeln!(s, "  input         {}", clean(i));
    }
    let _ = writeln!(s, "  raw           {}", clean(&m.test.output_file));
    if let Some(sha) = &m.test.input_sha256 {
        let _ = writeln!(s, "  input sha256  {sha}");
    }
    let _ = writeln!(s, "\nResults");
    let _ = writeln!(
        s,
        "  requests ok   {}/{} ({:.1}%)",
        r.success_count,
        total,
        if total > 0 {
            100.0 * r.success_count as f64 / total as f64
        } else {
            0.0
        }
    );
    let _ = writeln!(s, "  total time    {:.3} s", r.total_time_seconds);
    if let Some(t) = r.model_load_time_seconds {
        let _ = writeln!(s, "  model load    {t:.3} s");
    }
    let _ = writeln!(
        s,
        "  throughput    {:.2} tok/s (prompt + completion)",
        r.throughput_tokens_per_sec
    );
    let whole = super::steady::whole_run_mark(m);
    let _ = writeln!(
        s,
        "  output        {:.2} tok/s{whole}",
        r.output_tokens_per_sec
    );
    let _ = writeln!(
        s,
        "  requests/s    {:.3}{whole}",
        r.throughput_requests_per_sec
    );
    let _ = writeln!(
        s,
        "  tokens        {} prompt ({:.1} avg), {} completion ({:.1} avg)",
        r.total_prompt_tokens,
        r.avg_prompt_tokens,
        r.total_completion_tokens,
        r.avg_completion_tokens
    );
    if r.unparseable_lines > 0 {
        let _ = writeln!(s, "  unparseable   {} line(s)", r.unparseable_lines);
    }
    if let Some(g) = &r.goodput {
        let _ = writeln!(
            s,
            "  goodput       {:.3} req/s ({} good, {:.1}%{})",
            g.requests_per_sec,
            g.good_requests,
            g.percent,
            goodput_denominator(g)
        );
    }
    if let Some(n) = r.requests_without_usage.filter(|n| *n > 0) {
        let _ = writeln!(s, "  note          {}", without_usage(n));
    }
    if let Some(j) = r.output_tokens_per_joule {
        let _ = writeln!(s, "  efficiency    {j:.3} output tokens/J");
    }
    s.push_str(&super::steady::section(m));
    if !r.errors_by_kind.is_empty() {
        let _ = writeln!(s, "\nErrors by kind");
        for (k, n) in &r.errors_by_kind {
            let _ = writeln!(s, "  {k:<13} {n}");
        }
    }
    if !r.errors_by_status.is_empty() {
        let _ = writeln!(s, "\nErrors by HTTP status");
        for (k, n) in &r.errors_by_status {
            let _ = writeln!(s, "  {:<13} {n}", clean(k));
        }
    }
    if r.client_stalled_requests > 0 {
        let _ = writeln!(
            s,
            "\nClient stalls  {} request(s) in flight while benchkeep was paused",
            r.client_stalled_requests
        );
    }
    if let Some(l) = &r.latency_ms {
        let _ = writeln!(
            s,
            "\nLatency (ms)    {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "mean", "p50", "p90", "p95", "p99", "max"
        );
        for (name, v) in [
            ("TTFT", &l.ttft),
            ("TPOT", &l.tpot),
            ("ITL", &l.itl),
            ("E2E", &l.e2e),
            ("client lag", &l.lag),
            ("slot wait", &l.slot_wait),
            ("TTFT (send)", &l.ttft_from_send),
            ("E2E (send)", &l.e2e_from_send),
        ] {
            if let Some(v) = v {
                let _ = writeln!(s, "  {name:<13} {}", latency_cells(v));
            }
        }
        s.push_str(&crate::report::intervals::detail_block(l));
    }
    if let Some(st) = &r.server_timings {
        let _ = writeln!(s, "\nServer-side timings ({} requests)", st.requests);
        for (name, v) in [
            ("load total ms", st.load_ms_total),
            ("prompt eval ms", st.prompt_eval_ms_mean),
            ("eval ms", st.eval_ms_mean),
            ("total ms", st.total_ms_mean),
            ("prompt tok/s", st.prompt_eval_tokens_per_sec),
            ("eval tok/s", st.eval_tokens_per_sec),
        ] {
            if let Some(v) = v {
                let _ = writeln!(s, "  {name:<15} {v:.2}");
            }
        }
    }
    if let Some(g) = &m.gpu {
        let _ = writeln!(s, "\nGPU");
        let _ = writeln!(
            s,
            "{}",
            indent_json(&serde_json::to_value(g).unwrap_or(Value::Null))
        );
    }
    if let Some(server) = &m.server {
        let _ = writeln!(s, "\nServer");
        let _ = writeln!(
            s,
            "{}",
            indent_json(&serde_json::to_value(server).unwrap_or(Value::Null))
        );
    }
    if !m.config.is_empty() {
        let _ = writeln!(s, "\nConfig");
        let _ = writeln!(s, "{}", indent_json(&Value::Object(m.config.clone())));
    }
    s
}

fn latency_cells(v: &LatencySummary) -> String {
    format!(
        "{:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
        v.mean, v.p50, v.p90, v.p95, v.p99, v.max
    )
}

fn indent_json(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    clean_multiline(&text)
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `429: 3, 500: 7`.
fn by_status(r: &crate::schema::Results) -> String {
    r.errors_by_status
        .iter()
        .map(|(k, n)| format!("{}: {n}", clean(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// No control characters (terminal escape sequences) from stored strings reach the screen.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn clean_multiline(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

/// " of 40 judged, 10 undetermined" when some requests could not be judged against the SLOs.
fn goodput_denominator(g: &crate::schema::Goodput) -> String {
    match (g.denominator_requests, g.undetermined_requests) {
        (Some(d), Some(u)) if u > 0 => format!(" of {d} judged, {u} undetermined"),
        _ => String::new(),
    }
}

fn without_usage(n: u64) -> String {
    format!(
        "{n} successful request(s) had no token usage from the server: counted as 0 tokens in the throughputs"
    )
}

/// The summary printed after `run` and `recover`.
pub fn run_summary(meta: &Metadata, metadata_path: &Path, raw_path: &Path) -> String {
    let r = &meta.results;
    let mut s = seed_summary(meta, metadata_path);
    s.push_str(&format!("  Raw log: {}\n", raw_path.display()));
    s.push_str(&super::steady::summary_line(meta));
    if let Some(l) = &r.latency_ms {
        let rows: Vec<(&str, &LatencySummary)> = [
            ("TTFT", l.ttft.as_ref()),
            ("TPOT", l.tpot.as_ref()),
            ("ITL", l.itl.as_ref()),
            ("E2E", l.e2e.as_ref()),
            ("Lag", l.lag.as_ref()),
            ("Slot wait", l.slot_wait.as_ref()),
            ("TTFT (send)", l.ttft_from_send.as_ref()),
            ("E2E (send)", l.e2e_from_send.as_ref()),
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
                    fmt_ms(v.mean),
                    fmt_ms(v.p50),
                    fmt_ms(v.p90),
                    fmt_ms(v.p99)
                ));
            }
        }
    }
    s
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}
