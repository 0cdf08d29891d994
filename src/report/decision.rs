//! The decision summary: per like-for-like group, which platform wins each figure that
//! matters, by how much, whether that is beyond the runs' noise, what it costs, and the
//! caveats that would change the answer. Plain sentences a team lead can paste into a
//! decision document; the same model renders as text (terminal, COMPARISON.md), HTML and
//! JSON (`benchkeep decide --json`).
//!
//! Noise: there are no confidence intervals yet. With one run per platform a figure says
//! "single run, no interval"; with several, the runs' spread (min..max) of the winner and
//! the runner-up are compared: "beyond the runs' spread (N and M runs)" when they do not
//! overlap, else "within the runs' spread".

use serde::Serialize;
use serde_json::Value;

use super::cost::{self, RunCost};
use super::h2h::{Better, Entry, Group, HeadToHead, METRICS, Settings, fmt_value};
use crate::schema::{Metadata, Status};

/// The figures a decision is made on, by index into [`METRICS`] (total tok/s is left out:
/// it follows from output tok/s and the prompts).
pub const DECISION_FIGURES: [usize; 9] = [0, 2, 3, 4, 5, 6, 7, 8, 9];

/// What the sweeps say when there are none.
pub const NO_SWEEPS: &str = "no sweep data";

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub groups: Vec<GroupDecision>,
    /// Runs not like for like with any other platform, with the reason.
    pub not_like_for_like: Vec<NotCompared>,
    /// What the sweeps say: per like-for-like sweep group, the sentence "within TTFT p99
    /// <= 1 s: ...", or [`NO_SWEEPS`].
    pub sweeps: String,
    /// The cost formula, when a cost figure is shown.
    pub cost_formula: Option<&'static str>,
}

/// One like-for-like group's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GroupDecision {
    pub title: String,
    pub family: String,
    pub input: String,
    pub platforms: Vec<PlatformRun>,
    pub figures: Vec<Figure>,
    /// "vllm wins 8 of 9 figures against ollama."
    pub headline: String,
    /// Cost sentences (with a price or energy data).
    pub cost: Vec<String>,
    pub caveats: Vec<String>,
}

/// The run a platform is judged by (its latest usable one in the group).
#[derive(Debug, Clone, Serialize)]
pub struct PlatformRun {
    pub platform: String,
    pub test_id: String,
    pub runs: usize,
    pub status: String,
    /// Test load of the run: "concurrency 8", "rate 4 req/s", or None when not recorded.
    pub load: Option<String>,
    pub cost: Option<RunCost>,
}

/// How sure a difference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    SingleRun,
    BeyondSpread,
    WithinSpread,
}

/// One figure's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    /// None on a tie.
    pub winner: Option<String>,
    pub runner_up: String,
    pub winner_value: f64,
    pub runner_up_value: f64,
    /// Best / runner-up for higher-is-better, runner-up / best for lower-is-better (>= 1).
    pub factor: f64,
    pub noise: Noise,
    pub noise_text: String,
    pub sentence: String,
}

/// A run (set) with no partner.
#[derive(Debug, Clone, Serialize)]
pub struct NotCompared {
    pub platform: String,
    pub test_id: String,
    pub family: String,
    pub reason: String,
    pub sentence: String,
}

/// Build the summary from the head-to-head of `runs`.
pub fn build(runs: &[Metadata], h2h: &HeadToHead, settings: &Settings) -> Decision {
    let groups: Vec<GroupDecision> = h2h
        .groups
        .iter()
        .map(|g| group(runs, h2h, g, settings))
        .collect();
    // A platform's newer failed run in a group is that group's caveat, not a mismatch.
    let in_group = |u: &super::h2h::Unpaired| {
        h2h.groups.iter().any(|g| {
            g.family == u.family
                && u.input.as_ref() == Some(&g.input)
                && g.entries.iter().any(|e| e.platform == u.platform)
        })
    };
    let not_like_for_like = h2h
        .unpaired
        .iter()
        .filter(|u| !in_group(u))
        .map(|u| {
            let id = &runs[u.run].test_id;
            NotCompared {
                platform: u.platform.clone(),
                test_id: id.clone(),
                family: u.family.clone(),
                reason: u.reason.clone(),
                sentence: format!(
                    "Not like for like: {} {id} ({}) is in no comparison: {}.",
                    u.platform, u.family, u.reason
                ),
            }
        })
        .collect();
    let priced = groups
        .iter()
        .flat_map(|g| &g.platforms)
        .any(|p| p.cost.is_some());
    Decision {
        groups,
        not_like_for_like,
        sweeps: sweeps_sentence(runs),
        cost_formula: priced.then_some(cost::FORMULA),
    }
}

