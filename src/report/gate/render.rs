//! The gate's verdicts as terminal text, Markdown, JSON and CSV: per metric the effect
//! (absolute and percent), its 95 % interval, the p-value, the test and the verdict.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{Finding, Judged, Outcome, Settings};
use crate::report::markdown::escape;
use crate::schema::Metadata;

/// Strip control characters (terminal escape sequences) from stored strings.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn signed(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:+.1}")
    } else {
        format!("{v:+.3}")
    }
}

/// The p-value as people read it: 4 significant digits, `<1e-300` at the floor.
pub fn p_text(p: f64) -> String {
    if p <= 0.0 {
        "<1e-300".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// `-12.300 (-4.1%)`.
pub fn effect_text(f: &Finding) -> String {
    match (&f.result, f.percent) {
        (Some(t), Some(p)) => format!("{} ({p:+.1}%)", signed(t.effect)),
        (Some(t), None) => signed(t.effect),
        _ => "–".into(),
    }
}

/// `[-15.0, -9.6]`.
pub fn interval_text(f: &Finding) -> String {
    match &f.result {
        Some(t) => format!("[{}, {}]", signed(t.lo), signed(t.hi)),
        None => "–".into(),
    }
}

fn verdict_text(f: &Finding) -> String {
    match f.outcome {
        Outcome::Regression => "REGRESSION".into(),
        Outcome::NotEnoughData => {
            format!("not enough data: {}", clean(f.why.as_deref().unwrap_or("")))
        }
        o => o.as_str().into(),
    }
}

/// Who the candidate is compared with: one run, or a history of runs.
pub fn baseline_text(base: &[&Metadata]) -> String {
    match base {
        [one] => format!(
            "{} ({}, {}, {})",
            clean(&one.test_id),
            clean(&one.platform),
            clean(&one.model),
            one.timestamp
        ),
        many => format!(
            "history of {} runs, {} .. {}",
            many.len(),
            many.first().map(|m| clean(&m.test_id)).unwrap_or_default(),
            many.last().map(|m| clean(&m.test_id)).unwrap_or_default()
        ),
    }
}

/// Terminal text; with `color`, regressions are red and improvements green.
pub fn text(base: &[&Metadata], rows: &[Judged], s: &Settings, color: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Baseline: {}\nGate: a change counts when beyond {}% AND significant at alpha {} (95% intervals){}",
        baseline_text(base),
        s.threshold_pct,
        s.alpha,
        floors_text(s)
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
        for n in &r.notes {
            let _ = writeln!(o, "  note: left out: {}", clean(n));
        }
        let _ = writeln!(
            o,
            "  {:<13} {:>10} {:>10} {:>20} {:>22} {:>8}  verdict (test)",
            "metric", "baseline", "this run", "effect", "95% interval", "p"
        );
        for f in &r.findings {
            let (b, v) = match (f.baseline, f.value) {
                (Some(b), Some(v)) => (num(b), num(v)),
                _ => ("–".into(), "–".into()),
            };
            let p = f.result.map(|t| p_text(t.p)).unwrap_or_else(|| "–".into());
            let line = format!(
                "  {:<13} {:>10} {:>10} {:>20} {:>22} {:>8}  {} ({})",
                f.gated().label,
                b,
                v,
                effect_text(f),
                interval_text(f),
                p,
                verdict_text(f),
                f.test
            );
            let line = match (color, f.outcome) {
                (true, Outcome::Regression) => format!("\x1b[31m{line}\x1b[0m"),
                (true, Outcome::Improvement) => format!("\x1b[32m{line}\x1b[0m"),
                _ => line,
            };
            let _ = writeln!(o, "{line}");
        }
    }
    o.push('\n');
    o.push_str(&summary(rows, s));
    o
}

/// The closing lines: the regressions, then the metrics without enough data.
pub fn summary(rows: &[Judged], s: &Settings) -> String {
    let mut o = String::new();
    let regressions: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.regressions().map(move |f| {
                format!(
                    "{} {} {} p={}",
                    clean(&r.run.test_id),
                    f.gated().label,
                    effect_text(f),
                    f.result.map(|t| p_text(t.p)).unwrap_or_default()
                )
            })
        })
        .collect();
    if regressions.is_empty() {
        let _ = writeln!(
            o,
            "No significant regression beyond {}% (alpha {}).",
            s.threshold_pct, s.alpha
        );
    } else {
        let _ = writeln!(
            o,
            "{} regression(s) beyond {}% at alpha {}: {}",
            regressions.len(),
            s.threshold_pct,
            s.alpha,
            regressions.join("; ")
        );
    }
    let lacking: Vec<String> = rows
        .iter()
        .flat_map(|r| r.lacking().map(|f| f.gated().label.to_string()))
        .collect();
    if !lacking.is_empty() {
        let _ = writeln!(o, "Not enough data for: {}.", lacking.join(", "));
    }
    o
}

