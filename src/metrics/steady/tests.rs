//! The window rules, the pro-rating of tokens and the batch means, on records made here.

use super::*;
use crate::metrics::Aggregator;
use crate::schema::ErrorKind;

/// A closed loop of `c` slots over `k` requests of `tokens` tokens: request `i` lasts
/// `len(i)` seconds, its first token after a tenth of that; the client resends 0.1 ms
/// after a completion; the initial `c` requests go out 10 µs apart.
fn closed_loop(c: usize, k: usize, tokens: u64, len: impl Fn(usize) -> f64) -> Vec<RequestRecord> {
    let mut free: Vec<f64> = (0..c).map(|i| i as f64 * 1e-5).collect();
    let mut out = Vec::new();
    for i in 0..k {
        let (slot, &t) = free
            .iter()
            .enumerate()
            .min_by(|x, y| x.1.total_cmp(y.1))
            .unwrap();
        let l = len(i);
        out.push(RequestRecord {
            seq: i as u64,
            ok: true,
            completion_tokens: Some(tokens),
            scheduled_s: Some(t),
            sent_s: Some(t),
            first_token_s: Some(t + l / 10.0),
            end_s: Some(t + l),
            ttft_ms: Some(l * 100.0),
            e2e_ms: Some(l * 1000.0),
            ..Default::default()
        });
        free[slot] = t + l + 1e-4;
    }
    out
}

fn steady_of(records: &[RequestRecord], spec: SteadySpec) -> Result<SteadyState, String> {
    let mut c = Collector::new(spec);
    for r in records {
        c.push(r);
    }
    c.finish()
}

#[test]
fn closed_loop_window_cuts_the_ramp_and_the_drain() {
    // 8 slots, 8 full generations and one request: the drain is a whole generation with
    // one request in flight, which pulls the whole-run figure 1/9 below the steady one.
    let records = closed_loop(8, 8 * 8 + 1, 50, |_| 1.0);
    let s = steady_of(&records, SteadySpec::new(Shape::Closed(8))).unwrap();
    assert_eq!(s.method, "in_flight");
    assert_eq!(s.target_in_flight, Some(8));
    let ramp_end = records[..8]
        .iter()
        .map(|r| r.end_s.unwrap())
        .fold(0.0, f64::max);
    assert!(s.start_s >= round(ramp_end, 3), "{s:?}");
    // The drain: the last generation's requests end before the last request is sent (the
    // client resends 0.1 ms after a completion), so in flight drops below 8 for good at
    // the first end after the last full generation's sends.
    let last_full_send = records[63].sent_s.unwrap();
    let drain = records
        .iter()
        .map(|r| r.end_s.unwrap())
        .filter(|e| *e > last_full_send)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(s.end_s, round(drain, 3));
    assert!(
        s.end_s <= records[64].sent_s.unwrap() + 0.0005,
        "stored to the ms"
    );
    // Steady: 8 requests x 50 tokens per 1.0001 s.
    let want = 8.0 * 50.0 / 1.0001;
    assert!(
        (s.output_tokens_per_sec - want).abs() / want < 0.01,
        "{s:?}"
    );
    let mut agg = Aggregator::new();
    records.iter().for_each(|r| agg.push(r));
    let whole = agg.finish(9.0, 0).output_tokens_per_sec;
    assert!(
        whole < 0.92 * want,
        "the whole run is biased by the drain: {whole}"
    );
    // Latencies only of requests started inside the window: generations 2 to 8.
    assert_eq!(s.requests, 8 * 7, "{s:?}");
    assert_eq!(
        s.latency_ms.as_ref().unwrap().e2e.as_ref().unwrap().p50,
        1000.0
    );
    let ci = s.throughput_ci.expect("7 s of 1 s requests: 7 batches");
    assert_eq!(ci.batches, 7);
    assert!(ci.low <= s.output_tokens_per_sec && s.output_tokens_per_sec <= ci.high);
    assert!((ci.mean - s.output_tokens_per_sec).abs() < 0.05);
}

#[test]
fn a_short_window_has_figures_but_no_interval() {
    let records = closed_loop(4, 4 * 3 + 1, 10, |_| 1.0);
    let s = steady_of(&records, SteadySpec::new(Shape::Closed(4))).unwrap();
    assert!(s.throughput_ci.is_none());
    let note = s.throughput_ci_note.unwrap();
    assert!(note.starts_with("not enough data"), "{note}");
}

#[test]
fn a_load_that_never_reaches_its_target_has_no_window() {
    let records = closed_loop(4, 3, 10, |_| 1.0);
    let e = steady_of(&records, SteadySpec::new(Shape::Closed(4))).unwrap_err();
    assert!(e.contains("never reached its target of 4"), "{e}");
    let e = steady_of(&[], SteadySpec::new(Shape::Closed(4))).unwrap_err();
    assert!(e.contains("no send and end times"), "{e}");
    let failed: Vec<RequestRecord> = closed_loop(2, 10, 5, |_| 1.0)
        .into_iter()
        .map(|r| RequestRecord {
            ok: false,
            error_kind: Some(ErrorKind::HttpStatus),
            ..r
        })
        .collect();
    let e = steady_of(&failed, SteadySpec::new(Shape::Closed(2))).unwrap_err();
    assert!(e.contains("no request succeeded"), "{e}");
}