/// The sweep sentences of `runs`, joined; [`NO_SWEEPS`] when there is no sweep.
fn sweeps_sentence(runs: &[Metadata]) -> String {
    let s = super::sweep::build(runs);
    if s.views.is_empty() {
        return NO_SWEEPS.to_string();
    }
    if s.groups.is_empty() {
        return format!("{} sweep(s), none on a load axis", s.views.len());
    }
    let parts: Vec<String> = s
        .groups
        .iter()
        .map(|g| format!("{}: {}", g.title, super::sweep::sentence(&s, g)))
        .collect();
    parts.join("; ")
}

/// A run's load as recorded in `test.load`: "concurrency 32", "rate 4 req/s".
pub fn load_of(m: &Metadata) -> Option<String> {
    let load = m.test.extra.get("load")?.as_object()?;
    let num = |k: &str| load.get(k).and_then(Value::as_f64);
    let mode = load.get("mode").and_then(Value::as_str);
    let fmt = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        }
    };
    match (mode, num("rate"), num("concurrency")) {
        (Some("rate"), Some(r), c) => Some(match c {
            Some(c) => format!("rate {} req/s (at most {} in flight)", fmt(r), fmt(c)),
            None => format!("rate {} req/s", fmt(r)),
        }),
        (_, _, Some(c)) => Some(format!("concurrency {}", fmt(c))),
        _ => None,
    }
}

fn group(runs: &[Metadata], h2h: &HeadToHead, g: &Group, s: &Settings) -> GroupDecision {
    let platforms: Vec<PlatformRun> = g
        .entries
        .iter()
        .map(|e| {
            let m = &runs[e.latest];
            PlatformRun {
                platform: e.platform.clone(),
                test_id: m.test_id.clone(),
                runs: e.runs.len(),
                status: m.status.as_str().to_string(),
                load: load_of(m),
                cost: cost::of(m, s.gpu_hourly_usd),
            }
        })
        .collect();
    let figures: Vec<Figure> = DECISION_FIGURES
        .iter()
        .filter_map(|&k| figure(g, k))
        .collect();
    let title = super::markdown::group_title(g);
    let headline = headline(g, &figures);
    let mut caveats = Vec::new();
    load_caveat(&platforms, &mut caveats);
    for (e, p) in g.entries.iter().zip(&platforms) {
        if let Some(c) = run_caveat(&runs[e.latest], p) {
            caveats.push(c);
        }
    }
    for u in &h2h.unpaired {
        let newer = u.family == g.family
            && u.input.as_ref() == Some(&g.input)
            && g.entries.iter().any(|e| e.platform == u.platform);
        if newer {
            caveats.push(format!(
                "{}'s newest run {} is not in the comparison: {}.",
                u.platform, runs[u.run].test_id, u.reason
            ));
        }
    }
    let cost = cost_sentences(&platforms);
    GroupDecision {
        title,
        family: g.family.clone(),
        input: g.input.display(),
        platforms,
        figures,
        headline,
        cost,
        caveats,
    }
}

