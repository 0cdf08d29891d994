//! `compare --baseline ID`: per-metric deltas of runs against one baseline run, with the
//! changes beyond a threshold flagged, and the regressions a CI pipeline can gate on.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::report::h2h::{self, Better};
use crate::report::markdown::escape;
use crate::schema::Metadata;

/// One metric `compare --baseline` shows.
pub struct Tracked {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    /// Whether getting worse beyond the threshold is a regression (`--fail-on-regression`).
    pub gate: bool,
    pub get: fn(&Metadata) -> Option<f64>,
}

fn lat(m: &Metadata, f: fn(&crate::schema::Latencies) -> Option<f64>) -> Option<f64> {
    m.results.latency_ms.as_deref().and_then(f)
}

/// The metrics, in display order. Throughput, success and latency gate; memory,
/// efficiency and load time are shown for information.
pub const TRACKED: [Tracked; 12] = [
    Tracked {
        key: "output_tokens_per_sec",
        label: "output tok/s",
        better: Better::Higher,
        gate: true,
        get: |m| Some(m.results.output_tokens_per_sec),
    },
    Tracked {
        key: "throughput_tokens_per_sec",
        label: "total tok/s",
        better: Better::Higher,
        gate: true,
        get: |m| Some(m.results.throughput_tokens_per_sec),
    },
    Tracked {
        key: "throughput_requests_per_sec",
        label: "req/s",
        better: Better::Higher,
        gate: true,
        get: |m| Some(m.results.throughput_requests_per_sec),
    },
    Tracked {
        key: "success_percent",
        label: "success %",
        better: Better::Higher,
        gate: true,
        get: h2h::success_percent,
    },
    Tracked {
        key: "ttft_p50_ms",
        label: "TTFT p50 ms",
        better: Better::Lower,
        gate: true,
        get: |m| lat(m, |l| l.ttft.as_ref().map(|s| s.p50)),
    },
    Tracked {
        key: "ttft_p99_ms",
        label: "TTFT p99 ms",
        better: Better::Lower,
        gate: true,
        get: |m| lat(m, |l| l.ttft.as_ref().map(|s| s.p99)),
    },
    Tracked {
        key: "tpot_p50_ms",
        label: "TPOT p50 ms",
        better: Better::Lower,
        gate: true,
        get: |m| lat(m, |l| l.tpot.as_ref().map(|s| s.p50)),
    },
    Tracked {
        key: "e2e_p50_ms",
        label: "E2E p50 ms",
        better: Better::Lower,
        gate: true,
        get: |m| lat(m, |l| l.e2e.as_ref().map(|s| s.p50)),
    },
    Tracked {
        key: "e2e_p99_ms",
        label: "E2E p99 ms",
        better: Better::Lower,
        gate: true,
        get: |m| lat(m, |l| l.e2e.as_ref().map(|s| s.p99)),
    },
    Tracked {
        key: "peak_vram_gb",
        label: "peak VRAM GB",
        better: Better::Lower,
        gate: false,
        get: |m| m.gpu.as_ref().and_then(|g| g.vram_used_gb),
    },
    Tracked {
        key: "output_tokens_per_joule",
        label: "tokens/J",
        better: Better::Higher,
        gate: false,
        get: h2h::tokens_per_joule,
    },
    Tracked {
        key: "model_load_time_seconds",
        label: "model load s",
        better: Better::Lower,
        gate: false,
        get: |m| m.results.model_load_time_seconds,
    },
];

/// How a metric moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better beyond the threshold.
    Improved,
    /// Worse beyond the threshold.
    Worse,
    /// Within the threshold.
    Same,
    /// One side has no value.
    Missing,
    /// Moved beyond the threshold, but the runs ran at different loads: not a verdict.
    OtherLoad,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Worse => "worse",
            Verdict::Same => "",
            Verdict::Missing => "n/a",
            Verdict::OtherLoad => "other load",
        }
    }
}

/// One metric of one run against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// Index into [`TRACKED`].
    pub metric: usize,
    pub baseline: Option<f64>,
    pub value: Option<f64>,
    /// (value - baseline) / baseline in percent; None when the baseline is 0 or missing.
    pub percent: Option<f64>,
    pub verdict: Verdict,
}

impl Delta {
    /// A tracked metric got worse beyond the threshold.
    pub fn is_regression(&self) -> bool {
        self.verdict == Verdict::Worse && TRACKED[self.metric].gate
    }
}

