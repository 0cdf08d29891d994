//! Grouping runs like for like and choosing each group's baseline: the groups with their
//! ratios and spreads, and the runs left unpaired with the reason.

use std::collections::BTreeMap;

use serde::Serialize;

use super::comparable::{
    InputKey, UNKNOWN_INPUT, input_key, load_key, model_family, slug, unusable_reason,
};
use super::metrics::{HEADLINE, METRICS, fmt_ratio};
use crate::schema::{Metadata, Status};

/// Report settings resolved by the command line before rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// The platform ratios are computed against (per group, when present in it).
    pub baseline_platform: Option<String>,
    /// Price of one GPU hour in US dollars (`--gpu-hourly-usd`): overrides a run's label or
    /// config value `gpu_hourly_usd` in the cost figures.
    pub gpu_hourly_usd: Option<f64>,
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
    /// Index (into the runs given to [`build`]) of the run in the table: the latest
    /// completed run, or the latest interrupted one when the platform has no other.
    pub latest: usize,
    /// Whether the run in the table was interrupted (its figures are understated).
    pub interrupted: bool,
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
    /// The load the runs were measured at (`concurrency 4, max_tokens 128`); None for runs
    /// that do not say (imported results files).
    pub load: Option<String>,
    /// Distinct model names in the group, sorted.
    pub models: Vec<String>,
    /// The input file name(s) the runs gave, if any.
    pub input_files: Vec<String>,
    /// Baseline first, then the other platforms alphabetically.
    pub entries: Vec<Entry>,
    /// Notes on the group: the requested baseline platform is not in it; a platform's
    /// newest run was interrupted (the table uses its completed run, or marks it).
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
    pub load: Option<String>,
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
    // (family, input, load) -> platform -> runs
    let mut sets: Sets = BTreeMap::new();
    for (i, m) in runs.iter().enumerate() {
        let set = sets
            .entry((families[i].clone(), inputs[i].clone(), load_key(m)))
            .or_default()
            .entry(m.platform.clone())
            .or_default();
        match unusable_reason(m) {
            None => set.usable.push(i),
            Some(r) => set.unusable.push((i, r)),
        }
    }
    let mut out = HeadToHead::default();
    for ((family, input, load), platforms) in &sets {
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
                        load: load.clone(),
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
                    Some(key) => no_partner_reason(runs, &sets, platform, family, key, load),
                };
                out.unpaired.push(Unpaired {
                    run: *set.usable.last().expect("usable"),
                    count: set.usable.len(),
                    platform: (*platform).clone(),
                    family: family.clone(),
                    input: input.clone(),
                    load: load.clone(),
                    reason,
                });
            }
            continue;
        }
        let input = input.clone().expect("paired groups have an input");
        let mut notes = Vec::new();
        let mut entries: Vec<Entry> = usable
            .iter()
            .map(|(platform, set)| {
                let (latest, interrupted, measured) = pick_run(runs, &set.usable);
                if let Some(note) = interrupted_note(runs, platform, set, latest, interrupted) {
                    notes.push(note);
                }
                Entry {
                    platform: (*platform).clone(),
                    latest,
                    interrupted,
                    runs: set.usable.clone(),
                    values: METRICS.iter().map(|d| (d.get)(&runs[latest])).collect(),
                    ratios: vec![None; METRICS.len()],
                    spread: METRICS
                        .iter()
                        .map(|d| {
                            let vals: Vec<f64> =
                                measured.iter().filter_map(|&r| (d.get)(&runs[r])).collect();
                            Spread::of(&vals)
                        })
                        .collect(),
                }
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
        let (base, baseline_note) = choose_baseline(&names, settings);
        let baseline_note = baseline_note.into_iter().chain(notes).collect::<Vec<_>>();
        let baseline_note = (!baseline_note.is_empty()).then(|| baseline_note.join("; "));
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
            slug: slug(
                family,
                &match load {
                    None => input.full(),
                    Some(l) => format!("{}\nload:{l}", input.full()),
                },
            ),
            family: family.clone(),
            input,
            load: load.clone(),
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

type Sets = BTreeMap<(String, Option<InputKey>, Option<String>), BTreeMap<String, Set>>;

/// The run a platform shows (the latest completed one, else the latest interrupted one),
/// whether it was interrupted, and the runs its spread is over (the completed ones, or
/// all when none completed).
fn pick_run(runs: &[Metadata], usable: &[usize]) -> (usize, bool, Vec<usize>) {
    let completed: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&i| runs[i].status != Status::Interrupted)
        .collect();
    match completed.last() {
        Some(&latest) => (latest, false, completed),
        None => (*usable.last().expect("usable"), true, usable.to_vec()),
    }
}

/// Say which run of a platform was interrupted and what the table shows instead.
fn interrupted_note(
    runs: &[Metadata],
    platform: &str,
    set: &Set,
    latest: usize,
    interrupted: bool,
) -> Option<String> {
    let newest = *set.usable.last()?;
    if interrupted {
        Some(format!(
            "{platform}'s run {} was interrupted (its time includes the stop's grace wait and its aborted requests' tokens are not counted): marked, its figures understate the platform",
            runs[latest].test_id
        ))
    } else if newest != latest {
        Some(format!(
            "{platform}'s newest run {} was interrupted: the table uses its latest completed run {}",
            runs[newest].test_id, runs[latest].test_id
        ))
    } else {
        None
    }
}

/// Why a (platform, family, input) set has no partner: name the near misses (the latest
/// usable run of each other platform on this input, or with this family).
fn no_partner_reason(
    runs: &[Metadata],
    sets: &Sets,
    platform: &str,
    family: &str,
    input: &InputKey,
    load: &Option<String>,
) -> String {
    // platform -> (run index, text), keeping the latest run.
    let mut same_input_other_model: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut same_model_other_input: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut other_load: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for ((fam, inp, l), platforms) in sets {
        let same_input = inp.as_ref() == Some(input);
        let same_family = fam == family;
        if same_input && same_family && l != load {
            for (p, set) in platforms {
                if let Some(&latest) = set.usable.last()
                    && p != platform
                {
                    let text = l.clone().unwrap_or_else(|| "an unknown load".into());
                    let slot = other_load
                        .entry(p.as_str())
                        .or_insert((latest, text.clone()));
                    if latest > slot.0 {
                        *slot = (latest, text);
                    }
                }
            }
            continue;
        }
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
    if !other_load.is_empty() {
        parts.push(format!(
            "other platforms ran this model family on this input at another load (never put in a ratio; compare at the same load, or compare sweeps): {}",
            list(&other_load)
        ));
    }
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
    fn baseline_choice() {
        let s = Settings::default();
        assert_eq!(choose_baseline(&["vllm", "ollama-gpu", "ollama"], &s).0, 2);
        assert_eq!(choose_baseline(&["vllm-serve", "sglang"], &s).0, 1);
        let s = Settings {
            baseline_platform: Some("VLLM".into()),
            ..Settings::default()
        };
        assert_eq!(choose_baseline(&["ollama", "vllm"], &s), (1, None));
        let s = Settings {
            baseline_platform: Some("tgi".into()),
            ..Settings::default()
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
