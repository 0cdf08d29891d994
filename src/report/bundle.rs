//! An upstream bug report for one run: what a vLLM or Ollama maintainer asks for, as files
//! (name, bytes). `ISSUE.md` follows the shape of their bug templates (your current
//! environment, describe the bug, expected behaviour, logs); `metadata.json`,
//! `config.json` and `failing-requests.jsonl` (the failing requests' raw records of a
//! `run` run, at most [`MAX_FAILING`]) come with it.
//!
//! Every text passes through [`redact_text`] (the store's redaction rules applied word by
//! word, URL credentials, and the secret values the caller knows, e.g. from its
//! environment), so a bundle can be attached to a public issue. Raw logs are streamed: the
//! memory used does not grow with the log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::redact::{self, REDACTED};
use crate::schema::MAX_RAW_LINE_BYTES;
use crate::schema::{Metadata, SourceKind};
use crate::store::{Store, nofollow};

/// Failing requests copied at most.
pub const MAX_FAILING: usize = 100;
/// Lines of a recorded command's log shown.
pub const LOG_TAIL_LINES: usize = 50;
/// Bytes read from the end of a log for its tail.
const TAIL_BYTES: u64 = 256 * 1024;

/// One file of a bundle: its name inside the bundle folder and its bytes.
pub type BundleFile = (String, Vec<u8>);

/// Redact free text: known secret values cut, then each line's words through the store's
/// command-line rules (`--api-key X`, `NAME_KEY=X`, `Authorization: ...`, `Bearer X`,
/// URL credentials), whitespace kept.
pub fn redact_text(text: &str, known: &[String]) -> String {
    let mut s = text.to_string();
    for k in known.iter().filter(|k| k.len() >= 4) {
        s = s.replace(k.as_str(), REDACTED);
    }
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_line(line));
    }
    redact::url_in_text(&out)
}

fn redact_line(line: &str) -> String {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return line.to_string();
    }
    let red = redact::args(&words);
    if red == words {
        return line.to_string();
    }
    // Put each (possibly redacted) word back where it was.
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    for (w, r) in words.iter().zip(&red) {
        let at = rest.find(w.as_str()).unwrap_or(0);
        out.push_str(&rest[..at]);
        out.push_str(r);
        rest = &rest[at + w.len()..];
    }
    out.push_str(rest);
    out
}

/// Redact every string (and object key's value) in a JSON value.
pub fn redact_json(v: &Value, known: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(redact_text(s, known)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact_json(x, known)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = if redact::is_secret_name(k) && x.is_string() {
                        Value::String(REDACTED.into())
                    } else {
                        redact_json(x, known)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What the raw log of a `run` run says about its failures.
#[derive(Debug, Default)]
struct Failures {
    /// Redacted raw records, at most [`MAX_FAILING`].
    records: Vec<Value>,
    /// Failing requests seen in all.
    total: u64,
    /// Error kind -> a sample message.
    samples: BTreeMap<String, String>,
}

fn read_failures(path: &std::path::Path, known: &[String]) -> Result<Failures> {
    // Never a symlink or a FIFO in the store (RELIABILITY P11), never a line held past the
    // raw-line cap (P8): a longer line is no record benchkeep wrote.
    let f = nofollow::open_read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, f);
    let mut out = Failures::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let cap = MAX_RAW_LINE_BYTES as u64 + 1;
        if (&mut reader).take(cap).read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && buf.len() as u64 == cap {
            // Over the cap: skip the rest of the line without holding it.
            loop {
                let chunk = reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let n = chunk.len();
                        reader.consume(n);
                    }
                }
            }
            continue;
        }
        let line = String::from_utf8_lossy(&buf);
        if !line.contains("\"ok\":false") && !line.contains("\"ok\": false") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("ok") != Some(&Value::Bool(false)) {
            continue;
        }
        out.total += 1;
        let v = redact_json(&v, known);
        let kind = v
            .get("error_kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        if let Some(msg) = v.get("error").and_then(Value::as_str) {
            out.samples.entry(kind).or_insert_with(|| msg.to_string());
        }
        if out.records.len() < MAX_FAILING {
            out.records.push(v);
        }
    }
    Ok(out)
}

/// The last `n` lines of a text file, reading at most [`TAIL_BYTES`] from its end.
pub fn tail_lines(path: &std::path::Path, n: usize) -> Result<String> {
    let mut f =
        nofollow::open_read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // a partial first line
    }
    let from = lines.len().saturating_sub(n);
    Ok(lines[from..].join("\n"))
}

/// A Markdown code fence around `text` that no backtick run inside can close.
fn fenced(text: &str, lang: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", text.trim_end_matches('\n'))
}

