//! The Prometheus text exposition (format 0.0.4) of a server's `/metrics`, parsed in
//! bounded memory into a [`Snapshot`]: counters and gauges summed over label sets, and
//! histograms (cumulative buckets, `_sum`, `_count`) merged over label sets, for the
//! `vllm:` family only (FORMATS.md §4.5).
//!
//! Label sets are summed (vLLM's data-parallel engines carry one `engine` label each);
//! `_created` samples are ignored; a line that does not parse is counted and skipped. A
//! body over [`MAX_SCRAPE_BYTES`] is refused by the scraper before it reaches here.

use std::collections::BTreeMap;

/// Most bytes of one `/metrics` body read (vLLM's is ~60 KiB; LoRA or many engines add
/// some). A longer body is an error, not a cut.
pub const MAX_SCRAPE_BYTES: usize = 4 << 20;
/// Most distinct series (name plus non-engine labels) kept from one body.
pub const MAX_SERIES: usize = 10_000;
/// The prefix of the samples kept.
const PREFIX: &str = "vllm:";

/// One histogram, merged over label sets: `(le, cumulative count)` sorted by `le`, with
/// `+Inf` last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Histogram {
    /// `self - before` (a histogram that lost counts, i.e. a restarted server, gives
    /// `None`). Bucket bounds that differ also give `None`.
    pub fn minus(&self, before: &Histogram) -> Option<Histogram> {
        if before.buckets.is_empty() {
            return Some(self.clone());
        }
        if before.buckets.len() != self.buckets.len()
            || self.count < before.count
            || self
                .buckets
                .iter()
                .zip(&before.buckets)
                .any(|(a, b)| a.0 != b.0 || a.1 < b.1)
        {
            return None;
        }
        Some(Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&before.buckets)
                .map(|(a, b)| (a.0, a.1 - b.1))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        })
    }

    /// The mean in the histogram's unit, when it counted anything.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The first finite bucket bound: a quantile at or below it is only known to lie in
    /// `(0, bound]`.
    pub fn first_bound(&self) -> Option<f64> {
        self.buckets.first().map(|b| b.0).filter(|b| b.is_finite())
    }

    /// The `q` quantile (0..1) the way Prometheus' `histogram_quantile` estimates it:
    /// linear within the bucket the rank falls in, from the bucket below's bound (0 for
    /// the first); a rank in the `+Inf` bucket gives the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, cum) in &self.buckets {
            if cum >= rank && cum > 0.0 {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = cum - lower.1;
                let frac = if in_bucket > 0.0 {
                    (rank - lower.1) / in_bucket
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * frac);
            }
            if le.is_finite() {
                lower = (le, cum);
            }
        }
        Some(lower.0)
    }
}

/// The `vllm:` metrics of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Counters and gauges by name, summed over every label set.
    pub values: BTreeMap<String, f64>,
    /// Counters and gauges by name and one distinguishing label (`finished_reason`,
    /// `reason`): `name{label="value"}`.
    pub labeled: BTreeMap<String, f64>,
    /// Histograms by base name (without `_bucket`/`_sum`/`_count`).
    pub histograms: BTreeMap<String, Histogram>,
    /// Lines that did not parse.
    pub bad_lines: u64,
    /// Whether any `vllm:` sample was seen.
    pub vllm: bool,
}

impl Snapshot {
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    pub fn histogram(&self, name: &str) -> Option<&Histogram> {
        self.histograms.get(name)
    }
}

/// Parse an exposition. With `model`, samples whose `model_name` label names another
/// model are left out (a server serving several models); samples without the label count.
pub fn parse(text: &str, model: Option<&str>) -> Snapshot {
    let mut snap = Snapshot::default();
    // (base name, le) -> cumulative count, merged over label sets.
    let mut buckets: BTreeMap<String, BTreeMap<Le, f64>> = BTreeMap::new();
    let mut series = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || !line.starts_with(PREFIX) {
            continue;
        }
        let Some(s) = sample(line) else {
            snap.bad_lines += 1;
            continue;
        };
        snap.vllm = true;
        if let (Some(want), Some(got)) = (model, s.label("model_name"))
            && want != got
        {
            continue;
        }
        if s.name.ends_with("_created") {
            continue;
        }
        if series >= MAX_SERIES {
            break;
        }
        series += 1;
        if let Some(base) = s.name.strip_suffix("_bucket") {
            let Some(le) = s.label("le").and_then(parse_value) else {
                snap.bad_lines += 1;
                continue;
            };
            *buckets
                .entry(base.to_string())
                .or_default()
                .entry(Le(le))
                .or_default() += s.value;
            continue;
        }
        if let Some(base) = s.name.strip_suffix("_sum")
            && buckets.contains_key(base)
        {
            snap.histograms.entry(base.to_string()).or_default().sum += s.value;
            continue;
        }
        if let Some(base) = s.name.strip_suffix("_count")
            && buckets.contains_key(base)
        {
            snap.histograms.entry(base.to_string()).or_default().count += s.value;
            continue;
        }
        *snap.values.entry(s.name.to_string()).or_default() += s.value;
        for key in ["finished_reason", "reason"] {
            if let Some(v) = s.label(key) {
                *snap
                    .labeled
                    .entry(format!("{}{{{key}=\"{v}\"}}", s.name))
                    .or_default() += s.value;
            }
        }
    }
    for (name, b) in buckets {
        let h = snap.histograms.entry(name).or_default();
        h.buckets = b.into_iter().map(|(le, c)| (le.0, c)).collect();
    }
    snap
}

