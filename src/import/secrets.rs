//! Secrets in another tool's result file, removed before its copy goes into `raw/`:
//! values under keys named like `api_key`, `authorization`, `token`, `password`, `headers`
//! (GuideLLM's `config.spec.backend.api_key`, genai-perf's `input_config` headers), and
//! credentials inside URLs and free text. Only the paths are reported, never the values.

use serde_json::Value;

use crate::redact::REDACTED;

/// Whether a JSON key holds a secret.
fn secret_key(key: &str) -> bool {
    // Most keys are already lowercase snake case: no allocation for them.
    let owned;
    let k = if key.bytes().any(|b| b.is_ascii_uppercase() || b == b'-') {
        owned = key.to_ascii_lowercase().replace('-', "_");
        owned.as_str()
    } else {
        key
    };
    matches!(
        k,
        "api_key"
            | "apikey"
            | "authorization"
            | "token"
            | "access_token"
            | "auth_token"
            | "bearer_token"
            | "hf_token"
            | "password"
            | "passwd"
            | "secret"
            | "cookie"
            | "headers"
            | "header"
            | "extra_headers"
    ) || k.ends_with("_api_key")
        || k.ends_with("_password")
        || k.ends_with("_secret")
}

/// Redact `value` in place; returns the JSON pointers of what was removed.
pub fn redact(value: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut path = String::new();
    walk(value, &mut path, &mut found);
    found
}

/// Visit every value under `v`; `path` is its JSON pointer, grown and cut back in place
/// (one buffer for the whole walk: a GuideLLM report has hundreds of thousands of values).
fn walk(v: &mut Value, path: &mut String, found: &mut Vec<String>) {
    let at = path.len();
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                path.push('/');
                if k.contains(['~', '/']) {
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                } else {
                    path.push_str(k);
                }
                if secret_key(k) && !no_value(child) {
                    *child = Value::String(REDACTED.into());
                    found.push(path.clone());
                } else {
                    walk(child, path, found);
                }
                path.truncate(at);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                use std::fmt::Write as _;
                let _ = write!(path, "/{i}");
                walk(child, path, found);
                path.truncate(at);
            }
        }
        Value::String(s) => {
            if let Some(c) = cleaned(s) {
                *s = c;
                found.push(path.clone());
            }
        }
        _ => {}
    }
}

/// A value under a secret key that holds nothing (kept as it is): empty, or masked by the
/// tool already (GuideLLM writes `**********`, AIPerf `<redacted>`).
fn no_value(v: &Value) -> bool {
    let masked = |s: &str| {
        s.is_empty()
            || s.bytes().all(|b| b == b'*')
            || s.eq_ignore_ascii_case("<redacted>")
            || s.eq_ignore_ascii_case("redacted")
    };
    matches!(v, Value::Null | Value::Bool(_))
        || v.as_str().is_some_and(masked)
        || v.as_array().is_some_and(Vec::is_empty)
        || v.as_object().is_some_and(serde_json::Map::is_empty)
}

/// Whether `s` can hold anything [`cleaned`] cuts: each of its patterns needs one of these
/// (a `name: value` pair or a cookie needs `:` or `=`, URL credentials `@`, a bearer token
/// the word, a provider token its prefix). Most strings of a report (ids, numbers as text,
/// generated words) have none, and skip the regexes.
fn might_hold_secret(s: &str) -> bool {
    let b = s.as_bytes();
    if memchr::memchr3(b':', b'=', b'@', b).is_some() {
        return true;
    }
    const SHAPES: [&[u8]; 8] = [
        b"sk-",
        b"hf_",
        b"gh",
        b"github_pat_",
        b"xox",
        b"AKIA",
        b"ASIA",
        b"eyJ",
    ];
    SHAPES.iter().any(|p| memchr::memmem::find(b, p).is_some())
        || b.windows(6).any(|w| w.eq_ignore_ascii_case(b"bearer"))
}

