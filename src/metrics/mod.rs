//! Pure aggregation: request records in, the `results` block out.
//!
//! An [`Aggregator`] takes records one at a time (a 500,000-line file is never held in
//! memory) and produces counts, token totals, throughput, latency percentiles and goodput.
//! Definitions are those of the README ("Metric definitions").

pub mod interval;
mod samples;
pub mod server_view;
pub mod significance;
pub mod steady;
pub mod sweep;

use std::collections::BTreeMap;

pub use samples::{Samples, percentile};

use crate::schema::{Goodput, Latencies, Metadata, RequestRecord, Results, ServerTimingSummary};

/// Service-level objectives for goodput, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2e_ms.is_none()
    }

    /// The SLOs as stored in `test.slo_ms` (read back by `recover` with [`Slo::of`]).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("ttft", self.ttft_ms),
            ("tpot", self.tpot_ms),
            ("e2e", self.e2e_ms),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), serde_json::json!(v));
            }
        }
        serde_json::Value::Object(m)
    }

    /// The SLOs a run was measured against, from its metadata's `test.slo_ms`.
    pub fn of(meta: &Metadata) -> Slo {
        let get = |k: &str| {
            meta.test
                .extra
                .get("slo_ms")
                .and_then(|s| s.get(k))
                .and_then(serde_json::Value::as_f64)
        };
        Slo {
            ttft_ms: get("ttft"),
            tpot_ms: get("tpot"),
            e2e_ms: get("e2e"),
        }
    }

    /// How a request fares against the objectives (the rule is in `docs/metrics.md`): a
    /// failed request, or one over any limit it can be measured against, is bad; a
    /// successful one within every limit, with every figure the limits need, is good; a
    /// successful one within the limits it can be measured against but lacking a figure
    /// another limit needs (a 1-token answer has no TPOT, a non-streamed one no TTFT) is
    /// undetermined, and the figures it lacked are named.
    pub fn judge(&self, r: &RequestRecord) -> Verdict {
        if !r.ok {
            return Verdict::Bad;
        }
        let mut lacking = Vec::new();
        for (name, limit, value) in [
            ("ttft", self.ttft_ms, r.ttft_ms),
            ("tpot", self.tpot_ms, r.tpot_ms()),
            ("e2e", self.e2e_ms, r.e2e_ms),
        ] {
            match (limit, value) {
                (None, _) => {}
                (Some(l), Some(v)) if v > l => return Verdict::Bad,
                (Some(_), Some(_)) => {}
                (Some(_), None) => lacking.push(name),
            }
        }
        if lacking.is_empty() {
            Verdict::Good
        } else {
            Verdict::Undetermined(lacking)
        }
    }

    fn as_map(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("ttft", self.ttft_ms),
            ("tpot", self.tpot_ms),
            ("e2e", self.e2e_ms),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        }
        m
    }
}

/// A request against the SLOs ([`Slo::judge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Good,
    Bad,
    /// Within every limit it could be measured against; lacking these figures.
    Undetermined(Vec<&'static str>),
}

/// Streaming aggregator over request records.
#[derive(Debug, Default)]
pub struct Aggregator {
    success: u64,
    failure: u64,
    prompt_tokens: u64,
    prompt_known: u64,
    completion_tokens: u64,
    completion_known: u64,
    errors_by_kind: BTreeMap<String, u64>,
    errors_by_status: BTreeMap<u16, u64>,
    client_stalled: u64,
    ttft: Samples,
    tpot: Samples,
    itl: Samples,
    e2e: Samples,
    lag: Samples,
    slot_wait: Samples,
    ttft_from_send: Samples,
    e2e_from_send: Samples,
    server: ServerSums,
    slo: Option<Slo>,
    good: u64,
    undetermined: u64,
    undetermined_by_metric: BTreeMap<String, u64>,
    without_usage: u64,
    first_start_s: Option<f64>,
    last_end_s: Option<f64>,
    /// The steady-state window's collector, when asked for ([`Aggregator::with_steady`]).
    steady: Option<steady::Collector>,
}

