//! What the simulator is doing, as numbers: gauges and counters the engine and the
//! handlers update, the Prometheus text of `GET /metrics` (vLLM's `vllm:*` names in the
//! vLLM profile, `benchkeep_sim_*` in both), and the [`SimStats`] snapshot for tests.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::config::{Profile, SimConfig};
use super::request::Finish;

/// Injected faults, as counted in `benchkeep_sim_faults_total{kind="..."}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Error,
    StreamError,
    Drop,
    Stall,
    Garbage,
    EndlessLine,
    EndlessEvent,
    InvalidUtf8,
    MissingDone,
}

impl FaultKind {
    pub(crate) const ALL: [FaultKind; 9] = [
        FaultKind::Error,
        FaultKind::StreamError,
        FaultKind::Drop,
        FaultKind::Stall,
        FaultKind::Garbage,
        FaultKind::EndlessLine,
        FaultKind::EndlessEvent,
        FaultKind::InvalidUtf8,
        FaultKind::MissingDone,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            FaultKind::Error => "error",
            FaultKind::StreamError => "stream_error",
            FaultKind::Drop => "drop",
            FaultKind::Stall => "stall",
            FaultKind::Garbage => "garbage",
            FaultKind::EndlessLine => "endless_line",
            FaultKind::EndlessEvent => "endless_event",
            FaultKind::InvalidUtf8 => "invalid_utf8",
            FaultKind::MissingDone => "missing_done",
        }
    }
}

/// Counts of injected faults by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// HTTP 500 answers (`--error-rate`).
    pub error: u64,
    /// Error events after HTTP 200 (`--stream-error-rate`).
    pub stream_error: u64,
    /// Connections closed mid-stream (`--drop-rate`).
    pub drop: u64,
    /// Streams that stopped sending (`--stall-after`).
    pub stall: u64,
    /// Chunks that are not JSON (`--garbage-rate`).
    pub garbage: u64,
    /// Lines that never end (`--endless-line`).
    pub endless_line: u64,
    /// Events that never end (`--endless-event`).
    pub endless_event: u64,
    /// Chunks with invalid UTF-8 (`--invalid-utf8-rate`).
    pub invalid_utf8: u64,
    /// Streams that ended without `[DONE]` (`--missing-done-rate`).
    pub missing_done: u64,
}

/// A snapshot of the simulator's counters, from [`super::SimServer::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Generation requests received (valid or not).
    pub requests: u64,
    /// Requests answered with a 4xx error before any token.
    pub rejected: u64,
    /// Requests whose generation finished (`stop` or `length`).
    pub completed: u64,
    /// Requests abandoned before they finished (client gone, or a fault cut them).
    pub aborted: u64,
    /// Prompt tokens processed.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub generation_tokens: u64,
    /// Requests running now.
    pub running: u64,
    /// Requests waiting in the queue now.
    pub waiting: u64,
    /// Open client connections.
    pub connections: u64,
    /// Injected faults by kind.
    pub faults: FaultCounts,
}

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
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
    50000.0, 100000.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe_n(&mut self, v: f64, n: u64) {
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
    pub ttft_s: f64,
    pub e2e_s: f64,
    pub queue_s: f64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub prompt_tokens: u32,
    pub generation_tokens: u32,
}

#[derive(Debug)]
struct Histograms {
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
    queue: Histogram,
    prefill: Histogram,
    decode: Histogram,
    inference: Histogram,
    prompt_tokens: Histogram,
    generation_tokens: Histogram,
}

