//! Aligned terminal tables and CSV for the comparison rows.

use crate::report::rows::{HEADERS, Row};

/// An aligned table for a terminal: a header, a rule, one line per run; numbers right-
/// aligned. (Hand-rolled rather than comfy-table: 10,000 rows must print in milliseconds.)
pub fn terminal(rows: &[Row]) -> String {
    let cells: Vec<[String; 10]> = rows.iter().map(|r| r.cells().map(sanitize)).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| (2..=6).contains(&i);
    let mut out = String::with_capacity((rows.len() + 2) * (widths.iter().sum::<usize>() + 20));
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, c) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            if right(i) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < widths.len() {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push('\n');
    };
    line(&mut HEADERS.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rule.iter().map(|s| s.as_str()));
    for row in &cells {
        line(&mut row.iter().map(|s| s.as_str()));
    }
    out
}

/// Control characters (escape sequences from a hostile model name) never reach a terminal.
/// A clean cell (nearly all) is kept as it is, not copied.
fn sanitize(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
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

/// Quote a CSV field when needed. Text that a spreadsheet would run as a formula (a leading
/// `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`, unless it is a plain number.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.trim().parse::<f64>().is_err() {
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
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("\t=1"), "'\t=1");
        assert_eq!(field("-2.5"), "-2.5");
        assert_eq!(field("+1e3"), "+1e3");
        assert_eq!(field("plain"), "plain");
    }
}
