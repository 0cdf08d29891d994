//! Head-to-head: runs grouped like for like, with ratios to a baseline platform.
//!
//! Two runs are comparable when they used the same input and the same model family
//! (rules below, also in `docs/reports.md`). For each group, the latest usable run of each
//! platform is put side by side with its ratio to the baseline platform; runs of a
//! platform that has several in the group show their spread. A run that has no partner is
//! listed with the reason, and is never put in a ratio.
//!
//! * **Model family**: the label `family` if set, else the model name; then lowercased, the
//!   org prefix (`google/`) and a `:latest` tag dropped, split on anything that is not a
//!   letter or digit, the tokens `it`, `instruct` and `chat` dropped, and the rest joined:
//!   `google/gemma-3-4b-it`, `gemma3:4b` and `gemma3-4b` are all `gemma34b`.
//! * **Input**: the label `input` if set; else `test.input_sha256` when it names the
//!   requests (it differs from `test.raw_sha256`: an imported results file's own hash says
//!   nothing about the prompts); else the synthetic workload spec in `test.synthetic`.
//!   A run with none of these has an unknown input and is never paired.
//! * **Baseline platform**: the one asked for (`--baseline-platform`,
//!   `BENCHKEEP_BASELINE_PLATFORM`), else a platform named `ollama*`, else the
//!   alphabetically first.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::schema::{Metadata, Status};

/// Longest family key kept (a 10 KB model name must not make a 10 KB key).
const MAX_FAMILY: usize = 64;

/// Report settings resolved by the command line before rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// The platform ratios are computed against (per group, when present in it).
    pub baseline_platform: Option<String>,
}

/// Whether a bigger value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One figure of the head-to-head table.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Stable key (summary.json, CSV).
    pub key: &'static str,
    /// Column header.
    pub label: &'static str,
    /// Name in a ratio sentence ("3.4x ollama output tok/s").
    pub short: &'static str,
    pub better: Better,
    /// Decimals shown.
    pub decimals: usize,
    pub get: fn(&Metadata) -> Option<f64>,
}

fn latency(m: &Metadata, pick: fn(&crate::schema::Latencies) -> Option<f64>) -> Option<f64> {
    m.results.latency_ms.as_ref().and_then(pick)
}

/// Success rate in percent (None when there were no requests).
pub fn success_percent(m: &Metadata) -> Option<f64> {
    let total = m.results.success_count + m.results.failure_count;
    (total > 0).then(|| 100.0 * m.results.success_count as f64 / total as f64)
}

/// Output tokens per joule of GPU energy, where known.
pub fn tokens_per_joule(m: &Metadata) -> Option<f64> {
    m.results.output_tokens_per_joule.or_else(|| {
        let e = m.gpu.as_ref()?.energy_joules?;
        (e > 0.0 && m.results.total_completion_tokens > 0)
            .then(|| m.results.total_completion_tokens as f64 / e)
    })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The head-to-head figures, in column order.
pub const METRICS: [MetricDef; 10] = [
    MetricDef {
        key: "output_tokens_per_sec",
        label: "Output tok/s",
        short: "output tok/s",
        better: Better::Higher,
        decimals: 1,
        get: |m| finite(m.results.output_tokens_per_sec),
    },
    MetricDef {
        key: "throughput_tokens_per_sec",
        label: "Total tok/s",
        short: "total tok/s",
        better: Better::Higher,
        decimals: 1,
        get: |m| finite(m.results.throughput_tokens_per_sec),
    },
    MetricDef {
        key: "throughput_requests_per_sec",
        label: "Req/s",
        short: "req/s",
        better: Better::Higher,
        decimals: 3,
        get: |m| finite(m.results.throughput_requests_per_sec),
    },
    MetricDef {
        key: "ttft_p50_ms",
        label: "TTFT p50 (ms)",
        short: "TTFT p50",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.ttft.map(|s| s.p50)),
    },
    MetricDef {
        key: "ttft_p99_ms",
        label: "TTFT p99 (ms)",
        short: "TTFT p99",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.ttft.map(|s| s.p99)),
    },
    MetricDef {
        key: "tpot_p50_ms",
        label: "TPOT p50 (ms)",
        short: "TPOT p50",
        better: Better::Lower,
        decimals: 2,
        get: |m| latency(m, |l| l.tpot.map(|s| s.p50)),
    },
    MetricDef {
        key: "e2e_p50_ms",
        label: "E2E p50 (ms)",
        short: "E2E p50",
        better: Better::Lower,
        decimals: 1,
        get: |m| latency(m, |l| l.e2e.map(|s| s.p50)),
    },
    MetricDef {
        key: "success_percent",
        label: "Success %",
        short: "success %",
        better: Better::Higher,
        decimals: 1,
        get: success_percent,
    },
    MetricDef {
        key: "peak_vram_gb",
        label: "Peak VRAM (GB)",
        short: "peak VRAM",
        better: Better::Lower,
        decimals: 1,
        get: |m| m.gpu.as_ref().and_then(|g| g.vram_used_gb),
    },
    MetricDef {
        key: "output_tokens_per_joule",
        label: "Tok/J",
        short: "tokens per joule",
        better: Better::Higher,
        decimals: 3,
        get: tokens_per_joule,
    },
];