#[derive(Debug, Default)]
struct ServerSums {
    requests: u64,
    load_ns: u128,
    load_seen: bool,
    prompt_eval_ns: u128,
    prompt_eval_tokens: u64,
    prompt_eval_n: u64,
    eval_ns: u128,
    eval_tokens: u64,
    eval_n: u64,
    total_ns: u128,
    total_n: u64,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count goodput against these objectives.
    pub fn with_slo(mut self, slo: Slo) -> Self {
        if !slo.is_empty() {
            self.slo = Some(slo);
        }
        self
    }

    /// Compute the steady-state block (`results.steady_state`) for a load of this shape;
    /// an unusable spec (unknown load, no trims) adds nothing and keeps nothing.
    pub fn with_steady(mut self, spec: steady::SteadySpec) -> Self {
        self.steady = spec.usable().then(|| steady::Collector::new(spec));
        self
    }

    /// Number of records seen.
    pub fn count(&self) -> u64 {
        self.success + self.failure
    }

    pub fn success_count(&self) -> u64 {
        self.success
    }

    pub fn failure_count(&self) -> u64 {
        self.failure
    }

    pub fn completion_tokens(&self) -> u64 {
        self.completion_tokens
    }

    /// First scheduled send to last response end, when the records carry client times.
    pub fn span_s(&self) -> Option<f64> {
        Some(self.last_end_s? - self.first_start_s?).filter(|s| *s > 0.0)
    }

    /// The run's window: the first scheduled send and the last response end, seconds on
    /// the records' clock (what `span_s` spans).
    pub fn window_s(&self) -> Option<(f64, f64)> {
        Some((self.first_start_s?, self.last_end_s?)).filter(|(a, b)| b > a)
    }

    /// Add one request.
    pub fn push(&mut self, r: &RequestRecord) {
        if let Some(s) = self.steady.as_mut() {
            s.push(r);
        }
        if let Some(start) = r.scheduled_s.or(r.sent_s) {
            self.first_start_s = Some(self.first_start_s.map_or(start, |s| s.min(start)));
        }
        if let Some(end) = r.end_s {
            self.last_end_s = Some(self.last_end_s.map_or(end, |e| e.max(end)));
        }
        if let Some(lag) = r.lag_ms() {
            self.lag.push(lag);
        }
        if let Some(w) = r.slot_wait_ms {
            self.slot_wait.push(w);
        }
        if r.client_stall_ms.is_some_and(|ms| ms > 0.0) {
            self.client_stalled += 1;
        }
        if !r.ok {
            self.failure += 1;
            let kind = r.error_kind.map(|k| k.as_str()).unwrap_or("other");
            *self.errors_by_kind.entry(kind.to_string()).or_default() += 1;
            if let Some(status) = r.http_status.filter(|s| !(200..300).contains(s)) {
                *self.errors_by_status.entry(status).or_default() += 1;
            }
            return;
        }
        self.success += 1;
        if let Some(p) = r.prompt_tokens {
            self.prompt_tokens += p;
            self.prompt_known += 1;
        }
        if let Some(c) = r.completion_tokens {
            self.completion_tokens += c;
            self.completion_known += 1;
        }
        if let Some(v) = r.ttft_ms {
            self.ttft.push(v);
        }
        if let Some(v) = r.tpot_ms() {
            self.tpot.push(v);
        }
        if let Some(v) = r.e2e_ms {
            self.e2e.push(v);
        }
        if let Some(v) = r.ttft_from_send_ms() {
            self.ttft_from_send.push(v);
        }
        if let Some(v) = r.e2e_from_send_ms() {
            self.e2e_from_send.push(v);
        }
        for &v in &r.itl_ms {
            self.itl.push(v);
        }
        if r.prompt_tokens.is_none() || r.completion_tokens.is_none() {
            self.without_usage += 1;
        }
        match self.slo.as_ref().map(|slo| slo.judge(r)) {
            Some(Verdict::Good) => self.good += 1,
            Some(Verdict::Undetermined(lacking)) => {
                self.undetermined += 1;
                for m in lacking {
                    *self
                        .undetermined_by_metric
                        .entry(m.to_string())
                        .or_default() += 1;
                }
            }
            Some(Verdict::Bad) | None => {}
        }
        let s = &r.server;
        if !s.is_empty() {
            let sums = &mut self.server;
            sums.requests += 1;
            if let Some(ns) = s.load_duration_ns {
                sums.load_ns += ns as u128;
                sums.load_seen = true;
            }
            if let Some(ns) = s.prompt_eval_duration_ns {
                sums.prompt_eval_ns += ns as u128;
                sums.prompt_eval_n += 1;
                sums.prompt_eval_tokens += r.prompt_tokens.unwrap_or(0);
            }
            if let Some(ns) = s.eval_duration_ns {
                sums.eval_ns += ns as u128;
                sums.eval_n += 1;
                sums.eval_tokens += r.completion_tokens.unwrap_or(0);
            }
            if let Some(ns) = s.total_duration_ns {
                sums.total_ns += ns as u128;
                sums.total_n += 1;
            }
        }
    }

