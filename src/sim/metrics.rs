//! What the simulator is doing, as numbers: gauges and counters the engine and the
//! handlers update, the Prometheus text of `GET /metrics` (vLLM's `vllm:*` names in the
//! vLLM profile, `benchkeep_sim_*` in both), and the [`SimStats`] snapshot for tests.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::config::{Profile, SimConfig};
use super::histograms::Histograms;
pub(crate) use super::histograms::Observed;
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
    pub(crate) fn new(max_model_len: u32) -> Self {
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
            hist: Mutex::new(Histograms::new(max_model_len)),
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
            self.hist
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finished(o);
        }
    }

    /// A request's first token, `ttft_s` after its arrival (vLLM observes TTFT then).
    pub(crate) fn first_token(&self, ttft_s: f64) {
        self.hist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ttft
            .observe_n(ttft_s, 1);
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
        // vLLM 0.32 lists these reasons too; the simulator never finishes with them.
        for reason in ["error", "repetition"] {
            let _ = writeln!(
                out,
                "vllm:request_success_total{{{labels},finished_reason=\"{reason}\"}} 0.0"
            );
        }
        self.hist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .render(out, &labels);
    }
}

pub(super) fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Python-style float text (`4.0`, `0.25`), as prometheus_client writes it.
pub(super) fn fmt_f64(v: f64) -> String {
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
        let m = Metrics::new(8192);
        m.fault(FaultKind::Drop);
        m.finished(
            Some(Finish::Length),
            Some(&Observed {
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