/// The metrics named in a group's one-line summary, by index into [`METRICS`].
const HEADLINE: [usize; 4] = [0, 2, 3, 6];

/// Format a figure with the metric's decimals.
pub fn fmt_value(def: &MetricDef, v: f64) -> String {
    format!("{:.*}", def.decimals, v)
}

/// Format a ratio: `3.42x`.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.2}x")
    }
}

/// The model family of a run (see the module docs for the rule).
pub fn model_family(m: &Metadata) -> String {
    match m.labels.get("family").filter(|f| !f.trim().is_empty()) {
        Some(f) => normalize_family(f),
        None => normalize_family(&m.model),
    }
}

/// Normalize a model name to its family key.
pub fn normalize_family(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let no_org = lower.rsplit('/').next().unwrap_or_default();
    let no_tag = no_org.strip_suffix(":latest").unwrap_or(no_org);
    let mut key = String::new();
    for token in no_tag.split(|c: char| !c.is_alphanumeric()) {
        if token.is_empty() || matches!(token, "it" | "instruct" | "chat") {
            continue;
        }
        for c in token.chars() {
            if key.len() + c.len_utf8() > MAX_FAMILY {
                break;
            }
            key.push(c);
        }
    }
    if key.is_empty() {
        "unknown".to_string()
    } else {
        key
    }
}

/// What a run was fed, as far as comparability goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum InputKey {
    /// `--label input=NAME`.
    Label(String),
    /// The sha256 of the request file.
    Sha256(String),
    /// A synthetic workload spec (canonical JSON of `test.synthetic`).
    Synthetic(String),
}

impl InputKey {
    /// Short text for people: `input=batch_5k`, `sha256:0123456789ab`, `synthetic {...}`.
    pub fn display(&self) -> String {
        match self {
            InputKey::Label(v) => format!("input={}", truncate(v, 60)),
            InputKey::Sha256(h) => format!("sha256:{}", h.chars().take(12).collect::<String>()),
            InputKey::Synthetic(s) => format!("synthetic {}", truncate(s, 80)),
        }
    }

    fn full(&self) -> String {
        match self {
            InputKey::Label(v) => format!("label:{v}"),
            InputKey::Sha256(h) => format!("sha256:{h}"),
            InputKey::Synthetic(s) => format!("synthetic:{s}"),
        }
    }
}

/// Cut a string to at most `n` characters, marking the cut with `…`.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Why a run's input is unknown (used in "no partner" reasons).
pub const UNKNOWN_INPUT: &str = "its input is unknown (an imported results file does not say which requests produced it); label the runs that used the same requests with --label input=NAME";

/// The input of a run, or `None` when it is unknown.
pub fn input_key(m: &Metadata) -> Option<InputKey> {
    if let Some(v) = m.labels.get("input").filter(|v| !v.trim().is_empty()) {
        return Some(InputKey::Label(v.trim().to_string()));
    }
    if let Some(sha) = m.test.input_sha256.as_deref().filter(|s| !s.is_empty())
        && m.test.raw_sha256.as_deref() != Some(sha)
    {
        return Some(InputKey::Sha256(sha.to_ascii_lowercase()));
    }
    match m.test.extra.get("synthetic") {
        None | Some(Value::Null) => None,
        Some(v) => Some(InputKey::Synthetic(
            serde_json::to_string(v).unwrap_or_default(),
        )),
    }
}

