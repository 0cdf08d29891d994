//! `benchkeep simulate`: clap glue that turns flags into a [`SimConfig`], runs the
//! simulator on a runtime sized by `--workers`, prints `listening on http://ADDR` on
//! stdout, and serves until Ctrl-C or SIGTERM.

use std::io::Write as _;

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::error::Error;
use crate::sim::{self, Faults, OutputLen, OutputLenDist, Profile, SimConfig};

/// The most runtime threads `--workers` may ask for.
const MAX_WORKERS: usize = 256;

/// Flags of `benchkeep simulate`. Timing flags left out take the profile's defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the address is printed on stdout).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Server to imitate: timing model, version strings and /v1 flavour.
    #[arg(long, default_value = "vllm", value_parser = PossibleValuesParser::new(["vllm", "ollama"])
        .map(|s| if s == "ollama" { Profile::Ollama } else { Profile::Vllm }))]
    pub profile: Profile,
    /// Served model name [default: sim-model (vllm), llama3.2:latest (ollama)].
    #[arg(long)]
    pub model: Option<String>,
    /// Context length; vLLM rejects prompt + max_tokens above it [default: 8192 vllm, 4096 ollama].
    #[arg(long)]
    pub max_model_len: Option<u32>,
    /// vLLM profile: sequences in the running batch; more wait in the queue.
    #[arg(long, default_value_t = 256)]
    pub max_num_seqs: u32,
    /// Ollama profile: requests served at once (OLLAMA_NUM_PARALLEL); more wait (FIFO).
    #[arg(long, default_value_t = 1)]
    pub num_parallel: u32,
    /// Fixed part of a prefill step, ms [default: 15 vllm, 20 ollama].
    #[arg(long)]
    pub prefill_base_ms: Option<f64>,
    /// Prefill speed, prompt tokens per second [default: 20000 vllm, 2000 ollama].
    #[arg(long)]
    pub prefill_tok_s: Option<f64>,
    /// Decode step with one running sequence, ms [default: 8 vllm, 15 ollama].
    #[arg(long)]
    pub itl_ms: Option<f64>,
    /// Extra decode-step time per additional running sequence, ms [default: 0.05 vllm, 2 ollama].
    #[arg(long)]
    pub itl_per_seq_ms: Option<f64>,
    /// One-time model load on the first request, ms [default: 0 vllm, 1500 ollama].
    #[arg(long)]
    pub load_ms: Option<f64>,
    /// Fractional spread of every step duration (e.g. 0.1 = ±10%).
    #[arg(long, default_value_t = 0.0)]
    pub jitter: f64,
    /// Remove every simulated latency (for measuring clients).
    #[arg(long)]
    pub no_delay: bool,
    /// Seed of all random choices (lengths, words, jitter, faults).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mean output length in tokens when the request sets no limit.
    #[arg(long, default_value_t = 128)]
    pub output_len_mean: u32,
    /// Relative spread of the output length (0 = fixed).
    #[arg(long, default_value_t = 0.5)]
    pub output_len_spread: f64,
    /// Output length distribution.
    #[arg(long, default_value = "uniform", value_parser = PossibleValuesParser::new(["fixed", "uniform", "normal"])
        .map(|s| match s.as_str() {
            "fixed" => OutputLenDist::Fixed,
            "normal" => OutputLenDist::Normal,
            _ => OutputLenDist::Uniform,
        }))]
    pub output_len_dist: OutputLenDist,
    /// Let a drawn "EOS" end a response before max_tokens (unless ignore_eos is set).
    #[arg(long)]
    pub natural_eos: bool,
    /// KV-cache size in blocks (reported in vllm:cache_config_info; limits admission).
    #[arg(long, default_value_t = 8192)]
    pub num_gpu_blocks: u32,
    /// Tokens per KV-cache block.
    #[arg(long, default_value_t = 16)]
    pub block_size: u32,
    /// Version reported by /version and /api/version [default: 0.32.0+sim, 0.33.0+sim].
    #[arg(long)]
    pub server_version: Option<String>,
    /// Largest accepted request body in bytes (larger gets 413).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Fault: probability of an HTTP 500 answer.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault: probability of HTTP 200 then an error event mid-stream.
    #[arg(long, default_value_t = 0.0)]
    pub stream_error_rate: f64,
    /// Fault: probability of closing the connection mid-stream.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fault: stop sending after N content chunks, keeping the connection open.
    #[arg(long, value_name = "N")]
    pub stall_after: Option<u32>,
    /// Fault: probability of one chunk that is not JSON.
    #[arg(long, default_value_t = 0.0)]
    pub garbage_rate: f64,
    /// Fault: after the first chunk, send a line that never ends.
    #[arg(long)]
    pub endless_line: bool,
    /// Fault: after the first chunk, send data lines that never end the event.
    #[arg(long)]
    pub endless_event: bool,
    /// Fault: probability of one content chunk with invalid UTF-8.
    #[arg(long, default_value_t = 0.0)]
    pub invalid_utf8_rate: f64,
    /// Fault: probability of a stream that ends cleanly without `[DONE]` (or `done: true`).
    #[arg(long, default_value_t = 0.0)]
    pub missing_done_rate: f64,
    /// Prompt tokens per word: usage.prompt_tokens, prompt_eval_count and /tokenize count
    /// round(words x F), as a real tokenizer is not one token a word (1.0: the word count).
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub tokens_per_word: f64,
    /// Tokens the chat template adds to a chat prompt (and to /api/generate, /tokenize
    /// with messages); /v1/completions prompts have none.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chat_template_tokens: u32,
    /// Runtime worker threads; 1 runs everything on one thread [default: CPU count; at most 256].
    #[arg(long)]
    pub workers: Option<usize>,
}