/// GitHub Markdown, one table per candidate.
pub fn markdown(base: &[&Metadata], rows: &[Judged], s: &Settings) -> String {
    let mut o = format!(
        "# Compared with {}\n\nA change counts when beyond {}% and significant at alpha {}{}.\n",
        escape(&baseline_text(base)),
        s.threshold_pct,
        s.alpha,
        floors_text(s)
    );
    for r in rows {
        let _ = write!(o, "\n## {}\n\n", escape(&r.run.test_id));
        if let Some(c) = &r.caveat {
            let _ = writeln!(o, "_{}_\n", escape(c));
        }
        o.push_str("| Metric | Baseline | This run | Effect | 95% interval | p | Test | Verdict |\n| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
        for f in &r.findings {
            let cell = |v: Option<f64>| v.map(num).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                f.gated().label,
                cell(f.baseline),
                cell(f.value),
                effect_text(f),
                interval_text(f),
                f.result.map(|t| p_text(t.p)).unwrap_or_else(|| "–".into()),
                escape(&f.test),
                escape(&verdict_text(f)),
            );
        }
    }
    o.push('\n');
    o.push_str(&summary(rows, s));
    o
}

/// The run noise floors, as the header says them (nothing when both are off).
fn floors_text(s: &Settings) -> String {
    if s.noise_floor_pct <= 0.0 && s.tail_noise_floor_pct <= 0.0 {
        return String::new();
    }
    format!(
        "; without a history of 3+ runs, also against a run-to-run noise of ±{}% (p99 ±{}%)",
        s.noise_floor_pct, s.tail_noise_floor_pct
    )
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "metric": f.gated().key,
        "test": f.test,
        "baseline": f.baseline,
        "value": f.value,
        "effect": f.result.map(|t| t.effect),
        "effect_percent": f.percent,
        "interval_95": f.result.map(|t| [t.lo, t.hi]),
        "statistic": f.result.map(|t| t.statistic).filter(|s| s.is_finite()),
        "p_value": f.result.map(|t| t.p),
        "verdict": match f.outcome {
            Outcome::Regression => "regression",
            Outcome::Improvement => "improvement",
            Outcome::NoChange => "no_significant_change",
            Outcome::NotEnoughData => "not_enough_data",
            Outcome::OtherLoad => "other_load",
        },
        "why": f.why,
        "noise_floor_percent": f.noise_floor_pct,
    })
}

/// JSON for scripts.
pub fn json(base: &[&Metadata], rows: &[Judged], s: &Settings) -> Value {
    json!({
        "baseline": base.iter().map(|m| m.test_id.as_str()).collect::<Vec<_>>(),
        "threshold_percent": s.threshold_pct,
        "alpha": s.alpha,
        "noise_floor_percent": s.noise_floor_pct,
        "tail_noise_floor_percent": s.tail_noise_floor_pct,
        "regressions": rows.iter().map(|r| r.regressions().count()).sum::<usize>(),
        "not_enough_data": rows.iter().map(|r| r.lacking().count()).sum::<usize>(),
        "runs": rows.iter().map(|r| json!({
            "test_id": r.run.test_id,
            "caveat": r.caveat,
            "notes": r.notes,
            "metrics": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// CSV, one row per candidate and metric.
pub fn csv(rows: &[Judged]) -> String {
    let mut o = String::from(
        "test_id,metric,baseline,value,effect,effect_percent,ci_low,ci_high,p_value,test,verdict\n",
    );
    let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in rows {
        for x in &r.findings {
            let t = x.result;
            let _ = writeln!(
                o,
                "{},{},{},{},{},{},{},{},{},{},{}",
                crate::report::table::field(&r.run.test_id),
                x.gated().key,
                f(x.baseline),
                f(x.value),
                f(t.map(|t| t.effect)),
                f(x.percent),
                f(t.map(|t| t.lo)),
                f(t.map(|t| t.hi)),
                f(t.map(|t| t.p)),
                crate::report::table::field(&x.test),
                x.outcome.as_str(),
            );
        }
    }
    o
}
