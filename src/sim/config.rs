//! Simulator settings: the plain, validated configuration behind `benchkeep simulate`
//! and the in-process API. Nothing here knows about clap; the CLI converts its flags
//! into a [`SimConfig`] and calls [`SimConfig::validate`] through [`super::start`].

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, bail, ensure};

/// Which server the simulator imitates: its timing model, its version strings and the
/// flavour of its OpenAI-compatible `/v1` layer. Both API families (OpenAI `/v1/*` and
/// Ollama `/api/*`) are served in either profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// vLLM: continuous batching of up to `max_num_seqs` sequences; the prefill step emits
    /// the first token; `/metrics` carries the `vllm:*` families.
    Vllm,
    /// Ollama: `num_parallel` slots behind a FIFO queue, a one-time model load; the first
    /// token needs one decode step after the prompt evaluation; `/v1` looks like Ollama's
    /// compatibility layer (`system_fingerprint: "fp_ollama"`).
    Ollama,
}

impl Profile {
    /// The profile's name as the CLI spells it (`vllm`, `ollama`).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Vllm => "vllm",
            Profile::Ollama => "ollama",
        }
    }
}

/// Shape of the distribution that picks an output length when the request sets no limit
/// (and, with [`SimConfig::natural_eos`], the point where the model "emits EOS").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputLenDist {
    /// Always exactly `mean`.
    Fixed,
    /// Uniform over `mean * (1 - spread) ..= mean * (1 + spread)`.
    Uniform,
    /// Normal with standard deviation `mean * spread`, clamped to at least 1.
    Normal,
}

/// Output length distribution, in tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLen {
    /// Mean length in tokens (at least 1).
    pub mean: u32,
    /// Relative spread (0 = fixed length), see [`OutputLenDist`].
    pub spread: f64,
    /// Distribution shape.
    pub dist: OutputLenDist,
}

/// The latency model. All durations are in milliseconds; see `docs/simulator.md` for the
/// formulas.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Fixed part of a prefill step, ms.
    pub prefill_base_ms: f64,
    /// Prefill speed, prompt tokens per second (prefill adds `prompt_tokens / prefill_tok_s`).
    pub prefill_tok_s: f64,
    /// Duration of a decode step with one running sequence, ms.
    pub itl_ms: f64,
    /// Extra decode-step duration per additional running sequence, ms.
    pub itl_per_seq_ms: f64,
    /// One-time model load before the first request is served, ms.
    pub load_ms: f64,
    /// Fractional spread applied to every step duration: each step lasts
    /// `d * (1 + jitter * u)` with `u` uniform in `[-1, 1)`. Must be below 1.
    pub jitter: f64,
    /// Remove every simulated latency: tokens are produced as fast as the client reads.
    pub no_delay: bool,
}

/// Fault injection for hostile-server tests. All are off by default. Rates are
/// probabilities per request in `[0, 1]`, drawn from the seeded per-request generator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Answer HTTP 500 in the server's error shape instead of serving the request.
    pub error_rate: f64,
    /// Answer 200, stream half the tokens, then an error event (`data: {"error":...}` then
    /// `data: [DONE]`; an `{"error":...}` line in NDJSON). Non-streamed requests get a 500.
    pub stream_error_rate: f64,
    /// Close the connection mid-stream (or mid-body for non-streamed requests).
    pub drop_rate: f64,
    /// Stop sending after this many content chunks and keep the connection open.
    pub stall_after: Option<u32>,
    /// Insert one event (or NDJSON line) that is not JSON half-way through the stream
    /// (non-streamed: the whole body is not JSON).
    pub garbage_rate: f64,
    /// After the first content chunk, send a line that never ends (bytes without a
    /// newline until the client disconnects); non-streamed: an endless body.
    pub endless_line: bool,
    /// After the first content chunk, send `data:` lines that never end the event (no
    /// blank line) until the client disconnects. NDJSON and non-streamed responses get
    /// the endless line instead.
    pub endless_event: bool,
    /// Insert one content chunk whose text is invalid UTF-8 half-way through the stream
    /// (non-streamed: the body's text has invalid UTF-8 bytes).
    pub invalid_utf8_rate: f64,
    /// End the stream cleanly but without `data: [DONE]` (NDJSON: without the
    /// `done: true` line). No effect on non-streamed responses.
    pub missing_done_rate: f64,
}

