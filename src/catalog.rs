//! The catalog of runs: filters (platform, model, labels, date), sort orders, the lookup
//! of a figure by name, and the stored sweeps (runs linked by `sweep.id`), shared by
//! `compare`, `query`, `export` and the report.

use std::collections::BTreeMap;
use std::sync::Once;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::metrics::sweep;
use crate::schema::Metadata;
use crate::store::ids::file_safe;

pub mod shards;

/// Which runs to keep. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Platform names; a run matches any of them (case-insensitive).
    pub platforms: Vec<String>,
    /// Model names; a run matches any of them, as written or in its file-safe form
    /// (`gemma3:12b` matches `--model gemma3-12b`), case-insensitive.
    pub models: Vec<String>,
    /// Every label must be present with this value.
    pub labels: BTreeMap<String, String>,
    /// Runs whose timestamp is at or after this date (midnight UTC) or timestamp (any UTC
    /// offset): instants are compared, not text. A run whose timestamp cannot be read is
    /// treated as older than any date.
    pub since: Option<String>,
}

/// A `--since` value or a metadata timestamp as an instant: an RFC 3339 timestamp with any
/// offset (`T`/`Z` in either case), or a date (`2024-10-28`, midnight UTC). `None` when it
/// is neither.
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(&s.to_ascii_uppercase())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A run's timestamp as an instant; `None` (unknown, older than any date) when it cannot
/// be read, with a warning the first time.
pub fn run_instant(m: &Metadata) -> Option<DateTime<Utc>> {
    instant_of(&m.test_id, &m.timestamp)
}

/// [`run_instant`] from a run's id and timestamp (a catalog row's head).
pub fn instant_of(test_id: &str, timestamp: &str) -> Option<DateTime<Utc>> {
    static WARNED: Once = Once::new();
    let t = instant(timestamp);
    if t.is_none() {
        WARNED.call_once(|| {
            eprintln!(
                "warning: run {test_id} has a timestamp that is no date ({timestamp:?}): treated as unknown, older than every other run"
            );
        });
    }
    t
}

impl Filter {
    pub fn matches(&self, m: &Metadata) -> bool {
        self.matches_fields(
            &m.platform,
            &m.model,
            |k| m.labels.get(k).map(String::as_str),
            &m.test_id,
            &m.timestamp,
        )
    }

    /// [`Filter::matches`] from the fields it looks at (a catalog row's head).
    pub fn matches_fields<'a>(
        &self,
        platform: &str,
        model: &str,
        label: impl Fn(&str) -> Option<&'a str>,
        test_id: &str,
        timestamp: &str,
    ) -> bool {
        let platform_ok = self.platforms.is_empty()
            || self
                .platforms
                .iter()
                .any(|p| p.eq_ignore_ascii_case(platform));
        let model_ok = self.models.is_empty()
            || self.models.iter().any(|want| {
                want.eq_ignore_ascii_case(model)
                    || file_safe(want).eq_ignore_ascii_case(&file_safe(model))
            });
        let labels_ok = self
            .labels
            .iter()
            .all(|(k, v)| label(k).is_some_and(|have| have == v));
        let since_ok = self.since.as_deref().is_none_or(|since| {
            match (instant(since), instant_of(test_id, timestamp)) {
                (Some(since), Some(at)) => at >= since,
                // An unknown time is older than any date.
                _ => false,
            }
        });
        platform_ok && model_ok && labels_ok && since_ok
    }

    /// A short description for "nothing matched" messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.platforms.is_empty() {
            parts.push(format!("platform {}", self.platforms.join("|")));
        }
        if !self.models.is_empty() {
            parts.push(format!("model {}", self.models.join("|")));
        }
        for (k, v) in &self.labels {
            parts.push(format!("label {k}={v}"));
        }
        if let Some(s) = &self.since {
            parts.push(format!("since {s}"));
        }
        if parts.is_empty() {
            "any run".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Sort orders for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Oldest first (default).
    Date,
    Platform,
    Model,
    /// Highest throughput first.
    Throughput,
    /// Highest output tok/s first.
    Output,
    /// Most requests first.
    Requests,
    /// Longest first.
    Time,
}

/// Sort runs in place (stable; ties keep date order). The order is found on indices and
/// applied by swaps: a run is large, and 100,000 of them are not copied around.
pub fn sort(runs: &mut [Metadata], key: SortKey) {
    let desc = |a: f64, b: f64| b.total_cmp(&a);
    let mut order: Vec<usize> = (0..runs.len()).collect();
    let r = &*runs;
    match key {
        SortKey::Date => {
            let at: Vec<_> = r.iter().map(run_instant).collect();
            order.sort_by_key(|&i| at[i]);
        }
        SortKey::Platform => order.sort_by(|&a, &b| r[a].platform.cmp(&r[b].platform)),
        SortKey::Model => order.sort_by(|&a, &b| r[a].model.cmp(&r[b].model)),
        SortKey::Throughput => order.sort_by(|&a, &b| {
            desc(
                r[a].results.throughput_tokens_per_sec,
                r[b].results.throughput_tokens_per_sec,
            )
        }),
        SortKey::Output => order.sort_by(|&a, &b| {
            desc(
                r[a].results.output_tokens_per_sec,
                r[b].results.output_tokens_per_sec,
            )
        }),
        SortKey::Requests => order.sort_by_key(|&i| std::cmp::Reverse(r[i].test.num_requests)),
        SortKey::Time => order.sort_by(|&a, &b| {
            desc(
                r[a].results.total_time_seconds,
                r[b].results.total_time_seconds,
            )
        }),
    }
    crate::store::permute_in_place(runs, order);
}