/// Why a run cannot be compared at all, if it cannot.
pub fn unusable_reason(m: &Metadata) -> Option<&'static str> {
    if m.status == Status::Running {
        Some(
            "still running, or cut off (`benchkeep verify` tells which; `benchkeep recover` finishes it)",
        )
    } else if m.results.success_count == 0 {
        Some("no request succeeded")
    } else {
        None
    }
}

/// A short stable hash for file names.
pub fn short_hash(s: &str) -> String {
    crate::digest::sha256_hex(s)[..8].to_string()
}

/// A file-safe slug for a family and an input: `gemma34b-1a2b3c4d`.
pub fn slug(family: &str, input: &str) -> String {
    let fam: String = family
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    let fam = if fam.is_empty() { "model".into() } else { fam };
    format!("{fam}-{}", short_hash(&format!("{family}\n{input}")))
}

/// The spread of one figure over a platform's runs in a group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Coefficient of variation in percent (population standard deviation / mean).
    pub cv_percent: Option<f64>,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        if values.len() < 2 {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Spread {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean,
            cv_percent: (mean > 0.0).then(|| 100.0 * var.sqrt() / mean),
        })
    }
}

/// One platform in a group.
#[derive(Debug, Clone)]
pub struct Entry {
    pub platform: String,
    /// Index (into the runs given to [`build`]) of the latest usable run.
    pub latest: usize,
    /// Every usable run of this platform in the group, oldest first.
    pub runs: Vec<usize>,
    /// The latest run's figures, in [`METRICS`] order.
    pub values: Vec<Option<f64>>,
    /// Value / baseline value, in [`METRICS`] order (None for the baseline itself).
    pub ratios: Vec<Option<f64>>,
    /// Spread over the runs, in [`METRICS`] order (None with a single run).
    pub spread: Vec<Option<Spread>>,
}

/// Runs on one input with one model family, on two platforms or more.
#[derive(Debug, Clone)]
pub struct Group {
    /// File-safe id (chart names, HTML anchors).
    pub slug: String,
    pub family: String,
    pub input: InputKey,
    /// Distinct model names in the group, sorted.
    pub models: Vec<String>,
    /// The input file name(s) the runs gave, if any.
    pub input_files: Vec<String>,
    /// Baseline first, then the other platforms alphabetically.
    pub entries: Vec<Entry>,
    /// Set when the requested baseline platform is not in this group.
    pub baseline_note: Option<String>,
}

impl Group {
    pub fn baseline(&self) -> &Entry {
        &self.entries[0]
    }

    /// "vllm-serve: 3.42x ollama output tok/s, req/s 3.10x, TTFT p50 0.21x, E2E p50 0.30x"
    pub fn ratio_sentences(&self) -> Vec<String> {
        let base = &self.baseline().platform;
        self.entries[1..]
            .iter()
            .filter_map(|e| {
                let mut parts = Vec::new();
                for (n, &i) in HEADLINE.iter().enumerate() {
                    if let Some(r) = e.ratios[i] {
                        if n == 0 {
                            parts.push(format!("{} {base} {}", fmt_ratio(r), METRICS[i].short));
                        } else {
                            parts.push(format!("{} {}", METRICS[i].short, fmt_ratio(r)));
                        }
                    }
                }
                (!parts.is_empty()).then(|| format!("{}: {}", e.platform, parts.join(", ")))
            })
            .collect()
    }
}

/// A set of runs (one platform, one family, one input) that is not compared, and why.
#[derive(Debug, Clone)]
pub struct Unpaired {
    /// Index of the run shown (the latest of the set).
    pub run: usize,
    /// Runs in the set.
    pub count: usize,
    pub platform: String,
    pub family: String,
    pub input: Option<InputKey>,
    pub reason: String,
}

/// The whole head-to-head picture of a store.
#[derive(Debug, Clone, Default)]
pub struct HeadToHead {
    pub groups: Vec<Group>,
    pub unpaired: Vec<Unpaired>,
}

