//! Aligned terminal tables (comfy-table) and CSV for the comparison rows.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use crate::report::rows::{HEADERS, Row};

/// An aligned table for a terminal (no borders beyond a header rule; no color).
pub fn terminal(rows: &[Row]) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADERS);
    for row in rows {
        table.add_row(row.cells().iter().map(|c| sanitize(c)));
    }
    for i in 2..=6 {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

/// Control characters (escape sequences from a hostile model name) never reach a terminal.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// RFC 4180 CSV of the rows (machine-readable numbers, not rounded for display).
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "test_id,platform,model,status,requests,success_percent,throughput_tokens_per_sec,output_tokens_per_sec,throughput_requests_per_sec,total_time_seconds,ttft_p50_ms,timestamp\n",
    );
    for r in rows {
        let fields = [
            field(&r.test_id),
            field(&r.platform),
            field(&r.model),
            field(&r.status),
            r.requests.to_string(),
            format!("{:.2}", r.success_percent),
            r.throughput_tokens_per_sec.to_string(),
            r.output_tokens_per_sec.to_string(),
            r.throughput_requests_per_sec.to_string(),
            r.total_time_seconds.to_string(),
            r.ttft_p50_ms.map(|v| v.to_string()).unwrap_or_default(),
            field(&r.timestamp),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Quote a CSV field when needed; a leading `=`, `+`, `-`, `@` is defused for spreadsheets.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@'])
        || (s.starts_with('-') && s.len() > 1 && !s[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()"), "'=cmd()");
        assert_eq!(field("plain"), "plain");
    }
}