impl Faults {
    /// True when any fault is enabled.
    pub fn any(&self) -> bool {
        self.error_rate > 0.0
            || self.stream_error_rate > 0.0
            || self.drop_rate > 0.0
            || self.stall_after.is_some()
            || self.garbage_rate > 0.0
            || self.endless_line
            || self.endless_event
            || self.invalid_utf8_rate > 0.0
            || self.missing_done_rate > 0.0
    }
}

/// Everything the simulator needs. Build one with [`SimConfig::for_profile`] (or
/// `Default`, the vLLM profile), adjust fields, and pass it to [`super::start`].
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free port. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Server imitated.
    pub profile: Profile,
    /// Served model name. Requests naming another model get a 404 in the server's shape.
    /// For Ollama a name without a tag means `:latest`, and both spellings are accepted.
    pub model: String,
    /// Context limit. vLLM: `prompt + max_tokens` above it is a 400; Ollama: the output is
    /// cut to fit (`num_ctx`).
    pub max_model_len: u32,
    /// vLLM `--max-num-seqs`: sequences in the running batch; more wait in the queue.
    pub max_num_seqs: u32,
    /// Ollama `OLLAMA_NUM_PARALLEL`: requests served at once; more wait in a FIFO queue.
    pub num_parallel: u32,
    /// Latency model.
    pub timing: Timing,
    /// Output length when the request gives no limit.
    pub output_len: OutputLen,
    /// When set, a request with `max_tokens` stops at a length drawn from `output_len`
    /// if that comes first (`finish_reason: "stop"`), unless it sets `ignore_eos`. When
    /// unset (default), `max_tokens` is the exact output length.
    pub natural_eos: bool,
    /// Seed of every random choice (output lengths, words, jitter, faults).
    pub seed: u64,
    /// Fault injection.
    pub faults: Faults,
    /// KV-cache size in blocks (`num_gpu_blocks` in `vllm:cache_config_info`).
    pub num_gpu_blocks: u32,
    /// Tokens per KV-cache block.
    pub block_size: u32,
    /// Version reported by `/version` and `/api/version`.
    pub server_version: String,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How prompts are counted in tokens (`--tokens-per-word`, `--chat-template-tokens`).
    pub tokens: super::tokens::TokenModel,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::for_profile(Profile::Vllm)
    }
}

