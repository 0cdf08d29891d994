//! The sweep section: each stored sweep's conclusions (`analysis/sweeps/<id>.json`), the
//! sweeps of different platforms put side by side like for like (same model family, same
//! input, same axis), their curves, and the sentence "within TTFT p99 <= 1 s: vllm 48
//! users (3,100 tok/s), ollama 2 users (140 tok/s)".

mod chart;
pub mod html;
pub mod markdown;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::catalog::{self, SweepRuns};
use crate::metrics::sweep::{Analysis, Point, within_ttft_p99};
use crate::schema::Metadata;
use crate::store::ids::file_safe;

use super::h2h;

pub use chart::draw;

/// The folder of the per-sweep conclusions.
pub const SWEEPS_DIR: &str = "analysis/sweeps";
/// The version of `analysis/sweeps/<id>.json` (`schemas/sweep.schema.json`).
pub const SWEEP_SCHEMA: &str = "benchkeep.sweep/1";
/// Chart file prefix of the sweep charts.
pub const CHART_PREFIX: &str = "sweep-";
/// The TTFT p99 limit of the sentence when the sweeps set no TTFT SLO.
pub const DEFAULT_TTFT_LIMIT_MS: f64 = 1000.0;

/// One stored sweep and its conclusions.
#[derive(Debug, Clone)]
pub struct SweepView {
    pub runs: SweepRuns,
    pub analysis: Analysis,
    /// What makes sweeps like for like (model family, input, axis); `None` for a matrix
    /// or a sweep without finished points.
    pub key: Option<String>,
    /// The like-for-like title: "gemma34b on input=chat, concurrency sweep".
    pub title: String,
}

impl SweepView {
    /// Store-relative path of its conclusions.
    pub fn path(&self) -> String {
        path(&self.runs.id)
    }
}

/// `analysis/sweeps/<file-safe id>.json`.
pub fn path(id: &str) -> String {
    format!("{SWEEPS_DIR}/{}.json", file_safe(id))
}

/// Sweeps of several platforms (or one) on the same model family, input and axis.
#[derive(Debug, Clone)]
pub struct SweepGroup {
    pub title: String,
    pub slug: String,
    pub axis: String,
    /// Indexes into the views: the latest sweep of each platform, by platform.
    pub members: Vec<usize>,
    /// The TTFT p99 limit of the sentence (ms).
    pub ttft_limit_ms: f64,
    /// Chart file name, once drawn.
    pub chart: Option<String>,
}

/// Every stored sweep with its conclusions, and the like-for-like groups.
#[derive(Debug, Clone, Default)]
pub struct Sweeps {
    pub views: Vec<SweepView>,
    pub groups: Vec<SweepGroup>,
}

/// Analyse every sweep in `runs` and group them like for like.
pub fn build(runs: &[Metadata]) -> Sweeps {
    let mut views: Vec<SweepView> = catalog::sweeps(runs)
        .into_iter()
        .map(|s| {
            let analysis = s.analyze(runs);
            SweepView {
                runs: s,
                analysis,
                key: None,
                title: String::new(),
            }
        })
        .collect();
    // (family, input, axis) -> platform -> the latest sweep's view index
    let mut keyed: BTreeMap<(String, String, String), BTreeMap<String, usize>> = BTreeMap::new();
    let mut titles: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for i in 0..views.len() {
        let v = &views[i];
        if v.runs.axis == "matrix" || v.analysis.points.is_empty() {
            continue;
        }
        let first = &runs[v.runs.runs[0]];
        let input = h2h::input_key(first);
        let input_text = input
            .as_ref()
            .map(|k| serde_json::to_string(k).unwrap_or_default())
            // An unknown input is never paired: the sweep stands alone.
            .unwrap_or_else(|| format!("unknown:{}", v.runs.id));
        let key = (h2h::model_family(first), input_text, v.runs.axis.clone());
        let title = format!(
            "{} on {}, {} sweep",
            h2h::model_family(first),
            input
                .map(|k| k.display())
                .unwrap_or_else(|| "an unknown input".into()),
            v.runs.axis
        );
        titles.entry(key.clone()).or_insert_with(|| title.clone());
        let platform = v.runs.platform.clone();
        views[i].key = Some(format!("{}\n{}\n{}", key.0, key.1, key.2));
        views[i].title = title;
        let newest = |j: usize| {
            let s = &views[j].runs;
            s.runs.iter().map(|&r| runs[r].timestamp.clone()).max()
        };
        keyed
            .entry(key)
            .or_default()
            .entry(platform)
            .and_modify(|j| {
                if newest(i) >= newest(*j) {
                    *j = i;
                }
            })
            .or_insert(i);
    }
    let groups = keyed
        .into_iter()
        .map(|(key, members)| {
            let members: Vec<usize> = members.into_values().collect();
            let ttft_limit_ms = ttft_limit(&views, &members);
            SweepGroup {
                title: titles.remove(&key).unwrap_or_default(),
                slug: h2h::slug(&key.0, &format!("{}\n{}", key.1, key.2)),
                axis: key.2,
                members,
                ttft_limit_ms,
                chart: None,
            }
        })
        .collect();
    Sweeps { views, groups }
}

