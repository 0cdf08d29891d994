//! The simulator's vLLM histograms: the buckets of vLLM 0.32 (FORMATS.md §4.5, checked
//! against a real `/metrics` in tests/it/sim_fidelity/vllm.rs), what each observes, and
//! their Prometheus text. Values are true to what the engine did: queue = arrival to
//! admission into the batch, prefill = admission to the end of the prefill step, decode =
//! the rest, TTFT observed when the first token is produced (docs/server-view.md).

use std::fmt::Write as _;

use super::metrics::{fmt_f64, metric};

const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const REQUEST_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub(crate) fn observe_n(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += n;
        }
        self.sum += v * n as f64;
        self.count += n;
    }
}

/// Per-request timings the engine reports when a request finishes, in seconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Observed {
    pub e2e_s: f64,
    pub queue_s: f64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub prompt_tokens: u32,
    pub generation_tokens: u32,
}

/// vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to the context length.
fn token_buckets(max_model_len: u32) -> Vec<f64> {
    let mut out = Vec::new();
    let mut exp = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let v = m * exp;
            if v > f64::from(max_model_len.max(1)) {
                return out;
            }
            out.push(v);
        }
        exp *= 10.0;
    }
}

/// Every histogram of the vLLM profile.
#[derive(Debug)]
pub(crate) struct Histograms {
    pub ttft: Histogram,
    pub itl: Histogram,
    pub e2e: Histogram,
    pub queue: Histogram,
    pub prefill: Histogram,
    pub decode: Histogram,
    pub inference: Histogram,
    pub prompt_tokens: Histogram,
    pub generation_tokens: Histogram,
}

impl Histograms {
    pub(crate) fn new(max_model_len: u32) -> Self {
        let tokens = token_buckets(max_model_len);
        Histograms {
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2e: Histogram::new(REQUEST_BUCKETS),
            queue: Histogram::new(REQUEST_BUCKETS),
            prefill: Histogram::new(REQUEST_BUCKETS),
            decode: Histogram::new(REQUEST_BUCKETS),
            inference: Histogram::new(REQUEST_BUCKETS),
            prompt_tokens: Histogram::new(&tokens),
            generation_tokens: Histogram::new(&tokens),
        }
    }

    /// A finished request (its TTFT was observed at its first token).
    pub(crate) fn finished(&mut self, o: &Observed) {
        self.e2e.observe_n(o.e2e_s, 1);
        self.queue.observe_n(o.queue_s, 1);
        self.prefill.observe_n(o.prefill_s, 1);
        self.decode.observe_n(o.decode_s, 1);
        self.inference.observe_n(o.prefill_s + o.decode_s, 1);
        self.prompt_tokens.observe_n(f64::from(o.prompt_tokens), 1);
        self.generation_tokens
            .observe_n(f64::from(o.generation_tokens), 1);
    }

    /// The histograms' exposition with `labels` on every sample.
    pub(crate) fn render(&self, out: &mut String, labels: &str) {
        let h = self;
        for (name, help, hist) in [
            (
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                &h.ttft,
            ),
            (
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                &h.itl,
            ),
            (
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                &h.e2e,
            ),
            (
                "vllm:request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.",
                &h.queue,
            ),
            (
                "vllm:request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.",
                &h.prefill,
            ),
            (
                "vllm:request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.",
                &h.decode,
            ),
            (
                "vllm:request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.",
                &h.inference,
            ),
            (
                "vllm:request_prompt_tokens",
                "Number of prefill tokens processed.",
                &h.prompt_tokens,
            ),
            (
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                &h.generation_tokens,
            ),
        ] {
            metric(out, name, "histogram", help);
            let mut cum = 0;
            for (b, c) in hist.bounds.iter().zip(&hist.counts) {
                cum += c;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{}\"}} {cum}.0",
                    fmt_f64(*b)
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"+Inf\"}} {}.0",
                hist.count
            );
            let _ = writeln!(out, "{name}_count{{{labels}}} {}.0", hist.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", fmt_f64(hist.sum));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_buckets_follow_vllm_1_2_5_up_to_the_context() {
        assert_eq!(
            token_buckets(1024),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(token_buckets(1), vec![1.0]);
    }
}