/// A stored sweep: the runs linked by one `sweep.id`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRuns {
    pub id: String,
    pub axis: String,
    pub platform: String,
    pub model: String,
    /// The attainment target the sweep recorded (`sweep.target`, a fraction or a
    /// percentage), else [`sweep::DEFAULT_TARGET`].
    pub target: f64,
    /// Indexes into the runs, one per point index: the latest finished run of that index
    /// (a rerun of a point replaces it), in index order.
    pub runs: Vec<usize>,
    /// A sweep split across machines: which shards stored their points.
    pub shards: Option<shards::Shards>,
    /// Parallel to `runs`: the repeats of each point (`sweep --repeat N`), by repeat
    /// index: the runs of that index in the same repeat group as the latest one (that run
    /// alone for a point without repeats).
    pub repeats: Vec<Vec<usize>>,
}

impl SweepRuns {
    /// The sweep's conclusions from its points.
    pub fn analyze(&self, runs: &[Metadata]) -> sweep::Analysis {
        let points = self
            .repeats
            .iter()
            .filter_map(|idx| {
                let ms: Vec<&Metadata> = idx.iter().map(|&i| &runs[i]).collect();
                sweep::Point::of_repeats(&ms)
            })
            .collect();
        sweep::analyze(&self.axis, points, self.target)
    }
}

/// Every sweep among `runs` (those with a `sweep` key), by id. Runs still running are
/// left out; of several finished runs with one index the latest counts, with the other
/// repeats of its repeat group (`sweep --repeat N`).
pub fn sweeps(runs: &[Metadata]) -> Vec<SweepRuns> {
    let mut by_id: BTreeMap<&str, BTreeMap<u32, usize>> = BTreeMap::new();
    // Every run of each split sweep, running ones too (for the shards' states).
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // (sweep id, index, repeat group) -> repeat index -> the latest run
    let mut grouped: BTreeMap<(&str, u32, &str), BTreeMap<u32, usize>> = BTreeMap::new();
    for (i, m) in runs.iter().enumerate() {
        let Some(link) = &m.sweep else { continue };
        if link.shard.is_some() {
            members.entry(&link.id).or_default().push(i);
        }
        if m.status == crate::schema::Status::Running || link.id.is_empty() {
            continue;
        }
        if let Some(r) = &m.repeat {
            let slot = grouped
                .entry((&link.id, link.index, &r.group))
                .or_default()
                .entry(r.index);
            keep_latest(slot, i, runs);
        }
        keep_latest(
            by_id.entry(&link.id).or_default().entry(link.index),
            i,
            runs,
        );
    }
    by_id
        .into_iter()
        .map(|(id, points)| {
            let runs_of: Vec<usize> = points.into_values().collect();
            let repeats = runs_of
                .iter()
                .map(|&i| {
                    let m = &runs[i];
                    let (Some(link), Some(r)) = (&m.sweep, &m.repeat) else {
                        return vec![i];
                    };
                    grouped
                        .get(&(id, link.index, r.group.as_str()))
                        .map(|g| g.values().copied().collect())
                        .unwrap_or_else(|| vec![i])
                })
                .collect();
            let first = &runs[runs_of[0]];
            let link = first.sweep.as_ref();
            let target = runs_of
                .iter()
                .find_map(|&i| {
                    let extra = &runs[i].sweep.as_ref()?.extra;
                    // `sweep.target`, or the target a `sweep --slo` probe was judged by.
                    extra
                        .get("target")
                        .or_else(|| extra.get("goodput")?.get("target"))?
                        .as_f64()
                })
                .map(|t| if t > 1.0 { t / 100.0 } else { t })
                .filter(|t| *t > 0.0 && *t < 1.0)
                .unwrap_or(sweep::DEFAULT_TARGET);
            SweepRuns {
                id: id.to_string(),
                axis: link.map(|l| l.axis.clone()).unwrap_or_default(),
                platform: first.platform.clone(),
                model: first.model.clone(),
                target,
                runs: runs_of,
                shards: members.get(id).and_then(|m| shards::of(runs, m)),
                repeats,
            }
        })
        .collect()
}

/// Put run `i` in `slot` unless the run already there is later.
fn keep_latest(
    slot: std::collections::btree_map::Entry<'_, u32, usize>,
    i: usize,
    runs: &[Metadata],
) {
    match slot {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(i);
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            if run_instant(&runs[i]) >= run_instant(&runs[*o.get()]) {
                o.insert(i);
            }
        }
    }
}