fn headline(g: &Group, figures: &[Figure]) -> String {
    let others = |p: &str| {
        g.entries
            .iter()
            .map(|e| e.platform.as_str())
            .filter(|&x| x != p)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let mut wins: Vec<(&str, usize)> = g
        .entries
        .iter()
        .map(|e| {
            let n = figures
                .iter()
                .filter(|f| f.winner.as_deref() == Some(e.platform.as_str()))
                .count();
            (e.platform.as_str(), n)
        })
        .collect();
    wins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if figures.is_empty() {
        return "No figure was measured by two platforms.".into();
    }
    let (best, n) = wins[0];
    let rest: Vec<String> = wins[1..]
        .iter()
        .filter(|w| w.1 > 0)
        .map(|(p, n)| format!("{p} wins {n}"))
        .collect();
    let mut s = format!(
        "{best} wins {n} of {} figures against {}",
        figures.len(),
        others(best)
    );
    let ties = figures.iter().filter(|f| f.winner.is_none()).count();
    let mut notes = rest;
    if ties > 0 {
        notes.push(format!("{ties} tie{}", if ties == 1 { "" } else { "s" }));
    }
    if !notes.is_empty() {
        s.push_str(&format!(" ({})", notes.join(", ")));
    }
    s.push('.');
    s
}

fn figure(g: &Group, k: usize) -> Option<Figure> {
    let def = &METRICS[k];
    let mut vals: Vec<(&Entry, f64)> = g
        .entries
        .iter()
        .filter_map(|e| Some((e, e.values[k]?)))
        .collect();
    if vals.len() < 2 {
        return None;
    }
    // Best first.
    vals.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        if def.better == Better::Higher {
            o.reverse()
        } else {
            o
        }
    });
    let (best, bv) = vals[0];
    let (second, sv) = vals[1];
    let tie = bv == sv;
    let factor = match def.better {
        Better::Higher if sv > 0.0 => bv / sv,
        Better::Lower if bv > 0.0 => sv / bv,
        _ => f64::INFINITY,
    };
    let (noise, noise_text) = noise(best, second, k, def.better);
    let unit = unit(def.key);
    let name = def.label.split(" (").next().unwrap_or(def.label);
    let v = |x: f64| format!("{}{unit}", fmt_value(def, x));
    let sentence = if tie {
        format!(
            "{name}: a tie, {} and {} both at {}.",
            best.platform,
            second.platform,
            v(bv)
        )
    } else {
        let how = if factor.is_finite() {
            let word = if def.better == Better::Higher {
                "higher"
            } else {
                "lower"
            };
            format!("{factor:.2}x {word}")
        } else {
            "infinitely better".into()
        };
        format!(
            "{name}: {} wins, {} vs {} for {} ({how}; {noise_text}).",
            best.platform,
            v(bv),
            v(sv),
            second.platform
        )
    };
    Some(Figure {
        key: def.key,
        label: def.label,
        better: def.better,
        winner: (!tie).then(|| best.platform.clone()),
        runner_up: second.platform.clone(),
        winner_value: bv,
        runner_up_value: sv,
        factor,
        noise,
        noise_text,
        sentence,
    })
}

fn unit(key: &str) -> &'static str {
    if key.ends_with("_ms") {
        " ms"
    } else if key == "peak_vram_gb" {
        " GB"
    } else if key == "success_percent" {
        "%"
    } else {
        ""
    }
}

/// Compare the winner's and the runner-up's runs: their min..max ranges.
fn noise(best: &Entry, second: &Entry, k: usize, better: Better) -> (Noise, String) {
    let (nb, ns) = (best.runs.len(), second.runs.len());
    if nb <= 1 && ns <= 1 {
        return (Noise::SingleRun, "single run, no interval".into());
    }
    let range = |e: &Entry| match e.spread[k] {
        Some(s) => Some((s.min, s.max)),
        None => e.values[k].map(|v| (v, v)),
    };
    let (Some((bmin, bmax)), Some((smin, smax))) = (range(best), range(second)) else {
        return (Noise::SingleRun, "single run, no interval".into());
    };
    let beyond = match better {
        Better::Higher => bmin > smax,
        Better::Lower => bmax < smin,
    };
    let runs = |n: usize| format!("{n} run{}", if n == 1 { "" } else { "s" });
    let counts = if nb == ns {
        format!("{nb} and {ns} runs")
    } else {
        format!("{} and {}", runs(nb), runs(ns))
    };
    if beyond {
        (
            Noise::BeyondSpread,
            format!("beyond the runs' spread ({counts})"),
        )
    } else {
        (
            Noise::WithinSpread,
            format!("within the runs' spread ({counts}): not a clear difference"),
        )
    }
}

fn load_caveat(platforms: &[PlatformRun], caveats: &mut Vec<String>) {
    let known: Vec<&PlatformRun> = platforms.iter().filter(|p| p.load.is_some()).collect();
    let unknown: Vec<&str> = platforms
        .iter()
        .filter(|p| p.load.is_none())
        .map(|p| p.platform.as_str())
        .collect();
    let mut distinct: Vec<&str> = known.iter().filter_map(|p| p.load.as_deref()).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        let list: Vec<String> = known
            .iter()
            .map(|p| format!("{} at {}", p.platform, p.load.as_deref().unwrap_or("")))
            .collect();
        caveats.push(format!(
            "LOADS DIFFER: {}; the ratios compare different loads.",
            list.join(", ")
        ));
    }
    if !known.is_empty() && !unknown.is_empty() {
        caveats.push(format!(
            "Load not recorded for {} (an imported or recorded run); the ratios may compare different loads.",
            unknown.join(", ")
        ));
    }
}