/// `s` with the credentials in it cut, when it holds any.
fn cleaned(s: &str) -> Option<String> {
    if !might_hold_secret(s) {
        return None;
    }
    let mut cleaned =
        crate::redact::in_text(s.as_bytes()).map(|b| String::from_utf8_lossy(&b).into_owned());
    // Credentials in a URL need `scheme://user:pass@host`: skip strings without an `@`.
    let current = cleaned.as_deref().unwrap_or(s);
    if current.contains('@') {
        let u = crate::redact::url_in_text(current);
        if u != current {
            cleaned = Some(u);
        }
    }
    cleaned.filter(|c| c != s)
}

/// Whether `v` holds anything [`redact`] would remove (read only: the common case, a file
/// without secrets, needs no copy of its parsed value).
pub fn has_secret(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| {
            if secret_key(k) {
                !no_value(child)
            } else {
                has_secret(child)
            }
        }),
        Value::Array(items) => items.iter().any(has_secret),
        Value::String(s) => cleaned(s).is_some(),
        _ => false,
    }
}

pub fn redacted_copy(bytes: &[u8]) -> (Vec<u8>, Vec<String>) {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
        let found = redact(&mut v);
        if found.is_empty() {
            return (bytes.to_vec(), found);
        }
        let out = serde_json::to_vec(&v).unwrap_or_default();
        return (out, found);
    }
    if body.starts_with(b"Run Info,")
        && let Some(copy) = redacted_csv(body)
    {
        return copy.unwrap_or_else(|| (bytes.to_vec(), Vec::new()));
    }
    if !matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    ) && let Ok(mut v @ Value::Object(_)) = serde_norway::from_slice::<Value>(body)
    {
        // A YAML report (GuideLLM's benchmarks.yaml): written again as YAML.
        let found = redact(&mut v);
        if found.is_empty() {
            return (bytes.to_vec(), found);
        }
        return (
            serde_norway::to_string(&v).unwrap_or_default().into_bytes(),
            found,
        );
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut found = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(mut v) => {
                let f = redact(&mut v);
                if f.is_empty() {
                    out.extend_from_slice(line);
                } else {
                    out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
                    found.extend(f.into_iter().map(|p| format!("line {}: {p}", i + 1)));
                }
            }
            // A line that is not JSON (a cut last line) is kept only when it holds no secret.
            Err(_) => match crate::redact::in_text(line) {
                Some(clean) => {
                    out.extend_from_slice(&clean);
                    found.push(format!("line {}", i + 1));
                }
                None => out.extend_from_slice(line),
            },
        }
    }
    if found.is_empty() {
        return (bytes.to_vec(), found);
    }
    (out, found)
}