/// A metric name as keys: split at dots, except inside `["..."]` (or `['...']`), which
/// names one key that holds dots itself: `config["a.b"]` is `config` then `a.b`.
pub fn metric_path(name: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cur = String::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if c == '.' {
            keys.push(std::mem::take(&mut cur));
            rest = &rest[1..];
        } else if let Some(inner) = rest.strip_prefix("[\"").or_else(|| rest.strip_prefix("['"))
            && let quote = &rest[1..2]
            && let Some(end) = inner.find(&format!("{quote}]"))
        {
            if !cur.is_empty() {
                keys.push(std::mem::take(&mut cur));
            }
            keys.push(inner[..end].to_string());
            rest = &inner[end + 2..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if rest.is_empty() {
                return keys;
            }
        } else {
            cur.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    keys.push(cur);
    keys
}

/// The figures printed when no `--metric` is given.
pub const HEADLINE: &[&str] = &[
    "throughput_tokens_per_sec",
    "output_tokens_per_sec",
    "throughput_requests_per_sec",
    "success_count",
    "failure_count",
    "total_time_seconds",
    "model_load_time_seconds",
    "avg_prompt_tokens",
    "avg_completion_tokens",
    "ttft.p50",
    "ttft.p99",
    "tpot.p50",
    "itl.p50",
    "e2e.p50",
    "gpu_utilization_percent",
];

/// The headline figures of a run as one JSON object (what `query --json` prints).
pub fn headline_json(
    test_id: &str,
    timestamp: &str,
    platform: &str,
    model: &str,
    status: crate::schema::Status,
    v: &Value,
) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("test_id".into(), json!(test_id));
    obj.insert("timestamp".into(), json!(timestamp));
    obj.insert("platform".into(), json!(platform));
    obj.insert("model".into(), json!(model));
    obj.insert("status".into(), json!(status));
    for key in HEADLINE {
        if let Some(x) = lookup(v, key) {
            obj.insert((*key).to_string(), x);
        }
    }
    Value::Object(obj)
}

/// Find a figure: the name as a dotted path from the metadata root, else under `results`,
/// `results.latency_ms`, `test`, `gpu`.
pub fn lookup(meta: &Value, name: &str) -> Option<Value> {
    let path = metric_path(name);
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let roots: [&[&str]; 5] = [
        &[],
        &["results"],
        &["results", "latency_ms"],
        &["test"],
        &["gpu"],
    ];
    for root in roots {
        let mut v = meta;
        let mut ok = true;
        for key in root.iter().chain(path.iter()) {
            match v.get(key) {
                Some(next) => v = next,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Some(v.clone());
        }
    }
    None
}

/// A figure as plain text: strings unquoted, `null` for a missing value.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod since_tests {
    use super::*;

    fn run(ts: &str) -> Metadata {
        let mut m = Metadata::new(
            crate::schema::SourceKind::Analyze,
            "f",
            "p",
            "m",
            Utc::now(),
        );
        m.timestamp = ts.into();
        m
    }

    #[test]
    fn since_compares_instants() {
        let f = |s: &str| Filter {
            since: Some(s.into()),
            ..Default::default()
        };
        // 08:00Z is 10:00+02:00: the same instant.
        assert!(f("2024-10-28T10:00:00+02:00").matches(&run("2024-10-28T08:00:00Z")));
        assert!(!f("2024-10-28T10:00:01+02:00").matches(&run("2024-10-28T08:00:00Z")));
        // As text "2024-10-28T09:00:00-05:00" < "2024-10-28T10"; as instants it is later.
        assert!(f("2024-10-28T10:00:00Z").matches(&run("2024-10-28T09:00:00-05:00")));
        assert!(f("2024-10-28t08:00:00z").matches(&run("2024-10-28T08:00:00Z")));
        assert!(f("2024-10-28").matches(&run("2024-10-28T00:00:00Z")));
        assert!(!f("2024-10-28").matches(&run("2024-10-27T23:59:59Z")));
        assert!(!f("2000-01-01").matches(&run("not a date")));
    }

    #[test]
    fn metric_paths_with_dotted_keys() {
        assert_eq!(metric_path("ttft.p50"), ["ttft", "p50"]);
        assert_eq!(metric_path("config[\"a.b\"]"), ["config", "a.b"]);
        assert_eq!(metric_path("config['a.b'].c"), ["config", "a.b", "c"]);
        assert_eq!(metric_path("x[\"unterminated"), ["x[\"unterminated"]);
        let meta = json!({"config": {"a.b": 3, "a": {"b": 4}}});
        assert_eq!(lookup(&meta, "config[\"a.b\"]"), Some(json!(3)));
        assert_eq!(lookup(&meta, "config.a.b"), Some(json!(4)));
    }

    #[test]
    fn unknown_timestamps_sort_oldest() {
        let mut runs = vec![
            run("not a date"),
            run("2024-10-28T08:00:00Z"),
            run("2024-10-28T09:00:00+02:00"),
        ];
        sort(&mut runs, SortKey::Date);
        let ts: Vec<&str> = runs.iter().map(|m| m.timestamp.as_str()).collect();
        assert_eq!(
            ts,
            [
                "not a date",
                "2024-10-28T09:00:00+02:00",
                "2024-10-28T08:00:00Z"
            ]
        );
    }
}