/// Live counters shared by the engine, the handlers and `/metrics`.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    /// `f64` bits of the KV-cache usage fraction.
    pub kv_usage_bits: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub finished_stop: AtomicU64,
    pub finished_length: AtomicU64,
    pub finished_abort: AtomicU64,
    pub requests: AtomicU64,
    pub rejected: AtomicU64,
    pub connections: AtomicU64,
    pub loaded: AtomicBool,
    /// Unix seconds of the last generation request (for `/api/ps` `expires_at`).
    pub last_used_unix: AtomicU64,
    faults: [AtomicU64; 9],
    hist: Mutex<Histograms>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics {
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_usage_bits: AtomicU64::new(0f64.to_bits()),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            finished_stop: AtomicU64::new(0),
            finished_length: AtomicU64::new(0),
            finished_abort: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            last_used_unix: AtomicU64::new(0),
            faults: Default::default(),
            hist: Mutex::new(Histograms {
                ttft: Histogram::new(TTFT_BUCKETS),
                itl: Histogram::new(ITL_BUCKETS),
                e2e: Histogram::new(REQUEST_BUCKETS),
                queue: Histogram::new(REQUEST_BUCKETS),
                prefill: Histogram::new(REQUEST_BUCKETS),
                decode: Histogram::new(REQUEST_BUCKETS),
                inference: Histogram::new(REQUEST_BUCKETS),
                prompt_tokens: Histogram::new(TOKEN_BUCKETS),
                generation_tokens: Histogram::new(TOKEN_BUCKETS),
            }),
        }
    }

    pub(crate) fn fault(&self, kind: FaultKind) {
        self.faults[kind as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn set_kv_usage(&self, frac: f64) {
        self.kv_usage_bits.store(frac.to_bits(), Relaxed);
    }

    /// A finished (or aborted, `finish = None`) request.
    pub(crate) fn finished(&self, finish: Option<Finish>, obs: Option<&Observed>) {
        match finish {
            Some(Finish::Stop) => &self.finished_stop,
            Some(Finish::Length) => &self.finished_length,
            None => &self.finished_abort,
        }
        .fetch_add(1, Relaxed);
        if let Some(o) = obs {
            let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
            h.ttft.observe_n(o.ttft_s, 1);
            h.e2e.observe_n(o.e2e_s, 1);
            h.queue.observe_n(o.queue_s, 1);
            h.prefill.observe_n(o.prefill_s, 1);
            h.decode.observe_n(o.decode_s, 1);
            h.inference.observe_n(o.prefill_s + o.decode_s, 1);
            h.prompt_tokens.observe_n(f64::from(o.prompt_tokens), 1);
            h.generation_tokens
                .observe_n(f64::from(o.generation_tokens), 1);
        }
    }

    /// `n` inter-token gaps of `gap_s` seconds (one decode step for `n` sequences).
    pub(crate) fn itl(&self, gap_s: f64, n: u64) {
        if n > 0 {
            let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
            h.itl.observe_n(gap_s, n);
        }
    }

    pub(crate) fn stats(&self) -> SimStats {
        let f = |k: FaultKind| self.faults[k as usize].load(Relaxed);
        SimStats {
            requests: self.requests.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            completed: self.finished_stop.load(Relaxed) + self.finished_length.load(Relaxed),
            aborted: self.finished_abort.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            generation_tokens: self.generation_tokens.load(Relaxed),
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            connections: self.connections.load(Relaxed),
            faults: FaultCounts {
                error: f(FaultKind::Error),
                stream_error: f(FaultKind::StreamError),
                drop: f(FaultKind::Drop),
                stall: f(FaultKind::Stall),
                garbage: f(FaultKind::Garbage),
                endless_line: f(FaultKind::EndlessLine),
                endless_event: f(FaultKind::EndlessEvent),
                invalid_utf8: f(FaultKind::InvalidUtf8),
                missing_done: f(FaultKind::MissingDone),
            },
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of `GET /metrics`.
    pub(crate) fn render(&self, cfg: &SimConfig) -> String {
        let mut out = String::with_capacity(8192);
        if cfg.profile == Profile::Vllm {
            self.render_vllm(cfg, &mut out);
        }
        let s = self.stats();
        let info = format!(
            "profile=\"{}\",model_name=\"{}\",version=\"{}\"",
            cfg.profile.as_str(),
            escape_label(&cfg.model),
            escape_label(&cfg.server_version)
        );
        metric(
            &mut out,
            "benchkeep_sim_info",
            "gauge",
            "Simulator identity.",
        );
        let _ = writeln!(out, "benchkeep_sim_info{{{info}}} 1.0");
        metric(
            &mut out,
            "benchkeep_sim_requests_total",
            "counter",
            "Generation requests received.",
        );
        let _ = writeln!(out, "benchkeep_sim_requests_total {}.0", s.requests);
        metric(
            &mut out,
            "benchkeep_sim_rejected_total",
            "counter",
            "Generation requests answered with a 4xx error.",
        );
        let _ = writeln!(out, "benchkeep_sim_rejected_total {}.0", s.rejected);
        metric(
            &mut out,
            "benchkeep_sim_requests_running",
            "gauge",
            "Requests being generated.",
        );
        let _ = writeln!(out, "benchkeep_sim_requests_running {}.0", s.running);
        metric(
            &mut out,
            "benchkeep_sim_requests_waiting",
            "gauge",
            "Requests waiting in the queue.",
        );
        let _ = writeln!(out, "benchkeep_sim_requests_waiting {}.0", s.waiting);
        metric(
            &mut out,
            "benchkeep_sim_connections",
            "gauge",
            "Open client connections.",
        );
        let _ = writeln!(out, "benchkeep_sim_connections {}.0", s.connections);
        metric(
            &mut out,
            "benchkeep_sim_faults_total",
            "counter",
            "Injected faults by kind.",
        );
        for k in FaultKind::ALL {
            let _ = writeln!(
                out,
                "benchkeep_sim_faults_total{{kind=\"{}\"}} {}.0",
                k.label(),
                self.faults[k as usize].load(Relaxed)
            );
        }
        out
    }

    fn render_vllm(&self, cfg: &SimConfig, out: &mut String) {
        let labels = format!("engine=\"0\",model_name=\"{}\"", escape_label(&cfg.model));
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            metric(out, name, "gauge", help);
            let _ = writeln!(out, "{name}{{{labels}}} {}", fmt_f64(v));
        };
        gauge(
            out,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            self.running.load(Relaxed) as f64,
        );
        gauge(
            out,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            self.waiting.load(Relaxed) as f64,
        );
        gauge(
            out,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            f64::from_bits(self.kv_usage_bits.load(Relaxed)),
        );
        metric(
            out,
            "vllm:cache_config_info",
            "gauge",
            "Information of the LLMEngine CacheConfig",
        );
        let _ = writeln!(
            out,
            "vllm:cache_config_info{{block_size=\"{}\",cache_dtype=\"auto\",\
             enable_prefix_caching=\"False\",engine=\"0\",gpu_memory_utilization=\"0.9\",\
             num_cpu_blocks=\"None\",num_gpu_blocks=\"{}\"}} 1.0",
            cfg.block_size, cfg.num_gpu_blocks
        );
        let prompt = self.prompt_tokens.load(Relaxed);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            metric(out, name, "counter", help);
            let _ = writeln!(out, "{name}{{{labels}}} {v}.0");
        };
        counter(
            out,
            "vllm:prompt_tokens_total",
            "Number of prefill tokens processed.",
            prompt,
        );
        counter(
            out,
            "vllm:generation_tokens_total",
            "Number of generation tokens processed.",
            self.generation_tokens.load(Relaxed),
        );
        counter(
            out,
            "vllm:num_preemptions_total",
            "Cumulative number of preemption from the engine.",
            0,
        );
        counter(
            out,
            "vllm:prefix_cache_queries_total",
            "Prefix cache queries, in terms of number of queried tokens.",
            prompt,
        );
        counter(
            out,
            "vllm:prefix_cache_hits_total",
            "Prefix cache hits, in terms of number of cached tokens.",
            0,
        );
        metric(
            out,
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
        );
        for (reason, c) in [
            ("stop", &self.finished_stop),
            ("length", &self.finished_length),
            ("abort", &self.finished_abort),
        ] {
            let _ = writeln!(
                out,
                "vllm:request_success_total{{{labels},finished_reason=\"{reason}\"}} {}.0",
                c.load(Relaxed)
            );
        }
        let h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
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

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Python-style float text (`4.0`, `0.25`), as prometheus_client writes it.
fn fmt_f64(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Escape a label value (`\\`, `\"`, `\n`).
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_vllm_names_and_valid_lines() {
        let m = Metrics::new();
        m.fault(FaultKind::Drop);
        m.finished(
            Some(Finish::Length),
            Some(&Observed {
                ttft_s: 0.03,
                e2e_s: 0.5,
                generation_tokens: 10,
                ..Observed::default()
            }),
        );
        let cfg = SimConfig {
            model: "we\"ird\\name".into(),
            ..SimConfig::default()
        };
        let text = m.render(&cfg);
        for name in [
            "vllm:num_requests_running{",
            "vllm:num_requests_waiting{",
            "vllm:kv_cache_usage_perc{",
            "vllm:cache_config_info{block_size=\"16\"",
            "gpu_memory_utilization=\"0.9\"",
            "vllm:generation_tokens_total{",
            "vllm:time_to_first_token_seconds_bucket{",
            "benchkeep_sim_faults_total{kind=\"drop\"} 1.0",
            "finished_reason=\"length\"} 1.0",
            "model_name=\"we\\\"ird\\\\name\"",
        ] {
            assert!(text.contains(name), "missing {name}\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        let ollama = m.render(&SimConfig::for_profile(Profile::Ollama));
        assert!(!ollama.contains("vllm:"));
        assert!(ollama.contains("benchkeep_sim_faults_total"));
    }
}