impl SimConfig {
    /// Defaults that resemble each engine serving a small model on one GPU.
    pub fn for_profile(profile: Profile) -> Self {
        let (model, version, timing, max_model_len) = match profile {
            Profile::Vllm => (
                "sim-model",
                "0.32.0+sim",
                Timing {
                    prefill_base_ms: 15.0,
                    prefill_tok_s: 20_000.0,
                    itl_ms: 8.0,
                    itl_per_seq_ms: 0.05,
                    load_ms: 0.0,
                    jitter: 0.0,
                    no_delay: false,
                },
                8192,
            ),
            Profile::Ollama => (
                "llama3.2:latest",
                "0.33.0+sim",
                Timing {
                    prefill_base_ms: 20.0,
                    prefill_tok_s: 2_000.0,
                    itl_ms: 15.0,
                    itl_per_seq_ms: 2.0,
                    load_ms: 1_500.0,
                    jitter: 0.0,
                    no_delay: false,
                },
                4096,
            ),
        };
        SimConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            profile,
            model: model.to_string(),
            max_model_len,
            max_num_seqs: 256,
            num_parallel: 1,
            timing,
            output_len: OutputLen {
                mean: 128,
                spread: 0.5,
                dist: OutputLenDist::Uniform,
            },
            natural_eos: false,
            seed: 0,
            faults: Faults::default(),
            num_gpu_blocks: 8192,
            block_size: 16,
            server_version: version.to_string(),
            max_body_bytes: 16 * 1024 * 1024,
            tokens: super::tokens::TokenModel::default(),
        }
    }

    /// Requests the engine runs at once in this profile.
    pub fn max_running(&self) -> u32 {
        match self.profile {
            Profile::Vllm => self.max_num_seqs,
            Profile::Ollama => self.num_parallel,
        }
    }

    /// Check every value; errors name the CLI flag and the accepted range.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.model.trim().is_empty(), "--model must not be empty");
        self.tokens.validate()?;
        ensure!(self.model.len() <= 256, "--model is longer than 256 bytes");
        ensure!(
            self.max_model_len >= 2,
            "--max-model-len must be at least 2"
        );
        ensure!(self.max_num_seqs >= 1, "--max-num-seqs must be at least 1");
        ensure!(self.num_parallel >= 1, "--num-parallel must be at least 1");
        ensure!(self.block_size >= 1, "--block-size must be at least 1");
        ensure!(
            self.num_gpu_blocks >= 1,
            "--num-gpu-blocks must be at least 1"
        );
        ensure!(
            self.max_body_bytes >= 1024,
            "the request body limit must be at least 1024 bytes"
        );
        let t = &self.timing;
        for (flag, v) in [
            ("--prefill-base-ms", t.prefill_base_ms),
            ("--itl-ms", t.itl_ms),
            ("--itl-per-seq-ms", t.itl_per_seq_ms),
            ("--load-ms", t.load_ms),
        ] {
            ensure!(
                v.is_finite() && (0.0..=3_600_000.0).contains(&v),
                "{flag} must be between 0 and 3600000 (got {v})"
            );
        }
        ensure!(
            t.prefill_tok_s.is_finite() && t.prefill_tok_s > 0.0,
            "--prefill-tok-s must be a positive number (got {})",
            t.prefill_tok_s
        );
        ensure!(
            t.jitter.is_finite() && (0.0..1.0).contains(&t.jitter),
            "--jitter must be in [0, 1) (got {})",
            t.jitter
        );
        let o = &self.output_len;
        ensure!(o.mean >= 1, "--output-len-mean must be at least 1");
        ensure!(
            o.spread.is_finite() && (0.0..=10.0).contains(&o.spread),
            "--output-len-spread must be between 0 and 10 (got {})",
            o.spread
        );
        let f = &self.faults;
        for (flag, v) in [
            ("--error-rate", f.error_rate),
            ("--stream-error-rate", f.stream_error_rate),
            ("--drop-rate", f.drop_rate),
            ("--garbage-rate", f.garbage_rate),
            ("--invalid-utf8-rate", f.invalid_utf8_rate),
            ("--missing-done-rate", f.missing_done_rate),
        ] {
            ensure!(
                v.is_finite() && (0.0..=1.0).contains(&v),
                "{flag} must be a probability between 0 and 1 (got {v})"
            );
        }
        Ok(())
    }
}

/// Parse a profile name as the CLI spells it.
impl std::str::FromStr for Profile {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vllm" => Ok(Profile::Vllm),
            "ollama" => Ok(Profile::Ollama),
            other => bail!("unknown profile {other:?}: use vllm or ollama"),
        }
    }
}

/// Parse a distribution name as the CLI spells it.
impl std::str::FromStr for OutputLenDist {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fixed" => Ok(OutputLenDist::Fixed),
            "uniform" => Ok(OutputLenDist::Uniform),
            "normal" => Ok(OutputLenDist::Normal),
            other => bail!("unknown distribution {other:?}: use fixed, uniform or normal"),
        }
    }
}

/// Build a bind address from a host string and a port, for the CLI.
pub fn bind_addr(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let ip: std::net::IpAddr = host
        .parse()
        .with_context(|| format!("--host {host:?} is not an IP address (try 127.0.0.1)"))?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        SimConfig::default().validate().unwrap();
        SimConfig::for_profile(Profile::Ollama).validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_flag() {
        let mut c = SimConfig::default();
        c.faults.drop_rate = 1.5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--drop-rate"), "{e}");
        let mut c = SimConfig::default();
        c.timing.jitter = 1.0;
        assert!(c.validate().unwrap_err().to_string().contains("--jitter"));
    }

    #[test]
    fn parse_names() {
        assert_eq!("OLLAMA".parse::<Profile>().unwrap(), Profile::Ollama);
        assert!("tgi".parse::<Profile>().is_err());
        assert_eq!(
            "normal".parse::<OutputLenDist>().unwrap(),
            OutputLenDist::Normal
        );
        assert!(bind_addr("localhost", 1).is_err());
        assert_eq!(bind_addr("0.0.0.0", 80).unwrap().port(), 80);
    }
}
