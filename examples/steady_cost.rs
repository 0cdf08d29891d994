//! What the steady-state window costs at the end of a run, for `scripts/bench_steady.sh`:
//! N records of a closed loop at concurrency C streamed through the aggregator without and
//! with the steady-state collector; prints one JSON line with the time of each (push of
//! every record, and `finish`) and what the steady block added.
//!
//! ```text
//! cargo run --release --example steady_cost -- 100000 64
//! ```

use std::time::Instant;

use benchkeep::metrics::Aggregator;
use benchkeep::metrics::steady::{Shape, SteadySpec};
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

fn time(recs: &[RequestRecord], steady: Option<SteadySpec>) -> (f64, f64, bool) {
    let mut agg = Aggregator::new();
    if let Some(spec) = steady {
        agg = agg.with_steady(spec);
    }
    let t0 = Instant::now();
    for r in recs {
        agg.push(r);
    }
    let t1 = Instant::now();
    let span = agg.span_s().unwrap_or(0.0);
    let results = agg.finish(span, 0);
    let t2 = Instant::now();
    (
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        results.steady_state.is_some(),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let c: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let recs = records(n, c);
    let spec = SteadySpec::new(Shape::Closed(c as u32));
    // Best of 3 of each, alternating.
    let (mut plain, mut steady) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
    let mut found = false;
    for _ in 0..3 {
        let (p, f, _) = time(&recs, None);
        plain = (plain.0.min(p), plain.1.min(f));
        let (p, f, s) = time(&recs, Some(spec));
        steady = (steady.0.min(p), steady.1.min(f));
        found = s;
    }
    println!(
        "{{\"requests\":{n},\"concurrency\":{c},\"steady_state_found\":{found},\"push_ms\":{:.1},\"push_with_steady_ms\":{:.1},\"finish_ms\":{:.1},\"finish_with_steady_ms\":{:.1},\"steady_added_ms\":{:.1}}}",
        plain.0,
        steady.0,
        plain.1,
        steady.1,
        steady.1 - plain.1
    );
}
