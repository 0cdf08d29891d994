//! One catalog row: the metadata file's name and stat, the fields filters use, and the
//! run's headline figures (a projection of the metadata: the same keys at the same paths,
//! a few hundred bytes). `lean.rs` builds `compare`'s lean `Metadata` from it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::{Metadata, Status};
use crate::store::FileStat;

/// The row format; a catalog of another version is rebuilt.
pub const CATALOG_VERSION: u32 = 2;

/// One line of the catalog. The fields filters use come first, repeated from `run`
/// (handy columns for engines, and a reader that only filters parses just that head);
/// `run` comes last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// [`CATALOG_VERSION`].
    pub catalog: u32,
    /// The metadata file's name in `metadata/`.
    pub file: String,
    /// What the file was when this row was made from it.
    pub stat: FileStat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Why the file could not be used (readers skip it and say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The run's headline figures ([`project`]) besides the head above: every key here
    /// has the value the metadata file holds (as read); a key left out is read from the
    /// file when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Value>,
}

/// The head of a row (everything before `run`), compact: its strings in one buffer (two
/// allocations a row, not a dozen: at 100,000 rows the allocations and the fresh pages
/// behind them were most of a warm `query`).
#[derive(Debug, Clone)]
pub struct Head {
    pub catalog: u32,
    pub stat: FileStat,
    pub status: Option<Status>,
    /// file, test_id, timestamp, platform, model, skipped, then each label's key and value.
    text: Box<str>,
    /// Where each string of `text` ends.
    ends: Box<[u32]>,
    has_skipped: bool,
}

const FILE: usize = 0;
const TEST_ID: usize = 1;
const TIMESTAMP: usize = 2;
const PLATFORM: usize = 3;
const MODEL: usize = 4;
const SKIPPED: usize = 5;
const LABELS: usize = 6;

impl Head {
    fn text(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }
    /// The metadata file's name in `metadata/`.
    pub fn file(&self) -> &str {
        self.text(FILE)
    }
    pub fn test_id(&self) -> &str {
        self.text(TEST_ID)
    }
    pub fn timestamp(&self) -> &str {
        self.text(TIMESTAMP)
    }
    pub fn platform(&self) -> &str {
        self.text(PLATFORM)
    }
    pub fn model(&self) -> &str {
        self.text(MODEL)
    }
    /// Why the file could not be used, if it could not.
    pub fn skipped(&self) -> Option<&str> {
        self.has_skipped.then(|| self.text(SKIPPED))
    }
    /// The labels, in the row's order.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        (LABELS..self.ends.len())
            .step_by(2)
            .map(|k| (self.text(k), self.text(k + 1)))
    }
    /// A label's value (the last one given, as a map read from JSON keeps).
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| v)
    }
    /// The labels as a map.
    pub fn labels_map(&self) -> BTreeMap<String, String> {
        self.labels()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A head as parsed: its strings borrowed from the line where they hold no escape.
#[derive(Deserialize)]
pub(super) struct RawHead<'a> {
    pub(super) catalog: u32,
    #[serde(borrow)]
    pub(super) file: Cow<'a, str>,
    pub(super) stat: FileStat,
    #[serde(default, borrow)]
    pub(super) test_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) timestamp: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) platform: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) model: Cow<'a, str>,
    #[serde(default)]
    pub(super) status: Option<Status>,
    #[serde(default, borrow)]
    pub(super) labels: Labels<'a>,
    #[serde(default, borrow)]
    pub(super) skipped: Option<Cow<'a, str>>,
}