/// The sentence's TTFT p99 limit: the sweeps' TTFT SLO when they all set the same one,
/// else [`DEFAULT_TTFT_LIMIT_MS`].
pub fn ttft_limit(views: &[SweepView], members: &[usize]) -> f64 {
    let limits: Vec<f64> = members
        .iter()
        .filter_map(|&i| views[i].analysis.max_goodput.slo_ms.get("ttft").copied())
        .collect();
    match limits.first() {
        Some(&l) if limits.len() == members.len() && limits.iter().all(|x| *x == l) => l,
        _ => DEFAULT_TTFT_LIMIT_MS,
    }
}

/// A group of the chosen sweeps (indexes into `s.views`), when they are like for like
/// (one model family, input and axis); otherwise why not.
pub fn group_of(s: &Sweeps, chosen: &[usize]) -> Result<SweepGroup, String> {
    let keys: Vec<Option<&String>> = chosen.iter().map(|&i| s.views[i].key.as_ref()).collect();
    match keys.first() {
        Some(Some(k)) if keys.iter().all(|x| *x == Some(*k)) => {
            let v = &s.views[chosen[0]];
            Ok(SweepGroup {
                title: v.title.clone(),
                slug: String::new(),
                axis: v.analysis.axis.clone(),
                members: chosen.to_vec(),
                ttft_limit_ms: ttft_limit(&s.views, chosen),
                chart: None,
            })
        }
        _ => {
            let what: Vec<String> = chosen
                .iter()
                .map(|&i| {
                    let v = &s.views[i];
                    match &v.key {
                        Some(_) => format!("{} ({})", v.runs.id, v.title),
                        None => format!("{} (a matrix, or no finished point)", v.runs.id),
                    }
                })
                .collect();
            Err(format!(
                "not like for like (the model family, the input and the axis must match): {}",
                what.join("; ")
            ))
        }
    }
}

/// The unit of a load on an axis: `users` or `req/s`.
pub fn load_unit(axis: &str) -> &'static str {
    if axis == "rate" { "req/s" } else { "users" }
}

/// A number with thousands separators and no decimals above 100: `3,100`, `48`, `2.5`.
pub fn num(v: f64) -> String {
    if v.abs() < 100.0 {
        let s = format!("{v:.1}");
        return s.strip_suffix(".0").map(str::to_string).unwrap_or(s);
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// A limit in ms as people write it: `1 s`, `250 ms`.
pub fn ms_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", num(ms / 1000.0))
    } else {
        format!("{} ms", num(ms))
    }
}

/// "within TTFT p99 <= 1 s: vllm 48 users (3,100 tok/s), ollama 2 users (140 tok/s)".
pub fn sentence(s: &Sweeps, g: &SweepGroup) -> String {
    let unit = load_unit(&g.axis);
    let parts: Vec<String> = g
        .members
        .iter()
        .map(|&i| {
            let v = &s.views[i];
            match within_ttft_p99(&v.analysis, g.ttft_limit_ms) {
                Some(p) => format!(
                    "{} {} {unit} ({} tok/s)",
                    v.runs.platform,
                    num(p.load),
                    num(p.output_tokens_per_sec)
                ),
                None => format!("{} none of its loads", v.runs.platform),
            }
        })
        .collect();
    format!(
        "within TTFT p99 <= {}: {}",
        ms_text(g.ttft_limit_ms),
        parts.join(", ")
    )
}

/// What a knee result says in one line.
pub fn knee_text(a: &Analysis) -> String {
    let k = &a.knee;
    match (k.knee, k.saturation_load) {
        (Some(at), Some(sat)) => format!(
            "knee at {} {} (saturated from {} {}, {} tok/s; {})",
            num(at),
            load_unit(&a.axis),
            num(sat),
            load_unit(&a.axis),
            num(k.saturation_output_tokens_per_sec.unwrap_or(0.0)),
            k.method
        ),
        _ => format!(
            "no knee: {} ({})",
            k.reason.as_deref().unwrap_or("unknown"),
            k.method
        ),
    }
}

/// What the max-goodput conclusion says in one line.
pub fn goodput_text(a: &Analysis) -> String {
    let g = &a.max_goodput;
    let slo: Vec<String> = g
        .slo_ms
        .iter()
        .map(|(k, v)| format!("{k} <= {}", ms_text(*v)))
        .collect();
    let unresolved = if g.unresolved.is_empty() {
        String::new()
    } else {
        let v: Vec<String> = g.unresolved.iter().map(|x| num(*x)).collect();
        format!(
            "; unresolved (interval straddles the target): {}",
            v.join(", ")
        )
    };
    match g.max_load {
        Some(load) => format!(
            "max goodput under {} at {:.0}% attainment: {} {} ({} good req/s, {} tok/s){unresolved}",
            slo.join(", "),
            g.target * 100.0,
            num(load),
            load_unit(&a.axis),
            num(g.goodput_requests_per_sec.unwrap_or(0.0)),
            num(g.output_tokens_per_sec.unwrap_or(0.0)),
        ),
        None => format!(
            "max goodput: none ({}){unresolved}",
            g.reason.as_deref().unwrap_or("unknown")
        ),
    }
}