/// A CSV report (GuideLLM's benchmarks.csv): each cell redacted as JSON when it is JSON
/// (its `Backend` and `Arguments` cells), else as text. `None` when it is not CSV;
/// `Some(None)` when nothing was secret. Paths are `row R, column C: /pointer`.
#[allow(clippy::type_complexity)]
fn redacted_csv(body: &[u8]) -> Option<Option<(Vec<u8>, Vec<String>)>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut rows = Vec::new();
    let mut found = Vec::new();
    for (r, record) in reader.records().enumerate() {
        let record = record.ok()?;
        let mut row = Vec::with_capacity(record.len());
        for (c, cell) in record.iter().enumerate() {
            let mut v = match serde_json::from_str::<Value>(cell) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => Value::String(cell.to_string()),
            };
            let f = redact(&mut v);
            if f.is_empty() {
                row.push(cell.to_string());
                continue;
            }
            found.extend(
                f.into_iter()
                    .map(|p| format!("row {}, column {}: {p}", r + 1, c + 1)),
            );
            row.push(match v {
                Value::String(s) => s,
                other => serde_json::to_string(&other).unwrap_or_default(),
            });
        }
        rows.push(row);
    }
    if found.is_empty() {
        return Some(None);
    }
    let mut w = ::csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in &rows {
        w.write_record(row).ok()?;
    }
    Some(Some((w.into_inner().ok()?, found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls_are_redacted_paths_reported() {
        let text = br#"{"config":{"spec":{"backend":{"api_key":"sk-abcdefghijklmnop123","target":"http://u:hunter2@h:8000"}}},"input_config":{"headers":{"Authorization":"Bearer xyz"}},"time_to_first_token":{"avg":1},"max_tokens":5,"api_key":null}"#;
        let (out, found) = redacted_copy(text);
        let s = String::from_utf8(out).unwrap();
        assert!(
            !s.contains("sk-abcdefghijklmnop123") && !s.contains("hunter2") && !s.contains("xyz"),
            "{s}"
        );
        assert!(s.contains("\"max_tokens\":5") && s.contains("time_to_first_token"));
        assert_eq!(
            found,
            [
                "/config/spec/backend/api_key",
                "/config/spec/backend/target",
                "/input_config/headers"
            ]
        );
        let clean = br#"{"a": 1, "api_key": null}"#;
        assert_eq!(redacted_copy(clean), (clean.to_vec(), vec![]));
        // Masked by the tool already: nothing to cut, the copy is the file.
        let masked = br#"{"api_key": "**********", "b": {"token": "<redacted>"}}"#;
        assert_eq!(redacted_copy(masked), (masked.to_vec(), vec![]));
        let v: Value = serde_json::from_slice(masked).unwrap();
        assert!(!has_secret(&v));
        let v: Value = serde_json::from_slice(text).unwrap();
        assert!(has_secret(&v));
        // The quick test never passes over what the patterns find.
        for t in [
            "Bearer abcdefgh12345",
            "sk-abcdefghijklmnop123",
            "hf_abcdefghijklmnopqrs",
            "ghp_abcdefghijklmnopqrstuvwxyz",
            "github_pat_abcdefghijklmnopqrstuvwxyz",
            "AKIAABCDEFGHIJKLMNOP",
            "eyJhbGciOi.eyJzdWIiOi.sig",
            "token=abc",
            "http://u:p@h",
        ] {
            assert!(might_hold_secret(t) && cleaned(t).is_some(), "{t}");
        }
        assert!(!might_hold_secret("word123 the quick brown fox 0.25"));
        let lines = b"{\"a\":1}\n{\"token\":\"abc\"}\n{\"cut";
        let (out, found) = redacted_copy(lines);
        assert_eq!(found, ["line 2: /token"]);
        assert!(String::from_utf8(out).unwrap().ends_with("{\"cut"));
    }

    #[test]
    fn yaml_and_csv_reports_are_redacted() {
        let yaml = b"benchmarks: []\nconfig:\n  spec:\n    backend:\n      api_key: sk-abcdefghijklmnop123\n      model: tiny\n";
        let (out, found) = redacted_copy(yaml);
        let s = String::from_utf8(out).unwrap();
        assert!(
            !s.contains("sk-abcdefghijklmnop123") && s.contains("model: tiny"),
            "{s}"
        );
        assert_eq!(found, ["/config/spec/backend/api_key"]);
        let csv = b"Run Info,Run Info\nRun ID,Backend\n,\nr1,\"{\"\"api_key\"\": \"\"hunter2\"\", \"\"model\"\": \"\"tiny\"\"}\"\n";
        let (out, found) = redacted_copy(csv);
        let s = String::from_utf8(out).unwrap();
        assert!(
            !s.contains("hunter2") && s.contains("tiny") && s.starts_with("Run Info,"),
            "{s}"
        );
        assert_eq!(found, ["row 4, column 2: /api_key"]);
        let clean = b"Run Info,Run Info\nRun ID,Backend\n,\nr1,{}\n";
        assert_eq!(redacted_copy(clean), (clean.to_vec(), vec![]));
    }
}