/// Labels as a list, in the row's order (a JSON object of strings).
#[derive(Default)]
pub(super) struct Labels<'a>(pub(super) Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Labels<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Text<'a>, Text<'a>>()? {
                    out.push((k.0, v.0));
                }
                Ok(Labels(out))
            }
            fn visit_unit<E>(self) -> Result<Labels<'a>, E> {
                Ok(Labels::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the line when it holds no escape.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl From<RawHead<'_>> for Head {
    fn from(r: RawHead<'_>) -> Head {
        let skipped = r.skipped.as_deref();
        let mut parts: Vec<&str> = vec![
            &r.file,
            &r.test_id,
            &r.timestamp,
            &r.platform,
            &r.model,
            skipped.unwrap_or(""),
        ];
        for (k, v) in &r.labels.0 {
            parts.push(k);
            parts.push(v);
        }
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = Vec::with_capacity(parts.len());
        for p in parts {
            text.push_str(p);
            // A head is far below 4 GiB: parts are read up to 1 GiB in all.
            ends.push(u32::try_from(text.len()).expect("a head under 4 GiB"));
        }
        Head {
            catalog: r.catalog,
            stat: r.stat,
            status: r.status,
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            has_skipped: skipped.is_some(),
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, serde_json::Error> {
    if let Some(head) = super::scan::head(bytes) {
        return Ok(head);
    }
    serde_json::from_slice::<RawHead>(bytes).map(Head::from)
}

/// The keys a row keeps under `run`, as paths in the metadata (the head's fields are not
/// repeated there). Everything the filters, the sort orders, `query`'s headline figures
/// (`catalog::HEADLINE`), the comparison table and the head-to-head use; nothing else
/// (`config`, `server`, `host`, `tool`, `source`, the process, server timings,
/// steady-state windows, p90 and confidence intervals, free-form keys). `null` values
/// are left out (a reader treats a missing figure as unknown, as `null` is).
const TOP: &[&str] = &["schema_version", "sweep", "repeat"];
const TEST: &[&str] = &["num_requests", "input_file"];
/// What `h2h::load_key` reads of `test.load`.
const LOAD: &[&str] = &["rate", "arrival", "burstiness", "concurrency", "max_tokens"];
const RESULTS: &[&str] = &[
    "success_count",
    "failure_count",
    "total_time_seconds",
    "model_load_time_seconds",
    "throughput_tokens_per_sec",
    "throughput_requests_per_sec",
    "output_tokens_per_sec",
    "avg_prompt_tokens",
    "avg_completion_tokens",
    "gpu_utilization_percent",
    "total_completion_tokens",
    "output_tokens_per_joule",
    "unknown",
];
/// Each latency with the percentiles kept: p50/p95/p99 of TTFT and E2E, p50 of the
/// per-token ones (what the headline figures and the head-to-head show).
const LATENCIES: &[(&str, &[&str])] = &[
    ("ttft", &["p50", "p95", "p99"]),
    ("tpot", &["p50"]),
    ("itl", &["p50"]),
    ("e2e", &["p50", "p95", "p99"]),
];
const GPU: &[&str] = &["name", "vram_used_gb", "energy_joules"];
/// The head's fields, repeated at the top of `run` when a reader looks figures up in it.
pub const HEAD_KEYS: &[&str] = &[
    "test_id",
    "timestamp",
    "platform",
    "model",
    "status",
    "labels",
];

fn pick(from: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| {
            from.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| ((*k).to_string(), v.clone()))
        })
        .collect()
}

/// The run's headline figures: the metadata as `serde_json` writes it (after reading: the
/// same value `query` looks figures up in), cut to the keys above. Of what identifies
/// the input (`h2h::input_key`: the label `input`, else `test.input_sha256` when it names
/// the requests, i.e. differs from `test.raw_sha256`, else `test.synthetic`) only the one
/// that decides is kept.
pub fn project(m: &Metadata) -> Value {
    let full = serde_json::to_value(m).expect("metadata serializes");
    let Value::Object(full) = full else {
        return Value::Null;
    };
    let mut out = pick(&full, TOP);
    if let Some(Value::Object(test)) = full.get("test") {
        let mut t = pick(test, TEST);
        if let Some(Value::Object(load)) = test.get("load") {
            t.insert("load".into(), Value::Object(pick(load, LOAD)));
        }
        let labelled = m.labels.get("input").is_some_and(|v| !v.trim().is_empty());
        let sha = test
            .get("input_sha256")
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .filter(|sha| test.get("raw_sha256") != Some(*sha));
        match (labelled, sha, test.get("synthetic")) {
            (true, _, _) => {}
            (false, Some(sha), _) => {
                t.insert("input_sha256".into(), sha.clone());
            }
            (false, None, Some(syn)) if !syn.is_null() => {
                t.insert("synthetic".into(), syn.clone());
            }
            _ => {}
        }
        out.insert("test".into(), Value::Object(t));
    }
    if let Some(Value::Object(results)) = full.get("results") {
        let mut r = pick(results, RESULTS);
        if let Some(Value::Object(lat)) = results.get("latency_ms") {
            let mut l = Map::new();
            for (key, percentiles) in LATENCIES {
                if let Some(Value::Object(s)) = lat.get(*key) {
                    l.insert((*key).to_string(), Value::Object(pick(s, percentiles)));
                }
            }
            r.insert("latency_ms".into(), Value::Object(l));
        }
        out.insert("results".into(), Value::Object(r));
    }
    if let Some(Value::Object(g)) = full.get("gpu") {
        out.insert("gpu".into(), Value::Object(pick(g, GPU)));
    }
    Value::Object(out)
}

/// A row from a fresh read of a metadata file.
pub fn row_of(name: &str, stat: FileStat, result: Result<Metadata, String>) -> Row {
    let (m, skipped) = match result {
        Ok(m) => (Some(m), None),
        Err(why) => (None, Some(why)),
    };
    Row {
        catalog: CATALOG_VERSION,
        file: name.to_string(),
        stat,
        test_id: m.as_ref().map(|m| m.test_id.clone()),
        timestamp: m.as_ref().map(|m| m.timestamp.clone()),
        platform: m.as_ref().map(|m| m.platform.clone()),
        model: m.as_ref().map(|m| m.model.clone()),
        status: m.as_ref().map(|m| m.status),
        labels: m.as_ref().map(|m| m.labels.clone()),
        skipped,
        run: m.as_ref().map(project),
    }
}

/// A row as one compact JSON line (with its newline).
pub fn line_of(row: &Row) -> Vec<u8> {
    let mut out = serde_json::to_vec(row).expect("a row serializes");
    out.push(b'\n');
    out
}

/// The head of a line: the bytes before `,"run":{` (which cannot occur earlier: strings
/// escape their quotes and no head field holds an object of objects), closed with `}`;
/// the whole line when `run` is not last.
pub fn head_of(line: &[u8]) -> Result<Head, serde_json::Error> {
    static RUN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b",\"run\":{"));
    match RUN.find(line) {
        Some(at) => {
            // One buffer per thread for the prefix: no allocation per row.
            thread_local! {
                static PREFIX: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
            }
            let head = PREFIX.with_borrow_mut(|prefix| {
                prefix.clear();
                prefix.extend_from_slice(&line[..at]);
                prefix.push(b'}');
                parse_head(prefix)
            });
            // Rewritten by another tool with its keys in another order: read it whole.
            match head {
                Ok(h) if h.status.is_some() && !h.test_id().is_empty() => Ok(h),
                _ => parse_head(line),
            }
        }
        None => parse_head(line),
    }
}