fn cuda(m: &Metadata) -> Option<String> {
    let mut places: Vec<&serde_json::Map<String, Value>> = vec![&m.config];
    if let Some(g) = &m.gpu {
        places.push(&g.extra);
    }
    if let Some(s) = &m.server {
        places.push(&s.details);
    }
    places.iter().find_map(|map| {
        map.iter()
            .find(|(k, v)| k.to_ascii_lowercase().contains("cuda") && !v.is_object())
            .map(|(_, v)| crate::catalog::plain(v))
    })
}

fn environment(m: &Metadata, known: &[String]) -> String {
    let mut e = String::new();
    e.push_str(&format!("OS: {}\nCPUs: {}\n", m.host.os, m.host.cpus));
    match &m.gpu {
        Some(g) => {
            let name = g.name.as_deref().unwrap_or("unknown GPU");
            let count = g.count.map(|c| format!(" x{c}")).unwrap_or_default();
            let vram = g
                .vram_total_gb
                .map(|v| format!(", {v:.1} GB"))
                .unwrap_or_default();
            let driver = g.driver.as_deref().unwrap_or("unknown");
            e.push_str(&format!("GPU: {name}{count}{vram}\nGPU driver: {driver}\n"));
        }
        None => e.push_str("GPU: not recorded\n"),
    }
    e.push_str(&format!(
        "CUDA: {}\n",
        cuda(m).unwrap_or_else(|| "not recorded".into())
    ));
    e.push_str(&format!("Platform: {}\nModel: {}\n", m.platform, m.model));
    if let Some(s) = &m.server {
        e.push_str(&format!(
            "Server: {} API at {}, version {}{}\n",
            s.api,
            s.base_url,
            s.version.as_deref().unwrap_or("unknown"),
            s.max_model_len
                .map(|l| format!(", max_model_len {l}"))
                .unwrap_or_default()
        ));
    }
    e.push_str(&format!("benchkeep: {} {}\n", m.tool.name, m.tool.version));
    redact_text(&e, known)
}