/// The document `analysis/sweeps/<id>.json` (`schemas/sweep.schema.json`).
pub fn document(v: &SweepView) -> Value {
    let a = &v.analysis;
    json!({
        "schema": SWEEP_SCHEMA,
        "sweep_id": v.runs.id,
        "platform": v.runs.platform,
        "model": v.runs.model,
        "axis": a.axis,
        "target": v.runs.target,
        "derived_from": a.points.iter().map(|p| p.test_id.clone()).collect::<Vec<_>>(),
        "points": a.points,
        "knee": a.knee,
        "max_goodput": a.max_goodput,
        "max_goodput_load": a.max_goodput.max_load,
        "conclusions": [knee_text(a), goodput_text(a)],
        "shards": v.runs.shards,
    })
}

/// A split sweep's shards in words: "shards: 3 of 3 complete", or "shards: 2 of 3
/// complete; missing: 1/3 (no point stored); incomplete: 2/3 (1 of 2 points)". None
/// for a sweep run in one piece.
pub fn shards_text(v: &SweepView) -> Option<String> {
    let s = v.runs.shards.as_ref()?;
    let mut out = format!("shards: {} of {} complete", s.done, s.count);
    for state in ["missing", "running", "incomplete", "stopped"] {
        let these: Vec<String> = s
            .shards
            .iter()
            .filter(|x| x.state == state)
            .map(|x| match (state, x.planned) {
                ("missing", _) => format!("{}/{} (no point stored)", x.index, s.count),
                (_, Some(p)) => format!("{}/{} ({} of {p} points)", x.index, s.count, x.points),
                _ => format!("{}/{} ({} points)", x.index, s.count, x.points),
            })
            .collect();
        if !these.is_empty() {
            let word = if state == "stopped" {
                "stopped early"
            } else {
                state
            };
            out.push_str(&format!("; {word}: {}", these.join(", ")));
        }
    }
    Some(out)
}

/// The file's bytes: pretty JSON with a final newline.
pub fn render(v: &SweepView) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(&document(v)).unwrap_or_default();
    b.push(b'\n');
    b
}

/// A figure of a sweep by name, for `query --sweep ID --metric NAME`: the document's
/// keys as a dotted path (`knee.knee`, `max_goodput.max_load`), plus the short names
/// `max_goodput_concurrency`, `max_goodput_rate`, `knee_concurrency`, `knee_rate`.
pub fn figure(v: &SweepView, name: &str) -> Option<Value> {
    let a = &v.analysis;
    let axis_ok = |axis: &str| a.axis == axis;
    match name {
        "max_goodput_concurrency" if axis_ok("concurrency") => {
            return Some(json!(a.max_goodput.max_load));
        }
        "max_goodput_rate" if axis_ok("rate") => return Some(json!(a.max_goodput.max_load)),
        "knee_concurrency" if axis_ok("concurrency") => return Some(json!(a.knee.knee)),
        "knee_rate" if axis_ok("rate") => return Some(json!(a.knee.knee)),
        _ => {}
    }
    let doc = document(v);
    let mut cur = &doc;
    for key in catalog::metric_path(name) {
        cur = cur.get(&key)?;
    }
    Some(cur.clone())
}

/// The sweep named `id`: exactly, else by a unique prefix. The error lists the sweeps
/// there are.
pub fn select<'a>(s: &'a Sweeps, id: &str) -> Result<&'a SweepView, String> {
    if let Some(v) = s.views.iter().find(|v| v.runs.id == id) {
        return Ok(v);
    }
    let hits: Vec<&SweepView> = s
        .views
        .iter()
        .filter(|v| v.runs.id.starts_with(id))
        .collect();
    match hits.as_slice() {
        [one] if !id.is_empty() => Ok(one),
        [] | [_] => {
            let ids: Vec<&str> = s.views.iter().map(|v| v.runs.id.as_str()).collect();
            Err(if ids.is_empty() {
                format!(
                    "no sweep {id:?}: the store has no sweep (a sweep's points carry a `sweep` key; `benchkeep sweep` makes them)"
                )
            } else {
                format!("no sweep {id:?}; the store has: {}", ids.join(", "))
            })
        }
        many => {
            let ids: Vec<&str> = many.iter().map(|v| v.runs.id.as_str()).collect();
            Err(format!(
                "--sweep {id:?} matches several sweeps: {}; give more of the id",
                ids.join(", ")
            ))
        }
    }
}

/// The points a figure draws: (load, value) of the points on the curve.
pub(crate) fn curve(a: &Analysis, pick: impl Fn(&Point) -> Option<f64>) -> Vec<(f64, f64)> {
    a.points
        .iter()
        .filter(|p| p.on_curve(&a.axis))
        .filter_map(|p| Some((p.load, pick(p)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_the_sentence() {
        assert_eq!(num(3100.4), "3,100");
        assert_eq!(num(1234567.0), "1,234,567");
        assert_eq!(num(48.0), "48");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(ms_text(1000.0), "1 s");
        assert_eq!(ms_text(250.0), "250 ms");
    }
}
