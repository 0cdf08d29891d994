//! The server's view of one run, computed: vLLM's histograms and counters as the
//! difference of a scrape before and after the measured load (means from `_sum/_count`,
//! percentiles from buckets, marked as such), Ollama's per-request durations, the gauges'
//! series summarized, and the "where the time went" breakdown of the client's TTFT.

use crate::client::prom::{Histogram, Snapshot};
use crate::schema::server_view::{
    Breakdown, BucketPercentiles, SOURCE_NONE, SOURCE_OLLAMA, SOURCE_VLLM, SeriesSummary,
    ServerMeans, ServerView,
};
use crate::schema::{LatencySummary, Results, round};

/// The histograms read, by the key they get in `mean_ms` and `percentiles_from_buckets`.
pub const HISTOGRAMS: [(&str, &str); 6] = [
    ("ttft", "vllm:time_to_first_token_seconds"),
    ("queue", "vllm:request_queue_time_seconds"),
    ("prefill", "vllm:request_prefill_time_seconds"),
    ("decode", "vllm:request_decode_time_seconds"),
    ("e2e", "vllm:e2e_request_latency_seconds"),
    ("itl", "vllm:inter_token_latency_seconds"),
];

/// One sample of the server's gauges, seconds from the start of the measured load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GaugeSample {
    pub t_s: f64,
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    pub kv_cache_usage: Option<f64>,
}

/// A server that offered no view, with the reason (one line).
pub fn unavailable(reason: impl Into<String>) -> ServerView {
    ServerView {
        source: SOURCE_NONE.into(),
        note: Some(reason.into()),
        ..ServerView::default()
    }
}

/// The view from two scrapes of vLLM's `/metrics`, for a run that ended with `results`.
pub fn from_vllm(before: &Snapshot, after: &Snapshot, results: &Results) -> ServerView {
    let mut v = ServerView {
        source: SOURCE_VLLM.into(),
        ..ServerView::default()
    };
    let mut restarted = false;
    let mut diffs = Vec::new();
    for (key, name) in HISTOGRAMS {
        let Some(a) = after.histogram(name) else {
            continue;
        };
        let empty = Histogram::default();
        match a.minus(before.histogram(name).unwrap_or(&empty)) {
            Some(d) => diffs.push((key, d)),
            None => restarted = true,
        }
    }
    let ms = |d: &Histogram| d.mean().map(|s| round(s * 1e3, 3));
    for (key, d) in &diffs {
        let mean = ms(d);
        match *key {
            "ttft" => v.mean_ms.ttft = mean,
            "queue" => v.mean_ms.queue = mean,
            "prefill" => v.mean_ms.prefill = mean,
            "decode" => v.mean_ms.decode = mean,
            "e2e" => v.mean_ms.e2e = mean,
            _ => v.mean_ms.itl = mean,
        }
        if let (Some(p50), Some(p90), Some(p99)) =
            (d.quantile(0.5), d.quantile(0.9), d.quantile(0.99))
        {
            v.percentiles_from_buckets.insert(
                key.to_string(),
                BucketPercentiles {
                    p50: round(p50 * 1e3, 3),
                    p90: round(p90 * 1e3, 3),
                    p99: round(p99 * 1e3, 3),
                    from_buckets: true,
                    first_bucket_ms: d.first_bound().map(|b| round(b * 1e3, 3)),
                },
            );
        }
    }
    let counter = |name: &str| -> Option<u64> {
        let a = after.value(name)?;
        let b = before.value(name).unwrap_or(0.0);
        (a >= b).then(|| (a - b).round() as u64)
    };
    v.requests = diffs
        .iter()
        .find(|(k, _)| *k == "e2e")
        .map(|(_, d)| d.count.round() as u64)
        .unwrap_or(0);
    v.preemptions = counter("vllm:num_preemptions_total");
    v.prompt_tokens = counter("vllm:prompt_tokens_total");
    v.generation_tokens = counter("vllm:generation_tokens_total");
    let sent = results.success_count + results.failure_count;
    let mut notes = Vec::new();
    if restarted {
        notes.push("a histogram lost counts between the scrapes (the server restarted?): those figures are left out".to_string());
    }
    if v.requests > sent {
        v.other_traffic = true;
        notes.push(format!(
            "the server finished {} requests while this run sent {sent}: other traffic was mixed in, the means are not this run's alone",
            v.requests
        ));
    } else if v.requests < results.success_count {
        notes.push(format!(
            "the server counted {} finished requests of this run's {} successful ones",
            v.requests, results.success_count
        ));
    }
    if !notes.is_empty() {
        v.note = Some(notes.join("; "));
    }
    v.breakdown = breakdown(&v.mean_ms, results);
    v
}