/// Build the bundle of run `m`: `ISSUE.md`, `metadata.json`, `config.json`, and for a
/// `run` run `failing-requests.jsonl`; for a `record` run also `log-tail.txt`.
/// `known` are secret values to cut wherever they appear (the caller's environment).
pub fn build(store: &Store, m: &Metadata, known: &[String]) -> Result<Vec<BundleFile>> {
    let meta = redact_json(&serde_json::to_value(m)?, known);
    let config = redact_json(&Value::Object(m.config.clone()), known);
    let r = &m.results;
    let total = r.success_count + r.failure_count;
    let failures = match m.source.kind {
        SourceKind::Run => Some(
            super::rawdata::log_path(store, m)
                .and_then(|p| read_failures(&p, known).ok())
                .unwrap_or_default(),
        ),
        _ => None,
    };
    let log_tail = match m.source.kind {
        SourceKind::Record if crate::store::ids::file_safe(&m.test_id) == m.test_id => {
            let path = store.raw_dir().join(format!("{}.log", m.test_id));
            tail_lines(&path, LOG_TAIL_LINES)
                .ok()
                .map(|t| redact_text(&t, known))
        }
        _ => None,
    };

    let mut md = String::new();
    let what = if r.failure_count > 0 {
        format!("{} of {total} requests failed", r.failure_count)
    } else {
        format!("status {}", m.status.as_str())
    };
    md.push_str(&format!(
        "# [Bug]: {} serving {}: {what}\n\n",
        m.platform, m.model
    ));
    md.push_str(&format!(
        "_Generated by benchkeep {} from run `{}`. Secrets are replaced by `{REDACTED}`._\n\n",
        env!("CARGO_PKG_VERSION"),
        m.test_id
    ));
    md.push_str("## Your current environment\n\n");
    md.push_str(&fenced(&environment(m, known), "text"));
    if let Some(s) = &m.server {
        md.push_str("\nServer details as reported by the server:\n\n");
        let details = redact_json(&Value::Object(s.details.clone()), known);
        md.push_str(&fenced(&serde_json::to_string_pretty(&details)?, "json"));
    }
    md.push_str("\nServer configuration as recorded with the run (`config.json`):\n\n");
    md.push_str(&fenced(&serde_json::to_string_pretty(&config)?, "json"));

    md.push_str("\n## Describe the bug\n\n");
    md.push_str(&format!(
        "The benchmark run `{}` ({}) ended with status **{}**: {} of {total} requests succeeded, {} failed.",
        m.test_id, m.timestamp, m.status.as_str(), r.success_count, r.failure_count
    ));
    if let Some(load) = super::decision::load_of(m) {
        md.push_str(&format!(" The load: {load}."));
    }
    if r.unparseable_lines > 0 {
        md.push_str(&format!(
            " {} line(s) of the results could not be read.",
            r.unparseable_lines
        ));
    }
    if let Some(Value::Object(c)) = m.extra.get("command") {
        let num = |k: &str| c.get(k).filter(|v| !v.is_null()).map(crate::catalog::plain);
        if let Some(code) = num("exit_code") {
            md.push_str(&format!(" The command exited with code {code}."));
        }
        if let Some(sig) = num("signal") {
            md.push_str(&format!(" It was ended by signal {sig}."));
        }
        if let Some(out) = num("output") {
            md.push_str(&format!(" Its results file: {}.", redact_text(&out, known)));
        }
    }
    md.push_str("\n\n");
    if !r.errors_by_kind.is_empty() {
        md.push_str("| error kind | requests | sample message |\n|---|---:|---|\n");
        for (kind, n) in &r.errors_by_kind {
            let sample = failures
                .as_ref()
                .and_then(|f| f.samples.get(kind))
                .map(|s| super::markdown::escape(&crate::report::h2h::truncate(s, 300)))
                .unwrap_or_else(|| "(not in the raw log)".into());
            md.push_str(&format!(
                "| {} | {n} | {sample} |\n",
                super::markdown::escape(kind)
            ));
        }
        md.push('\n');
    }
    md.push_str("The exact command:\n\n");
    let cmd = m
        .source
        .command
        .as_deref()
        .map(|c| redact_text(c, known))
        .unwrap_or_else(|| "(not recorded)".into());
    md.push_str(&fenced(&cmd, "sh"));
    if let Some(first) = failures.as_ref().and_then(|f| f.records.first()) {
        md.push_str("\nThe first failing request (its raw record):\n\n");
        md.push_str(&fenced(&serde_json::to_string_pretty(first)?, "json"));
    }
    md.push_str("\n## Expected behaviour\n\n");
    let record = m.source.kind == SourceKind::Record;
    if record {
        md.push_str("The command exits with code 0 and writes its results file, ");
    }
    let all = match (total > 0, record) {
        (true, false) => format!("All {total} requests complete"),
        (true, true) => format!("all {total} requests complete"),
        (false, false) => "Every request completes".to_string(),
        (false, true) => "every request completes".to_string(),
    };
    md.push_str(&format!(
        "{all} successfully (status `completed`), as for the same workload on the other platforms benchmarked with benchkeep.\n"
    ));
    if let Some(t) = &log_tail {
        md.push_str(&format!(
            "\n## Logs\n\nThe last {LOG_TAIL_LINES} lines of the command's output (`raw/{}.log`):\n\n",
            m.test_id
        ));
        md.push_str(&fenced(t, "text"));
    }
    md.push_str("\n## Attached\n\n- `metadata.json`: the run's full record (benchkeep's metadata schema)\n- `config.json`: the server configuration recorded with the run\n");
    if let Some(f) = &failures {
        md.push_str(&format!(
            "- `failing-requests.jsonl`: {} of the {} failing requests' raw records\n",
            f.records.len(),
            f.total
        ));
    }
    if log_tail.is_some() {
        md.push_str("- `log-tail.txt`: the log tail above\n");
    }

    let mut files: Vec<BundleFile> = vec![
        ("ISSUE.md".into(), md.into_bytes()),
        (
            "metadata.json".into(),
            (serde_json::to_string_pretty(&meta)? + "\n").into_bytes(),
        ),
        (
            "config.json".into(),
            (serde_json::to_string_pretty(&config)? + "\n").into_bytes(),
        ),
    ];
    if let Some(f) = failures {
        let mut jl = String::new();
        for rec in &f.records {
            jl.push_str(&serde_json::to_string(rec)?);
            jl.push('\n');
        }
        files.push(("failing-requests.jsonl".into(), jl.into_bytes()));
    }
    if let Some(t) = log_tail {
        files.push(("log-tail.txt".into(), (t + "\n").into_bytes()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_redaction() {
        let known = vec!["sk-CANARY1xyz".to_string()];
        let t = "key sk-CANARY1xyz here\n  api_key=CANARY4abc  ok\ncurl -H 'Authorization: Bearer CANARY5' http://u:CANARY3@h/x --api-key CANARY6";
        let r = redact_text(t, &known);
        assert!(!r.contains("CANARY"), "{r}");
        assert!(r.contains("  ok"), "whitespace kept: {r}");
        assert_eq!(redact_text("plain line\n", &[]), "plain line\n");
    }

    #[test]
    fn json_redaction_and_fences() {
        let v = serde_json::json!({"HF_TOKEN": "CANARY7", "args": ["--api-key", "x"], "n": 1});
        let r = redact_json(&v, &[]);
        assert_eq!(r["HF_TOKEN"], "***");
        assert_eq!(r["n"], 1);
        assert_eq!(fenced("a ``` b", ""), "````\na ``` b\n````\n");
    }
}