    /// The `results` block for a run that took `total_time_s` seconds.
    pub fn finish(mut self, total_time_s: f64, unparseable_lines: u64) -> Results {
        let (steady_state, steady_state_note) = match self.steady.take().map(|s| s.finish()) {
            Some(Ok(s)) => (Some(Box::new(s)), None),
            Some(Err(note)) => (None, Some(note)),
            None => (None, None),
        };
        let per_sec = |x: f64| {
            if total_time_s > 0.0 {
                x / total_time_s
            } else {
                0.0
            }
        };
        let avg = |sum: u64, n: u64| if n > 0 { sum as f64 / n as f64 } else { 0.0 };
        let waited = !self.slot_wait.is_empty();
        let latencies = Latencies {
            ttft: self.ttft.summary(),
            tpot: self.tpot.summary(),
            itl: self.itl.summary(),
            e2e: self.e2e.summary(),
            lag: self.lag.summary(),
            // The views from the send only where they differ from the schedule's by a
            // slot wait (a `--rate` run with a `--concurrency` cap).
            ttft_from_send: self.ttft_from_send.summary().filter(|_| waited),
            e2e_from_send: self.e2e_from_send.summary().filter(|_| waited),
            slot_wait: self.slot_wait.summary(),
        };
        let denominator = self.success + self.failure - self.undetermined;
        let goodput = self.slo.as_ref().map(|slo| Goodput {
            slo_ms: slo.as_map(),
            good_requests: self.good,
            requests_per_sec: round(per_sec(self.good as f64), 3),
            percent: round(
                if denominator > 0 {
                    100.0 * self.good as f64 / denominator as f64
                } else {
                    0.0
                },
                2,
            ),
            undetermined_requests: Some(self.undetermined),
            undetermined_by_metric: self.undetermined_by_metric.clone(),
            denominator_requests: Some(denominator),
        });
        Results {
            success_count: self.success,
            failure_count: self.failure,
            total_time_seconds: round(total_time_s, 3),
            model_load_time_seconds: None,
            throughput_tokens_per_sec: round(
                per_sec((self.prompt_tokens + self.completion_tokens) as f64),
                2,
            ),
            throughput_requests_per_sec: round(per_sec(self.success as f64), 3),
            avg_prompt_tokens: round(avg(self.prompt_tokens, self.prompt_known), 2),
            avg_completion_tokens: round(avg(self.completion_tokens, self.completion_known), 2),
            gpu_utilization_percent: None,
            output_tokens_per_sec: round(per_sec(self.completion_tokens as f64), 2),
            total_prompt_tokens: self.prompt_tokens,
            total_completion_tokens: self.completion_tokens,
            unparseable_lines,
            skipped_lines: 0,
            errors_by_kind: self.errors_by_kind,
            errors_by_status: self
                .errors_by_status
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            client_stalled_requests: self.client_stalled,
            latency_ms: (!latencies.is_empty()).then(|| Box::new(latencies)),
            server_timings: self.server.summary(),
            goodput,
            output_tokens_per_joule: None,
            requests_without_usage: Some(self.without_usage),
            server_view: None,
            steady_state,
            steady_state_note,
            extra: Default::default(),
        }
    }
}