/// The view from Ollama's per-request durations (`results.server_timings`): queue is what
/// its total duration has beyond prompt evaluation and generation (the model load
/// included), prefill is `prompt_eval_duration`, decode `eval_duration`.
pub fn from_ollama(results: &Results) -> Option<ServerView> {
    let st = results.server_timings.as_ref()?;
    let (pe, ev, total) = (st.prompt_eval_ms_mean?, st.eval_ms_mean?, st.total_ms_mean?);
    let queue = (total - pe - ev).max(0.0);
    let mut v = ServerView {
        source: SOURCE_OLLAMA.into(),
        requests: st.requests,
        mean_ms: ServerMeans {
            ttft: Some(round(queue + pe, 3)),
            queue: Some(round(queue, 3)),
            prefill: Some(round(pe, 3)),
            decode: Some(round(ev, 3)),
            e2e: Some(round(total, 3)),
            itl: None,
        },
        note: Some("Ollama: queue = total_duration - prompt_eval_duration - eval_duration (includes load_duration); its first token comes from the first decode step, which the remainder holds".into()),
        ..ServerView::default()
    };
    if let Some(load) = st.load_ms_total {
        v.extra
            .insert("load_ms_total".into(), serde_json::json!(round(load, 3)));
    }
    v.breakdown = breakdown(&v.mean_ms, results);
    Some(v)
}

/// The client's TTFT from the send (the schedule's lag is the client's own).
fn client(l: &Option<LatencySummary>) -> Option<f64> {
    l.as_ref().filter(|s| s.count > 0).map(|s| s.mean)
}

/// `client_ttft = server_queue + server_prefill + remainder`, when the client measured a
/// TTFT and the server reported queue and prefill.
pub fn breakdown(m: &ServerMeans, results: &Results) -> Option<Breakdown> {
    let lat = results.latency_ms.as_ref()?;
    let ttft = client(&lat.ttft_from_send).or_else(|| client(&lat.ttft))?;
    let (queue, prefill) = (m.queue?, m.prefill?);
    Some(Breakdown {
        client_ttft_ms: round(ttft, 3),
        server_queue_ms: round(queue, 3),
        server_prefill_ms: round(prefill, 3),
        remainder_ms: round(ttft - queue - prefill, 3),
        server_ttft_ms: m.ttft,
        client_e2e_ms: client(&lat.e2e_from_send)
            .or_else(|| client(&lat.e2e))
            .map(|x| round(x, 3)),
        server_e2e_ms: m.e2e,
    })
}

/// The gauges' series summarized: means, maxima, and mean waiting requests in the first
/// and last quarter of the queue's rise (at least 4 samples up to its peak).
pub fn summarize(samples: &[GaugeSample], file: &str, interval_s: f64) -> SeriesSummary {
    let stat = |f: fn(&GaugeSample) -> Option<f64>| -> (Option<f64>, Option<f64>) {
        let vals: Vec<f64> = samples.iter().filter_map(f).collect();
        if vals.is_empty() {
            return (None, None);
        }
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let max = vals.iter().copied().fold(f64::MIN, f64::max);
        (Some(round(mean, 3)), Some(round(max, 3)))
    };
    let (running_mean, running_max) = stat(|s| s.running);
    let (waiting_mean, waiting_max) = stat(|s| s.waiting);
    let (_, kv_cache_usage_max) = stat(|s| s.kv_cache_usage);
    let (first, last) = quarters(samples);
    SeriesSummary {
        file: file.to_string(),
        samples: samples.len() as u64,
        interval_s,
        truncated: false,
        running_mean,
        running_max,
        waiting_mean,
        waiting_max,
        waiting_first_quarter: first,
        waiting_last_quarter: last,
        kv_cache_usage_max,
        failed_scrapes: 0,
    }
}