fn run_caveat(m: &Metadata, p: &PlatformRun) -> Option<String> {
    let r = &m.results;
    let total = r.success_count + r.failure_count;
    let bad_status = matches!(
        m.status,
        Status::Failed | Status::Partial | Status::Interrupted
    );
    if r.failure_count == 0 && !bad_status {
        return None;
    }
    let mut s = format!(
        "{}'s latest run {} is {}",
        p.platform,
        m.test_id,
        m.status.as_str()
    );
    if r.failure_count > 0 {
        s.push_str(&format!(": {} of {total} requests failed", r.failure_count));
        if !r.errors_by_kind.is_empty() {
            let kinds: Vec<String> = r
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            s.push_str(&format!(" ({})", kinds.join(", ")));
        }
    }
    s.push_str("; its figures cover the successful requests only.");
    Some(s)
}

fn cost_sentences(platforms: &[PlatformRun]) -> Vec<String> {
    let mut out: Vec<String> = platforms
        .iter()
        .filter_map(|p| {
            let c = p.cost.as_ref()?;
            let what = if c.gpu_hourly_usd.is_some() {
                "Cost"
            } else {
                "Energy"
            };
            Some(format!("{what} of {}: {}.", p.platform, cost::describe(c)))
        })
        .collect();
    let mut priced: Vec<(&str, f64)> = platforms
        .iter()
        .filter_map(|p| {
            Some((
                p.platform.as_str(),
                p.cost.as_ref()?.usd_per_1m_output_tokens?,
            ))
        })
        .collect();
    priced.sort_by(|a, b| a.1.total_cmp(&b.1));
    if priced.len() >= 2 && priced[0].1 > 0.0 {
        let ((cheap, c), (next, n)) = (priced[0], priced[1]);
        out.push(format!(
            "Cheapest per output token: {cheap}, {} vs {} per 1M output tokens for {next} ({:.2}x less).",
            cost::fmt_usd(c),
            cost::fmt_usd(n),
            n / c
        ));
    }
    out
}

/// Plain text, one paragraph per group (the terminal, and the source of the other forms).
pub fn text(d: &Decision) -> String {
    let mut o = String::new();
    for g in &d.groups {
        o.push_str(&format!("{}\n", g.title));
        o.push_str(&format!("  {}\n", g.headline));
        for f in &g.figures {
            o.push_str(&format!("  - {}\n", f.sentence));
        }
        for c in &g.cost {
            o.push_str(&format!("  $ {c}\n"));
        }
        for c in &g.caveats {
            o.push_str(&format!("  ! {c}\n"));
        }
        o.push('\n');
    }
    if d.groups.is_empty() {
        o.push_str("Nothing is comparable: no two platforms ran the same input with the same model family.\n\n");
    }
    for n in &d.not_like_for_like {
        o.push_str(&format!("{}\n", n.sentence));
    }
    o.push_str(&format!("Sweeps: {}.\n", d.sweeps));
    if let Some(f) = d.cost_formula {
        o.push_str(&format!("Cost formula: {f}.\n"));
    }
    o
}

/// Markdown: a section for the top of COMPARISON.md (every text escaped).
pub fn markdown(d: &Decision) -> String {
    use super::markdown::escape;
    let mut o = String::from("## Decision summary\n\n");
    if d.groups.is_empty() {
        o.push_str("Nothing is comparable yet: no two platforms ran the same input with the same model family.\n\n");
    }
    for g in &d.groups {
        o.push_str(&format!(
            "**{}**: {}\n\n",
            escape(&g.title),
            escape(&g.headline)
        ));
        for f in &g.figures {
            o.push_str(&format!("- {}\n", escape(&f.sentence)));
        }
        for c in &g.cost {
            o.push_str(&format!("- {}\n", escape(c)));
        }
        for c in &g.caveats {
            o.push_str(&format!("- **Caveat**: {}\n", escape(c)));
        }
        o.push('\n');
    }
    for n in &d.not_like_for_like {
        o.push_str(&format!("- {}\n", escape(&n.sentence)));
    }
    o.push_str(&format!("- Sweeps: {}.\n", escape(&d.sweeps)));
    if let Some(f) = d.cost_formula {
        o.push_str(&format!("- Cost formula: {}.\n", escape(f)));
    }
    o
}

/// JSON for scripts (`benchkeep decide --json`).
pub fn json(d: &Decision) -> String {
    let mut s = serde_json::to_string_pretty(d).expect("the decision serializes");
    s.push('\n');
    s
}