impl SimulateArgs {
    /// The library configuration these flags describe; a bad value is a usage error
    /// (exit 2) that names the flag.
    pub fn to_config(&self) -> Result<SimConfig, Error> {
        let mut c = SimConfig::for_profile(self.profile);
        c.bind =
            sim::bind_addr(&self.host, self.port).map_err(|e| Error::usage(format!("{e:#}")))?;
        if let Some(m) = &self.model {
            c.model = m.clone();
        }
        if let Some(l) = self.max_model_len {
            c.max_model_len = l;
        }
        c.max_num_seqs = self.max_num_seqs;
        c.num_parallel = self.num_parallel;
        let t = &mut c.timing;
        for (dst, src) in [
            (&mut t.prefill_base_ms, self.prefill_base_ms),
            (&mut t.prefill_tok_s, self.prefill_tok_s),
            (&mut t.itl_ms, self.itl_ms),
            (&mut t.itl_per_seq_ms, self.itl_per_seq_ms),
            (&mut t.load_ms, self.load_ms),
        ] {
            if let Some(v) = src {
                *dst = v;
            }
        }
        t.jitter = self.jitter;
        t.no_delay = self.no_delay;
        c.seed = self.seed;
        c.output_len = OutputLen {
            mean: self.output_len_mean,
            spread: self.output_len_spread,
            dist: self.output_len_dist,
        };
        c.natural_eos = self.natural_eos;
        c.num_gpu_blocks = self.num_gpu_blocks;
        c.block_size = self.block_size;
        if let Some(v) = &self.server_version {
            c.server_version = v.clone();
        }
        c.max_body_bytes = self.max_body_bytes;
        c.tokens = sim::TokenModel {
            tokens_per_word: self.tokens_per_word,
            template_tokens: self.chat_template_tokens,
        };
        c.faults = Faults {
            error_rate: self.error_rate,
            stream_error_rate: self.stream_error_rate,
            drop_rate: self.drop_rate,
            stall_after: self.stall_after,
            garbage_rate: self.garbage_rate,
            endless_line: self.endless_line,
            endless_event: self.endless_event,
            invalid_utf8_rate: self.invalid_utf8_rate,
            missing_done_rate: self.missing_done_rate,
        };
        c.validate().map_err(|e| Error::usage(format!("{e:#}")))?;
        Ok(c)
    }
}

/// Run `benchkeep simulate` until Ctrl-C or SIGTERM.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let rt = match args.workers {
        Some(n) if n == 0 || n > MAX_WORKERS => {
            return Err(Error::usage(format!(
                "--workers {n}: must be between 1 and {MAX_WORKERS}"
            ))
            .into());
        }
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let profile = config.profile;
        let model = config.model.clone();
        let server = sim::start(config).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {}", server.base_url())
                .and_then(|_| out.flush())
                .context("writing the address to stdout")?;
        }
        eprintln!(
            "benchkeep simulate: profile {}, model {model}; OpenAI base {} ; Ctrl-C to stop",
            profile.as_str(),
            server.openai_base_url()
        );
        wait_for_signal().await?;
        server.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
