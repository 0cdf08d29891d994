//! What the steady-state window costs at the end of a run, for `scripts/bench_steady.sh`:
//! N records of a closed loop at concurrency C; the time of the aggregator's `finish` (the
//! end-of-run work every run already does) and of the steady-state collector's `finish`
//! (what the window adds at the end), and of its pushes (spread over the run), best of 3
//! each; one JSON line.
//!
//! ```text
//! cargo run --release --example steady_cost -- 100000 64
//! ```

use std::time::Instant;

use benchkeep::metrics::Aggregator;
use benchkeep::metrics::steady::{Collector, Shape, SteadySpec};
use benchkeep::schema::RequestRecord;

/// A closed loop of `c` slots: request `i` lasts 0.8 to 1.2 s, 64 to 320 tokens.
fn records(n: usize, c: usize) -> Vec<RequestRecord> {
    let mut free = vec![0.0f64; c];
    (0..n)
        .map(|i| {
            let slot = i % c;
            let t = free[slot];
            let len = 0.8 + 0.4 * ((i * 7919) % 1000) as f64 / 1000.0;
            free[slot] = t + len + 1e-4;
            let tokens = 64 + (i * 31 % 257) as u64;
            let itl = vec![len * 1000.0 / tokens as f64; tokens as usize - 1];
            RequestRecord {
                seq: i as u64,
                ok: true,
                prompt_tokens: Some(128),
                completion_tokens: Some(tokens),
                scheduled_s: Some(t),
                sent_s: Some(t),
                first_token_s: Some(t + 0.05),
                end_s: Some(t + len),
                ttft_ms: Some(50.0),
                e2e_ms: Some(len * 1000.0),
                itl_ms: itl,
                ..Default::default()
            }
        })
        .collect()
}

/// The aggregator's `finish` (what every run's end does already), best of 3.
fn aggregator_finish_ms(recs: &[RequestRecord]) -> f64 {
    (0..3)
        .map(|_| {
            let mut agg = Aggregator::new();
            recs.iter().for_each(|r| agg.push(r));
            let span = agg.span_s().unwrap_or(0.0);
            let t = Instant::now();
            let _ = agg.finish(span, 0);
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}

/// The steady-state collector alone: its pushes (during the run) and its `finish` (at the
/// end), best of 3 each.
fn steady_ms(recs: &[RequestRecord], spec: SteadySpec) -> (f64, f64, bool) {
    let mut best = (f64::MAX, f64::MAX, false);
    for _ in 0..3 {
        let mut c = Collector::new(spec);
        let t0 = Instant::now();
        recs.iter().for_each(|r| c.push(r));
        let t1 = Instant::now();
        let found = c.finish().is_ok();
        let t2 = Instant::now();
        best.0 = best.0.min((t1 - t0).as_secs_f64() * 1e3);
        best.1 = best.1.min((t2 - t1).as_secs_f64() * 1e3);
        best.2 = found;
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let c: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let recs = records(n, c);
    let spec = SteadySpec::new(Shape::Closed(c as u32));
    let finish = aggregator_finish_ms(&recs);
    let (push, steady, found) = steady_ms(&recs, spec);
    println!(
        "{{\"requests\":{n},\"concurrency\":{c},\"steady_state_found\":{found},\"aggregator_finish_ms\":{finish:.2},\"steady_push_ms\":{push:.2},\"steady_added_ms\":{steady:.2}}}"
    );
}