#[test]
fn tokens_are_pro_rated_by_their_times() {
    let p = Point {
        start: 0.0,
        end: 11.0,
        first: 1.0,
        ttft: f32::NAN,
        tpot: f32::NAN,
        e2e: f32::NAN,
        tokens: 11,
        ok: true,
    };
    assert_eq!(p.tokens_in(0.0, 6.0), 6.0); // the first token, then 10 tokens over 10 s
    assert_eq!(p.tokens_in(6.0, 20.0), 5.0);
    assert_eq!(p.tokens_in(0.0, 1.0), 0.0);
    let whole = Point {
        first: f32::NAN,
        ..p
    };
    assert_eq!(whole.tokens_in(0.0, 5.5), 5.5); // no first token: 11 over 11 s
    let failed = Point { ok: false, ..p };
    assert_eq!(failed.tokens_in(0.0, 20.0), 0.0);
}

#[test]
fn open_loop_window_is_first_end_to_last_send() {
    let records: Vec<RequestRecord> = (0..20)
        .map(|i| {
            let t = i as f64 * 0.5;
            RequestRecord {
                seq: i,
                ok: true,
                completion_tokens: Some(4),
                sent_s: Some(t),
                first_token_s: Some(t + 0.1),
                end_s: Some(t + 2.0),
                ..Default::default()
            }
        })
        .collect();
    let s = steady_of(&records, SteadySpec::new(Shape::Open)).unwrap();
    assert_eq!(
        (s.method.as_str(), s.start_s, s.end_s),
        ("arrivals", 2.0, 9.5)
    );
    assert_eq!(s.run_span_s, 11.5);
    assert_eq!(s.requests, 15); // sent at 2.0 .. 9.0 (9.5 is the end, not inside)
}

#[test]
fn warmup_and_cooldown_trim_the_span() {
    let records = closed_loop(2, 20, 10, |_| 1.0);
    let span = records.iter().map(|r| r.end_s.unwrap()).fold(0.0, f64::max);
    let spec = SteadySpec::new(Shape::Closed(2))
        .with_trim(Some(Edge::Fraction(0.2)), Some(Edge::Seconds(1.5)));
    let s = steady_of(&records, spec).unwrap();
    assert_eq!(s.method, "warmup_cooldown");
    assert_eq!(s.target_in_flight, None);
    assert_eq!(s.start_s, round(0.2 * span, 3));
    assert_eq!(s.end_s, round(span - 1.5, 3));
    let spec = SteadySpec::new(Shape::Open).with_trim(Some(Edge::Fraction(0.6)), None);
    assert!(steady_of(&records, spec).is_ok());
    let spec =
        SteadySpec::new(Shape::Open).with_trim(Some(Edge::Seconds(5.0)), Some(Edge::Seconds(6.0)));
    let e = steady_of(&records, spec).unwrap_err();
    assert!(
        e.contains("--warmup 5s and --cooldown 6s leave nothing"),
        "{e}"
    );
}

#[test]
fn batch_means_interval_widens_with_noise() {
    // Alternating request lengths make the per-batch throughput vary.
    let steady = closed_loop(4, 4 * 40 + 1, 20, |_| 1.0);
    let noisy = closed_loop(
        4,
        4 * 40 + 1,
        20,
        |i| if (i / 16) % 2 == 0 { 0.6 } else { 1.4 },
    );
    let a = steady_of(&steady, SteadySpec::new(Shape::Closed(4))).unwrap();
    let b = steady_of(&noisy, SteadySpec::new(Shape::Closed(4))).unwrap();
    let (a, b) = (a.throughput_ci.unwrap(), b.throughput_ci.unwrap());
    assert!(a.batches >= 5 && a.batches <= 30, "{a:?}");
    assert!(b.high - b.low > 5.0 * (a.high - a.low), "{a:?} {b:?}");
    assert_eq!(t_975(4), 2.776);
    assert_eq!(t_975(29), 2.045);
    assert_eq!(t_975(100), 1.96);
}

#[test]
fn the_spec_is_read_back_from_the_metadata() {
    let mut m = Metadata::new(
        crate::schema::SourceKind::Run,
        "benchkeep",
        "p",
        "m",
        chrono::Utc::now(),
    );
    m.test.extra.insert(
        "load".into(),
        serde_json::json!({"mode": "concurrency", "concurrency": 16, "warmup": 3, "cooldown_fraction": 0.1}),
    );
    let s = SteadySpec::of(&m);
    assert_eq!(s.shape, Shape::Closed(16));
    assert_eq!((s.warmup, s.cooldown), (None, Some(Edge::Fraction(0.1))));
    assert_eq!(s.trim_keys(), vec![("cooldown_fraction", 0.1)]);
    m.test.extra.insert(
        "load".into(),
        serde_json::json!({"mode": "rate", "rate": 3.0}),
    );
    assert_eq!(SteadySpec::of(&m).shape, Shape::Open);
    m.test.extra.clear();
    m.source.extra.insert(
        "load".into(),
        serde_json::json!({"max_concurrency": 8, "request_rate": "inf"}),
    );
    assert_eq!(SteadySpec::of(&m).shape, Shape::Closed(8));
    m.source.extra.clear();
    assert!(!SteadySpec::of(&m).usable());
}
