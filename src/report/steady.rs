//! The steady-state figures as text, beside the whole-run ones and marked as such: the
//! section of `benchkeep show` (and of the run detail), and the line after `run` and
//! `recover`. Definitions: `docs/steady-state.md`.

use std::fmt::Write;

use crate::schema::{LatencySummary, Metadata, SteadyState, steady_method};

/// The mark every steady-state figure carries: `(steady state, 12.3 s of 15.0 s)`.
pub fn mark(s: &SteadyState) -> String {
    format!(
        "(steady state, {:.1} s of {:.1} s)",
        s.duration_s, s.run_span_s
    )
}

/// ` (whole run)` after the whole-run figures of a run that has steady-state ones too.
pub fn whole_run_mark(m: &Metadata) -> &'static str {
    if m.results.steady_state.is_some() {
        " (whole run)"
    } else {
        ""
    }
}

/// How the window was found, in words.
fn how(s: &SteadyState) -> String {
    match s.method.as_str() {
        steady_method::IN_FLIGHT => match s.target_in_flight {
            Some(c) => format!("{c} in flight"),
            None => "in flight at the target".into(),
        },
        steady_method::ARRIVALS => "open loop: first response to last send".into(),
        steady_method::WARMUP_COOLDOWN => "--warmup/--cooldown".into(),
        other => clean(other),
    }
}

/// The interval in words: `95% CI 1119.47 to 1382.06 tok/s (batch means, 13 batches of
/// 0.177 s)`, or the note saying why there is none.
fn interval(s: &SteadyState) -> String {
    match (&s.throughput_ci, &s.throughput_ci_note) {
        (Some(ci), _) => format!(
            "{:.0}% CI {:.2} to {:.2} tok/s (batch means, {} batches of {:.3} s)",
            ci.level * 100.0,
            ci.low,
            ci.high,
            ci.batches,
            ci.batch_s
        ),
        (None, Some(note)) => format!("no interval: {}", clean(note)),
        (None, None) => "no interval".into(),
    }
}

/// The "Steady state" section of a run's detail (empty when the run has neither figures
/// nor a note).
pub fn section(m: &Metadata) -> String {
    let r = &m.results;
    let mut out = String::new();
    let Some(s) = &r.steady_state else {
        if let Some(note) = &r.steady_state_note {
            let _ = writeln!(out, "\nSteady state  {}", clean(note));
        }
        return out;
    };
    let _ = writeln!(
        out,
        "\nSteady state: {:.1} s of {:.1} s ({}: {:.3} s to {:.3} s)",
        s.duration_s,
        s.run_span_s,
        how(s),
        s.start_s,
        s.end_s
    );
    let _ = writeln!(
        out,
        "  output        {:.2} tok/s (steady state); whole run {:.2} tok/s",
        s.output_tokens_per_sec, r.output_tokens_per_sec
    );
    let _ = writeln!(out, "  interval      {}", interval(s));
    let _ = writeln!(
        out,
        "  requests/s    {:.3} (steady state); whole run {:.3}",
        s.requests_per_sec, r.throughput_requests_per_sec
    );
    let _ = writeln!(
        out,
        "  requests      {} started and {} completed in the window",
        s.requests, s.completed
    );
    if let Some(l) = &s.latency_ms {
        let _ = writeln!(
            out,
            "  latency (ms, steady state) {:>8} {:>8} {:>8} {:>8}",
            "mean", "p50", "p99", "max"
        );
        for (name, v) in [("TTFT", &l.ttft), ("TPOT", &l.tpot), ("E2E", &l.e2e)] {
            if let Some(v) = v {
                let _ = writeln!(out, "  {name:<26} {}", cells(v));
            }
        }
    }
    out
}

/// The line after `run`'s summary: `Steady state: 1251 output tok/s (steady state, 2.3 s
/// of 2.8 s), 95% CI ...`, or why there is none.
pub fn summary_line(m: &Metadata) -> String {
    let r = &m.results;
    match (&r.steady_state, &r.steady_state_note) {
        (Some(s), _) => format!(
            "  Steady state: {:.0} output tok/s, {:.3} req/s {}; {}\n",
            s.output_tokens_per_sec,
            s.requests_per_sec,
            mark(s),
            interval(s)
        ),
        (None, Some(note)) => format!("  Steady state: {}\n", clean(note)),
        (None, None) => String::new(),
    }
}

fn cells(v: &LatencySummary) -> String {
    format!(
        "{:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        v.mean, v.p50, v.p99, v.max
    )
}

/// No control characters from stored strings reach the screen.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