#[derive(Default)]
struct Set {
    usable: Vec<usize>,
    unusable: Vec<(usize, &'static str)>,
}

/// Group `runs` (oldest first, as the store loads them) like for like.
pub fn build(runs: &[Metadata], settings: &Settings) -> HeadToHead {
    let families: Vec<String> = runs.iter().map(model_family).collect();
    let inputs: Vec<Option<InputKey>> = runs.iter().map(input_key).collect();
    // (family, input) -> platform -> runs
    let mut sets: Sets = BTreeMap::new();
    for (i, m) in runs.iter().enumerate() {
        let set = sets
            .entry((families[i].clone(), inputs[i].clone()))
            .or_default()
            .entry(m.platform.clone())
            .or_default();
        match unusable_reason(m) {
            None => set.usable.push(i),
            Some(r) => set.unusable.push((i, r)),
        }
    }
    let mut out = HeadToHead::default();
    for ((family, input), platforms) in &sets {
        let usable: Vec<(&String, &Set)> = platforms
            .iter()
            .filter(|(_, s)| !s.usable.is_empty())
            .collect();
        // Runs that failed or still run, newer than the run the comparison uses.
        for set in platforms.values() {
            let latest_ok = set.usable.last().copied();
            for &(i, why) in &set.unusable {
                if latest_ok.is_none_or(|ok| i > ok) {
                    out.unpaired.push(Unpaired {
                        run: i,
                        count: 1,
                        platform: runs[i].platform.clone(),
                        family: family.clone(),
                        input: input.clone(),
                        reason: match latest_ok {
                            Some(ok) => format!(
                                "{why}; the comparison uses the platform's previous run {}",
                                runs[ok].test_id
                            ),
                            None => why.to_string(),
                        },
                    });
                }
            }
        }
        let paired = input.is_some() && usable.len() >= 2;
        if !paired {
            for (platform, set) in &usable {
                let reason = match input {
                    None => UNKNOWN_INPUT.to_string(),
                    Some(key) => no_partner_reason(runs, &sets, platform, family, key),
                };
                out.unpaired.push(Unpaired {
                    run: *set.usable.last().expect("usable"),
                    count: set.usable.len(),
                    platform: (*platform).clone(),
                    family: family.clone(),
                    input: input.clone(),
                    reason,
                });
            }
            continue;
        }
        let input = input.clone().expect("paired groups have an input");
        let mut entries: Vec<Entry> = usable
            .iter()
            .map(|(platform, set)| {
                let latest = *set.usable.last().expect("usable");
                Entry {
                    platform: (*platform).clone(),
                    latest,
                    runs: set.usable.clone(),
                    values: METRICS.iter().map(|d| (d.get)(&runs[latest])).collect(),
                    ratios: vec![None; METRICS.len()],
                    spread: METRICS
                        .iter()
                        .map(|d| {
                            let vals: Vec<f64> = set
                                .usable
                                .iter()
                                .filter_map(|&r| (d.get)(&runs[r]))
                                .collect();
                            Spread::of(&vals)
                        })
                        .collect(),
                }
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
        let (base, baseline_note) = choose_baseline(&names, settings);
        let base_entry = entries.remove(base);
        entries.sort_by(|a, b| a.platform.cmp(&b.platform));
        for e in &mut entries {
            for (k, ratio) in e.ratios.iter_mut().enumerate() {
                *ratio = match (e.values[k], base_entry.values[k]) {
                    (Some(v), Some(b)) if b > 0.0 => Some(v / b),
                    _ => None,
                };
            }
        }
        entries.insert(0, base_entry);
        let mut models: Vec<String> = entries
            .iter()
            .flat_map(|e| e.runs.iter().map(|&r| runs[r].model.clone()))
            .collect();
        models.sort();
        models.dedup();
        let mut input_files: Vec<String> = entries
            .iter()
            .flat_map(|e| {
                e.runs
                    .iter()
                    .filter_map(|&r| runs[r].test.input_file.clone())
            })
            .collect();
        input_files.sort();
        input_files.dedup();
        out.groups.push(Group {
            slug: slug(family, &input.full()),
            family: family.clone(),
            input,
            models,
            input_files,
            entries,
            baseline_note,
        });
    }
    out.unpaired.sort_by(|a, b| {
        (&a.family, &a.platform, &runs[a.run].timestamp).cmp(&(
            &b.family,
            &b.platform,
            &runs[b.run].timestamp,
        ))
    });
    out
}

/// Index of the baseline among `platforms`, and a note when the requested one is absent.
fn choose_baseline(platforms: &[&str], settings: &Settings) -> (usize, Option<String>) {
    let mut note = None;
    if let Some(want) = &settings.baseline_platform {
        if let Some(i) = platforms.iter().position(|p| p.eq_ignore_ascii_case(want)) {
            return (i, None);
        }
        note = Some(format!(
            "the baseline platform {want} has no run in this group"
        ));
    }
    let mut order: Vec<usize> = (0..platforms.len()).collect();
    order.sort_by(|&a, &b| platforms[a].cmp(platforms[b]));
    let pick = order
        .iter()
        .copied()
        .find(|&i| platforms[i].to_ascii_lowercase().starts_with("ollama"))
        .unwrap_or(order[0]);
    (
        pick,
        note.map(|n| format!("{n}; ratios are to {}", platforms[pick])),
    )
}

type Sets = BTreeMap<(String, Option<InputKey>), BTreeMap<String, Set>>;

/// Why a (platform, family, input) set has no partner: name the near misses (the latest
/// usable run of each other platform on this input, or with this family).
fn no_partner_reason(
    runs: &[Metadata],
    sets: &Sets,
    platform: &str,
    family: &str,
    input: &InputKey,
) -> String {
    // platform -> (run index, text), keeping the latest run.
    let mut same_input_other_model: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut same_model_other_input: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for ((fam, inp), platforms) in sets {
        let same_input = inp.as_ref() == Some(input);
        let same_family = fam == family;
        if same_input == same_family {
            continue;
        }
        for (p, set) in platforms {
            let Some(&latest) = set.usable.last() else {
                continue;
            };
            if p == platform {
                continue;
            }
            let (map, text) = if same_input {
                (&mut same_input_other_model, runs[latest].model.clone())
            } else {
                (
                    &mut same_model_other_input,
                    inp.as_ref()
                        .map(|k| k.display())
                        .unwrap_or_else(|| "an unknown input".into()),
                )
            };
            let slot = map.entry(p.as_str()).or_insert((latest, text.clone()));
            if latest > slot.0 {
                *slot = (latest, text);
            }
        }
    }
    let list = |m: &BTreeMap<&str, (usize, String)>| {
        m.iter()
            .map(|(p, (_, x))| format!("{p} ({x})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !same_input_other_model.is_empty() {
        parts.push(format!(
            "on this input other platforms ran another model family: {}",
            list(&same_input_other_model)
        ));
    }
    if !same_model_other_input.is_empty() {
        parts.push(format!(
            "other platforms ran this model family on another input: {}",
            list(&same_model_other_input)
        ));
    }
    if parts.is_empty() {
        "no other platform ran this model family on this input".to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        for name in [
            "google/gemma-3-4b-it",
            "gemma3:4b",
            "gemma3-4b",
            "Gemma3:4B",
            "gemma-3-4b-instruct",
        ] {
            assert_eq!(normalize_family(name), "gemma34b", "{name}");
        }
        assert_eq!(normalize_family("llama3.1:latest"), "llama31");
        assert_eq!(normalize_family("Qwen/Qwen2.5-7B-Instruct"), "qwen257b");
        assert_eq!(normalize_family("qwen2.5:7b"), "qwen257b");
        assert_ne!(
            normalize_family("gemma3:12b"),
            normalize_family("gemma3:4b")
        );
        assert_eq!(normalize_family("///"), "unknown");
        assert_eq!(normalize_family(&"x".repeat(10_000)).len(), MAX_FAMILY);
    }

    #[test]
    fn ratios_format() {
        assert_eq!(fmt_ratio(3.4166), "3.42x");
        assert_eq!(fmt_ratio(0.2149), "0.21x");
        assert_eq!(fmt_ratio(250.0), "250x");
    }

    #[test]
    fn baseline_choice() {
        let s = Settings::default();
        assert_eq!(choose_baseline(&["vllm", "ollama-gpu", "ollama"], &s).0, 2);
        assert_eq!(choose_baseline(&["vllm-serve", "sglang"], &s).0, 1);
        let s = Settings {
            baseline_platform: Some("VLLM".into()),
        };
        assert_eq!(choose_baseline(&["ollama", "vllm"], &s), (1, None));
        let s = Settings {
            baseline_platform: Some("tgi".into()),
        };
        let (i, note) = choose_baseline(&["ollama", "vllm"], &s);
        assert_eq!(i, 0);
        assert!(note.unwrap().contains("tgi has no run"));
    }

    #[test]
    fn spread() {
        assert_eq!(Spread::of(&[1.0]), None);
        let s = Spread::of(&[90.0, 110.0]).unwrap();
        assert_eq!((s.min, s.max, s.mean), (90.0, 110.0, 100.0));
        assert!((s.cv_percent.unwrap() - 10.0).abs() < 1e-9);
    }
}
