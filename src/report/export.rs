//! `benchkeep export`: one flat row per run, every metadata field under its dotted name
//! (`results.latency_ms.ttft.p50`, `config.max_model_len`, `labels.gpu`), as CSV or JSON
//! Lines, for pandas, DuckDB and Spark.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::report::table::field;
use crate::schema::Metadata;

/// Columns that come first, in this order; the rest follow alphabetically.
const FIRST: [&str; 5] = ["test_id", "timestamp", "platform", "model", "status"];

/// The metadata as one flat object with dotted keys. Arrays stay arrays (JSON Lines) and
/// empty objects disappear.
pub fn flatten(m: &Metadata) -> Map<String, Value> {
    let mut out = Map::new();
    let v = serde_json::to_value(m).expect("metadata serializes");
    walk(&mut out, String::new(), v);
    out
}

fn walk(out: &mut Map<String, Value>, prefix: String, v: Value) {
    match v {
        Value::Object(obj) => {
            for (k, v) in obj {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                walk(out, key, v);
            }
        }
        other => {
            out.insert(prefix, other);
        }
    }
}

/// The column order for a set of flat rows.
pub fn columns(rows: &[Map<String, Value>]) -> Vec<String> {
    let all: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    let mut cols: Vec<String> = FIRST
        .iter()
        .filter(|c| all.contains(*c))
        .map(|c| c.to_string())
        .collect();
    cols.extend(
        all.into_iter()
            .filter(|c| !FIRST.contains(c))
            .map(str::to_string),
    );
    cols
}

fn csv_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => field(s),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => field(&other.to_string()),
    }
}

/// RFC 4180 CSV: a header of dotted names, one row per run; a field a run lacks is empty.
pub fn csv(runs: &[Metadata]) -> String {
    let rows: Vec<Map<String, Value>> = runs.iter().map(flatten).collect();
    let cols = columns(&rows);
    let mut out = String::new();
    out.push_str(&cols.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
    out.push('\n');
    for r in &rows {
        let cells: Vec<String> = cols.iter().map(|c| csv_value(r.get(c))).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// JSON Lines: one flat object per run.
pub fn jsonl(runs: &[Metadata]) -> String {
    let mut out = String::new();
    for m in runs {
        out.push_str(&serde_json::to_string(&flatten(m)).expect("json"));
        out.push('\n');
    }
    out
}