/// A bucket bound, ordered (`+Inf` last).
#[derive(Clone, Copy, Debug)]
struct Le(f64);
impl PartialEq for Le {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Le {}
impl PartialOrd for Le {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Le {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `name{k="v",...} value [timestamp]`.
fn sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(r)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next()?)?;
    if fields.next().is_some_and(|t| t.parse::<i64>().is_err()) || fields.next().is_some() {
        return None;
    }
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The labels up to the closing `}` and what follows it.
fn label_set(mut s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let body = s[eq + 1..].trim_start();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            } else {
                value.push(c);
            }
        }
        labels.push((key, value));
        s = &body[end? + 1..];
    }
}

/// A sample value: a float, `NaN`, `+Inf`, `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_running{engine="0",model_name="other"} 7.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 2.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 5.0
vllm:request_success_created{engine="0",finished_reason="stop",model_name="m"} 1.7e+09
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="m"} 6.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 8.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 8.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 4.0
vllm:broken{engine="0" 1
python_gc_objects_collected_total{generation="0"} 1.0
"#;

    #[test]
    fn parses_sums_and_filters() {
        let s = parse(TEXT, Some("m"));
        assert!(s.vllm);
        assert_eq!(s.value("vllm:num_requests_running"), Some(4.0));
        assert_eq!(s.value("vllm:request_success_total"), Some(7.0));
        assert_eq!(
            s.labeled
                .get("vllm:request_success_total{finished_reason=\"stop\"}"),
            Some(&2.0)
        );
        assert!(s.value("vllm:request_success_created").is_none());
        let h = s.histogram("vllm:time_to_first_token_seconds").unwrap();
        assert_eq!(
            h.buckets,
            vec![(0.1, 2.0), (1.0, 6.0), (f64::INFINITY, 8.0)]
        );
        assert_eq!((h.count, h.sum, h.mean()), (8.0, 4.0, Some(0.5)));
        assert_eq!(s.bad_lines, 1);
        let all = parse(TEXT, None);
        assert_eq!(all.value("vllm:num_requests_running"), Some(11.0));
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let h = Histogram {
            buckets: vec![(0.1, 2.0), (1.0, 6.0), (f64::INFINITY, 8.0)],
            sum: 0.0,
            count: 8.0,
        };
        // rank 4 of 8: halfway through the (0.1, 1.0] bucket's 4 counts.
        assert!((h.quantile(0.5).unwrap() - 0.55).abs() < 1e-9);
        assert!((h.quantile(0.125).unwrap() - 0.05).abs() < 1e-9);
        // rank 7.92: in +Inf, so the highest finite bound.
        assert_eq!(h.quantile(0.99), Some(1.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert_eq!(h.first_bound(), Some(0.1));
        assert_eq!(Histogram::default().first_bound(), None);
    }

    #[test]
    fn differences_refuse_a_restarted_server() {
        let after = Histogram {
            buckets: vec![(0.1, 3.0), (f64::INFINITY, 9.0)],
            sum: 5.0,
            count: 9.0,
        };
        let before = Histogram {
            buckets: vec![(0.1, 1.0), (f64::INFINITY, 4.0)],
            sum: 2.0,
            count: 4.0,
        };
        let d = after.minus(&before).unwrap();
        assert_eq!(d.buckets, vec![(0.1, 2.0), (f64::INFINITY, 5.0)]);
        assert_eq!((d.sum, d.count), (3.0, 5.0));
        assert!(before.minus(&after).is_none());
    }

    #[test]
    fn label_values_unescape_and_hostile_lines_do_not_panic() {
        let s = parse(
            "vllm:x{model_name=\"a\\\"b\\\\c\",engine=\"0\"} 2\nvllm:y{model_name=\"\n vllm:z{=} 1\nvllm:w 1 2 3\nvllm:v NaN\n",
            Some("a\"b\\c"),
        );
        assert_eq!(s.value("vllm:x"), Some(2.0));
        assert!(s.value("vllm:v").unwrap().is_nan());
        assert_eq!(s.bad_lines, 3);
    }
}