/// One run against the baseline.
#[derive(Debug, Clone)]
pub struct RunDeltas<'a> {
    pub run: &'a Metadata,
    pub deltas: Vec<Delta>,
    /// Why the two runs are not like for like, if they are not.
    pub caveat: Option<String>,
}

impl RunDeltas<'_> {
    pub fn regressions(&self) -> impl Iterator<Item = &Delta> {
        self.deltas.iter().filter(|d| d.is_regression())
    }
}

/// Compare `run` with `base`; changes larger than `threshold_pct` percent are flagged.
pub fn compare<'a>(base: &Metadata, run: &'a Metadata, threshold_pct: f64) -> RunDeltas<'a> {
    // Runs at different loads are shown side by side, never judged (see `caveat`).
    let other_load = h2h::load_key(base) != h2h::load_key(run);
    let deltas = TRACKED
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (b, v) = ((t.get)(base), (t.get)(run));
            let b = b.filter(|x| x.is_finite());
            let v = v.filter(|x| x.is_finite());
            let (percent, verdict) = match (b, v) {
                (Some(b), Some(v)) => {
                    let pct = (b != 0.0).then(|| (v - b) / b.abs() * 100.0);
                    let moved = match pct {
                        Some(p) => p.abs() > threshold_pct,
                        None => v != b,
                    };
                    let up = v > b;
                    let verdict = match (moved, up, t.better) {
                        (false, _, _) => Verdict::Same,
                        (true, true, Better::Higher) | (true, false, Better::Lower) => {
                            Verdict::Improved
                        }
                        _ => Verdict::Worse,
                    };
                    let verdict = match verdict {
                        Verdict::Improved | Verdict::Worse if other_load => Verdict::OtherLoad,
                        v => v,
                    };
                    (pct, verdict)
                }
                _ => (None, Verdict::Missing),
            };
            Delta {
                metric: i,
                baseline: b,
                value: v,
                percent,
                verdict,
            }
        })
        .collect();
    RunDeltas {
        run,
        deltas,
        caveat: caveat(base, run),
    }
}

/// Why two runs are not like for like (the head-to-head's rule), if they are not.
pub fn caveat(base: &Metadata, run: &Metadata) -> Option<String> {
    let mut why = Vec::new();
    let (fb, fr) = (h2h::model_family(base), h2h::model_family(run));
    if fb != fr {
        why.push(format!("model family {fr} vs {fb}"));
    }
    match (h2h::input_key(base), h2h::input_key(run)) {
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => why.push(format!("input {} vs {}", b.display(), a.display())),
        _ => why.push("input unknown".to_string()),
    }
    let (lb, lr) = (h2h::load_key(base), h2h::load_key(run));
    if lb != lr {
        let show = |l: Option<String>| l.unwrap_or_else(|| "unknown".into());
        why.push(format!(
            "LOAD DIFFERS: {} vs {} (changes are not judged: rerun at the baseline's load)",
            show(lr),
            show(lb)
        ));
    }
    (!why.is_empty()).then(|| format!("not like for like: {}", why.join(", ")))
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 1000.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
        None => "–".to_string(),
    }
}

fn pct(d: &Delta) -> String {
    match (d.percent, d.verdict) {
        (_, Verdict::Missing) => "–".to_string(),
        (Some(p), _) => format!("{p:+.1}%"),
        (None, Verdict::Same) => "+0.0%".to_string(),
        (None, _) => "from 0".to_string(),
    }
}