impl ServerSums {
    fn summary(&self) -> Option<ServerTimingSummary> {
        if self.requests == 0 {
            return None;
        }
        let ms = |ns: u128, n: u64| (n > 0).then(|| round(ns as f64 / 1e6 / n as f64, 3));
        let rate =
            |tokens: u64, ns: u128| (ns > 0).then(|| round(tokens as f64 / (ns as f64 / 1e9), 2));
        Some(ServerTimingSummary {
            requests: self.requests,
            load_ms_total: self.load_seen.then(|| round(self.load_ns as f64 / 1e6, 3)),
            prompt_eval_ms_mean: ms(self.prompt_eval_ns, self.prompt_eval_n),
            eval_ms_mean: ms(self.eval_ns, self.eval_n),
            total_ms_mean: ms(self.total_ns, self.total_n),
            prompt_eval_tokens_per_sec: rate(self.prompt_eval_tokens, self.prompt_eval_ns),
            eval_tokens_per_sec: rate(self.eval_tokens, self.eval_ns),
        })
    }
}

pub use crate::schema::round;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ErrorKind, ServerTimings};

    fn ok(prompt: u64, completion: u64) -> RequestRecord {
        RequestRecord {
            ok: true,
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
            ..Default::default()
        }
    }

    #[test]
    fn seed_throughput_definitions() {
        let mut a = Aggregator::new();
        a.push(&ok(100, 50));
        a.push(&ok(300, 150));
        a.push(&RequestRecord::failed(2, ErrorKind::HttpStatus, "HTTP 400"));
        let r = a.finish(10.0, 1);
        assert_eq!(r.success_count, 2);
        assert_eq!(r.failure_count, 1);
        assert_eq!(r.throughput_tokens_per_sec, 60.0);
        assert_eq!(r.output_tokens_per_sec, 20.0);
        assert_eq!(r.throughput_requests_per_sec, 0.2);
        assert_eq!(r.avg_prompt_tokens, 200.0);
        assert_eq!(r.avg_completion_tokens, 100.0);
        assert_eq!(r.errors_by_kind.get("http_status"), Some(&1));
        assert_eq!(r.unparseable_lines, 1);
        assert!(r.latency_ms.is_none());
    }

    #[test]
    fn failures_by_status_and_client_stalls() {
        let mut a = Aggregator::new();
        for status in [429, 500, 500, 429, 429] {
            let mut r = RequestRecord::failed(1, ErrorKind::HttpStatus, "x");
            r.http_status = Some(status);
            a.push(&r);
        }
        let mut cut = RequestRecord::failed(1, ErrorKind::CutShort, "x");
        cut.http_status = Some(200);
        a.push(&cut);
        let mut stalled = ok(1, 1);
        stalled.client_stall_ms = Some(10_000.0);
        a.push(&stalled);
        let r = a.finish(1.0, 0);
        let want: BTreeMap<String, u64> = [("429".to_string(), 3), ("500".to_string(), 2)].into();
        assert_eq!(r.errors_by_status, want);
        assert_eq!(r.client_stalled_requests, 1);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["errors_by_status"]["429"], 3);
    }

    #[test]
    fn latencies_and_goodput() {
        let mut a = Aggregator::new().with_slo(Slo {
            ttft_ms: Some(150.0),
            ..Default::default()
        });
        for (i, ttft) in [100.0, 200.0, 120.0, 140.0].into_iter().enumerate() {
            a.push(&RequestRecord {
                seq: i as u64,
                ok: true,
                completion_tokens: Some(11),
                ttft_ms: Some(ttft),
                e2e_ms: Some(ttft + 1000.0),
                itl_ms: vec![100.0; 10],
                ..Default::default()
            });
        }
        let r = a.finish(2.0, 0);
        let l = r.latency_ms.unwrap();
        let ttft = l.ttft.unwrap();
        assert_eq!(ttft.count, 4);
        assert_eq!(ttft.p50, 130.0); // numpy: mean of 120 and 140
        assert_eq!(ttft.max, 200.0);
        assert_eq!(l.tpot.unwrap().mean, 100.0);
        assert_eq!(l.itl.unwrap().count, 40);
        let g = r.goodput.unwrap();
        assert_eq!(g.good_requests, 3);
        assert_eq!(g.requests_per_sec, 1.5);
        assert_eq!(g.percent, 75.0);
    }

    #[test]
    fn goodput_leaves_unmeasurable_requests_out_of_the_denominator() {
        // The audit's case: ten 1-token answers, TTFT and E2E 40 ms, under
        // ttft=1s,tpot=50ms,e2e=1s. They have no TPOT: undetermined, not failing.
        let slo = Slo {
            ttft_ms: Some(1000.0),
            tpot_ms: Some(50.0),
            e2e_ms: Some(1000.0),
        };
        let one_token = |seq| RequestRecord {
            seq,
            ok: true,
            prompt_tokens: Some(5),
            completion_tokens: Some(1),
            ttft_ms: Some(40.0),
            e2e_ms: Some(40.0),
            ..Default::default()
        };
        let mut a = Aggregator::new().with_slo(slo.clone());
        for i in 0..10 {
            a.push(&one_token(i));
        }
        let g = a.finish(1.0, 0).goodput.unwrap();
        assert_eq!(g.good_requests, 0);
        assert_eq!(g.undetermined_requests, Some(10));
        assert_eq!(g.undetermined_by_metric.get("tpot"), Some(&10));
        assert_eq!(g.denominator_requests, Some(0));
        assert_eq!(g.percent, 0.0);

        // Mixed: 2 good, 1 over its TTFT (bad even though its TPOT is unknown),
        // 1 undetermined, 1 failed request: 2 of 4 determined.
        let mut a = Aggregator::new().with_slo(slo.clone());
        let good = RequestRecord {
            completion_tokens: Some(11),
            e2e_ms: Some(540.0),
            ..one_token(0)
        };
        a.push(&good);
        a.push(&good);
        a.push(&RequestRecord {
            ttft_ms: Some(1500.0),
            e2e_ms: Some(1500.0),
            ..one_token(2)
        });
        a.push(&one_token(3));
        a.push(&RequestRecord::failed(4, ErrorKind::Timeout, "t"));
        let g = a.finish(1.0, 0).goodput.unwrap();
        assert_eq!(g.good_requests, 2);
        assert_eq!(g.undetermined_requests, Some(1));
        assert_eq!(g.denominator_requests, Some(4));
        assert_eq!(g.percent, 50.0);
        assert_eq!(
            slo.judge(&RequestRecord {
                ttft_ms: None,
                ..good
            }),
            Verdict::Undetermined(vec!["ttft", "tpot"])
        );
    }

    #[test]
    fn successful_requests_without_usage_are_counted() {
        let mut a = Aggregator::new();
        a.push(&ok(3, 4));
        a.push(&RequestRecord {
            ok: true,
            ..Default::default()
        });
        a.push(&RequestRecord::failed(2, ErrorKind::Timeout, "t"));
        let r = a.finish(1.0, 0);
        assert_eq!(r.requests_without_usage, Some(1));
        assert_eq!(r.output_tokens_per_sec, 4.0);
    }

    #[test]
    fn ollama_server_timings() {
        let mut a = Aggregator::new();
        let mut r = ok(31, 5);
        r.server = ServerTimings {
            total_duration_ns: Some(612_004_512),
            load_duration_ns: Some(20_311_042),
            prompt_eval_duration_ns: Some(48_022_000),
            eval_duration_ns: Some(50_000_000),
        };
        a.push(&r);
        let s = a.finish(1.0, 0).server_timings.unwrap();
        assert_eq!(s.requests, 1);
        assert_eq!(s.eval_tokens_per_sec, Some(100.0));
        assert_eq!(s.load_ms_total, Some(20.311));
    }
}
