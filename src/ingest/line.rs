//! Helpers shared by every line parser in `ingest`: blank lines, byte-order marks, the
//! reason a line is unparseable, and which finish reasons mean the server gave up.

/// JSON whitespace only (the line is ignored).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// The line without a leading UTF-8 byte order mark.
pub(crate) fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// Whether a finish reason means the server gave up on the request.
pub(crate) fn is_failed_finish(reason: Option<&str>) -> bool {
    matches!(reason, Some("abort" | "error"))
}

/// A serde error turned into the reason a line is unparseable.
pub(crate) fn json_reason(e: &serde_json::Error, format: &str) -> String {
    if e.is_eof() {
        format!(
            "truncated JSON (the line ends inside a value, column {}); a cut-off write?",
            e.column()
        )
    } else if e.is_syntax() {
        format!("invalid JSON: {e}")
    } else {
        format!("not a {format} record: {e}")
    }
}