/// Strip control characters (terminal escape sequences) from stored strings.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Terminal text; with `color`, changes beyond the threshold are red (worse) or green.
pub fn render_text(base: &Metadata, rows: &[RunDeltas], threshold_pct: f64, color: bool) -> String {
    let paint = |v: Verdict, s: String| -> String {
        match (color, v) {
            (true, Verdict::Worse) => format!("\x1b[31m{s}\x1b[0m"),
            (true, Verdict::Improved) => format!("\x1b[32m{s}\x1b[0m"),
            _ => s,
        }
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Baseline: {} ({}, {}, {})\nThreshold: {threshold_pct}% (changes beyond it are flagged)",
        clean(&base.test_id),
        clean(&base.platform),
        clean(&base.model),
        base.timestamp
    );
    for r in rows {
        let _ = writeln!(
            o,
            "\n{} ({}, {}, {})",
            clean(&r.run.test_id),
            clean(&r.run.platform),
            clean(&r.run.model),
            r.run.timestamp
        );
        if let Some(c) = &r.caveat {
            let _ = writeln!(o, "  note: {}", clean(c));
        }
        let _ = writeln!(
            o,
            "  {:<14} {:>12} {:>12} {:>9}  flag",
            "metric", "baseline", "this run", "delta"
        );
        for d in r
            .deltas
            .iter()
            .filter(|d| d.baseline.is_some() || d.value.is_some())
        {
            let t = &TRACKED[d.metric];
            let flag = match d.verdict {
                Verdict::Worse if t.gate => "REGRESSION",
                v => v.as_str(),
            };
            let line = format!(
                "  {:<14} {:>12} {:>12} {:>9}  {}",
                t.label,
                num(d.baseline),
                num(d.value),
                pct(d),
                flag
            );
            let _ = writeln!(o, "{}", paint(d.verdict, line.trim_end().to_string()));
        }
    }
    let regressions: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.regressions().map(move |d| {
                format!(
                    "{} {} {}",
                    clean(&r.run.test_id),
                    TRACKED[d.metric].label,
                    pct(d)
                )
            })
        })
        .collect();
    if regressions.is_empty() {
        let _ = writeln!(o, "\nNo regression beyond {threshold_pct}%.");
    } else {
        let _ = writeln!(
            o,
            "\n{} regression(s) beyond {threshold_pct}%: {}",
            regressions.len(),
            regressions.join("; ")
        );
    }
    o
}

/// GitHub Markdown, one table per run.
pub fn render_markdown(base: &Metadata, rows: &[RunDeltas], threshold_pct: f64) -> String {
    let mut o = format!(
        "# Compared with {}\n\nThreshold: {threshold_pct}%.\n",
        escape(&base.test_id)
    );
    for r in rows {
        let _ = write!(o, "\n## {}\n\n", escape(&r.run.test_id));
        if let Some(c) = &r.caveat {
            let _ = writeln!(o, "_{}_\n", escape(c));
        }
        o.push_str(
            "| Metric | Baseline | This run | Delta | Flag |\n| --- | ---: | ---: | ---: | --- |\n",
        );
        for d in r
            .deltas
            .iter()
            .filter(|d| d.baseline.is_some() || d.value.is_some())
        {
            let t = &TRACKED[d.metric];
            let flag = match d.verdict {
                Verdict::Worse if t.gate => "**regression**",
                v => v.as_str(),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                t.label,
                num(d.baseline),
                num(d.value),
                pct(d),
                flag
            );
        }
    }
    o
}

/// JSON for scripts.
pub fn render_json(base: &Metadata, rows: &[RunDeltas], threshold_pct: f64) -> Value {
    json!({
        "baseline": base.test_id,
        "threshold_percent": threshold_pct,
        "regressions": rows.iter().map(|r| r.regressions().count()).sum::<usize>(),
        "runs": rows.iter().map(|r| json!({
            "test_id": r.run.test_id,
            "caveat": r.caveat,
            "metrics": r.deltas.iter().map(|d| json!({
                "metric": TRACKED[d.metric].key,
                "baseline": d.baseline,
                "value": d.value,
                "delta_percent": d.percent,
                "verdict": match d.verdict {
                    Verdict::Improved => "improved",
                    Verdict::Worse => "worse",
                    Verdict::Same => "same",
                    Verdict::Missing => "missing",
                    Verdict::OtherLoad => "other_load",
                },
                "regression": d.is_regression(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// CSV, one row per run and metric.
pub fn render_csv(rows: &[RunDeltas]) -> String {
    let mut o = String::from("test_id,metric,baseline,value,delta_percent,verdict,regression\n");
    for r in rows {
        for d in &r.deltas {
            let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
            let _ = writeln!(
                o,
                "{},{},{},{},{},{},{}",
                crate::report::table::field(&r.run.test_id),
                TRACKED[d.metric].key,
                f(d.baseline),
                f(d.value),
                f(d.percent),
                match d.verdict {
                    Verdict::Missing => "missing",
                    Verdict::Same => "same",
                    Verdict::OtherLoad => "other_load",
                    v => v.as_str(),
                },
                d.is_regression()
            );
        }
    }
    o
}