/// Mean waiting requests in the first and the last quarter of the queue's rise: the time
/// from the first sample to the first sample at the peak (the drain after the load
/// stopped sending is left out, and a queue that is full from the start has no rise).
fn quarters(samples: &[GaugeSample]) -> (Option<f64>, Option<f64>) {
    let w: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.t_s, s.waiting?)))
        .collect();
    let peak = w.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let Some(end) = w.iter().position(|p| p.1 == peak) else {
        return (None, None);
    };
    let w = &w[..=end];
    if w.len() < 4 {
        return (None, None);
    }
    let (t0, t1) = (w[0].0, w[w.len() - 1].0);
    let span = t1 - t0;
    let mean = |pick: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = w.iter().filter(|(t, _)| pick(*t)).map(|p| p.1).collect();
        (!v.is_empty()).then(|| round(v.iter().sum::<f64>() / v.len() as f64, 3))
    };
    (
        mean(&|t| t <= t0 + span / 4.0),
        mean(&|t| t >= t1 - span / 4.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::prom::parse;
    use crate::schema::Latencies;

    fn hist(name: &str, les: &[(&str, u64)], sum: f64) -> String {
        let mut s = String::new();
        for (le, c) in les {
            s += &format!("{name}_bucket{{engine=\"0\",le=\"{le}\",model_name=\"m\"}} {c}.0\n");
        }
        let count = les.last().map_or(0, |p| p.1);
        s += &format!("{name}_count{{engine=\"0\",model_name=\"m\"}} {count}.0\n");
        s += &format!("{name}_sum{{engine=\"0\",model_name=\"m\"}} {sum}\n");
        s
    }

    fn results(ttft_mean: f64, success: u64) -> Results {
        let s = LatencySummary {
            count: success,
            mean: ttft_mean,
            ..LatencySummary::default()
        };
        Results {
            success_count: success,
            latency_ms: Some(Box::new(Latencies {
                ttft: Some(s),
                ..Latencies::default()
            })),
            ..Results::default()
        }
    }

    #[test]
    fn before_after_difference_gives_this_runs_means_and_breakdown() {
        let before = parse(
            &(hist(
                "vllm:request_queue_time_seconds",
                &[("0.1", 2), ("+Inf", 2)],
                0.1,
            ) + &hist(
                "vllm:request_prefill_time_seconds",
                &[("0.1", 2), ("+Inf", 2)],
                0.1,
            ) + &hist(
                "vllm:e2e_request_latency_seconds",
                &[("1.0", 2), ("+Inf", 2)],
                1.0,
            )),
            Some("m"),
        );
        let after = parse(
            &(hist(
                "vllm:request_queue_time_seconds",
                &[("0.1", 6), ("+Inf", 6)],
                0.14,
            ) + &hist(
                "vllm:request_prefill_time_seconds",
                &[("0.1", 6), ("+Inf", 6)],
                0.26,
            ) + &hist(
                "vllm:e2e_request_latency_seconds",
                &[("1.0", 6), ("+Inf", 6)],
                3.0,
            ) + "vllm:num_preemptions_total{engine=\"0\",model_name=\"m\"} 3.0\n"),
            Some("m"),
        );
        let v = from_vllm(&before, &after, &results(50.0, 4));
        assert_eq!(v.source, "vllm_metrics");
        assert_eq!(v.requests, 4);
        assert_eq!(v.mean_ms.queue, Some(10.0));
        assert_eq!(v.mean_ms.prefill, Some(40.0));
        assert_eq!(v.mean_ms.e2e, Some(500.0));
        assert_eq!(v.preemptions, Some(3));
        assert!(!v.other_traffic && v.note.is_none());
        let b = v.breakdown.unwrap();
        assert_eq!(
            (b.client_ttft_ms, b.server_queue_ms, b.server_prefill_ms),
            (50.0, 10.0, 40.0)
        );
        assert_eq!(b.remainder_ms, 0.0);
        assert!(v.percentiles_from_buckets["queue"].from_buckets);
        // More finished than sent: other traffic, said so.
        let v = from_vllm(&Snapshot::default(), &after, &results(50.0, 4));
        assert!(v.other_traffic);
        assert!(v.note.unwrap().contains("other traffic"));
    }

    #[test]
    fn quarters_see_a_growing_queue() {
        // Rises for 20 samples, then drains: the drain is left out.
        let s: Vec<GaugeSample> = (0..20)
            .chain((0..10).rev())
            .enumerate()
            .map(|(i, w)| GaugeSample {
                t_s: i as f64,
                waiting: Some(w as f64),
                ..GaugeSample::default()
            })
            .collect();
        let sum = summarize(&s, "raw/x.server.jsonl", 1.0);
        assert_eq!(sum.waiting_first_quarter, Some(2.0));
        assert_eq!(sum.waiting_last_quarter, Some(17.0));
        assert_eq!(sum.waiting_max, Some(19.0));
        // A queue full from the start (a closed loop's) has no rise.
        let full: Vec<GaugeSample> = (0..20)
            .map(|i| GaugeSample {
                t_s: i as f64,
                waiting: Some(6.0),
                ..GaugeSample::default()
            })
            .collect();
        assert_eq!(summarize(&full, "f", 1.0).waiting_first_quarter, None);
    }
}
