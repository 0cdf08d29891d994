//! The flags of `run`, in groups another command can flatten: the target (server,
//! credentials, limits), the workload (requests), the load (how they are applied) and the
//! output (what is recorded). `sweep` reuses the target, workload and output groups.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::cli::parse;
use crate::client::Api;
use crate::load::lengths::Lengths;
use crate::load::schedule::Arrival;
use crate::metrics::Slo;
use crate::metrics::steady::Edge;
use crate::telemetry::GpuMode;

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Run the same plan N times in a row (the server probed once): N normal runs linked as
    /// one group (`repeat` in their metadata), summarised at the end as the mean with a 95%
    /// Student-t interval across repeats (docs/intervals.md).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
}

/// The server and how to reach it: platform, URL, model, protocol, credentials, limits.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Platform name: vllm, ollama, vllm-serve, ... (first part of the test id).
    #[arg(long)]
    pub platform: String,
    /// The server: http://127.0.0.1:8000 (vLLM), http://127.0.0.1:11434 (Ollama). A /v1 or
    /// /api suffix is accepted; user:password@ is sent as Basic auth and never stored.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// The model as the server names it (`--model` of vllm serve, an Ollama tag).
    #[arg(long)]
    pub model: String,
    /// Protocol: openai-chat, openai-completions, ollama-chat, ollama-generate.
    /// Default: ollama-chat for --platform ollama*, else openai-chat.
    #[arg(long, value_name = "API", value_parser = parse::api)]
    pub api: Option<Api>,
    /// Environment variable holding the API key, sent as a Bearer token
    /// (default: OPENAI_API_KEY when it is set). Never stored.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Extra request header 'Name: value' (repeatable). Values are never stored.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Limit for a whole request, from its send.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse::duration)]
    pub timeout: Duration,
    /// Longest silence (no bytes) tolerated within a response.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse::duration)]
    pub idle_timeout: Duration,
    /// Ask for whole responses instead of streams (no TTFT or ITL then).
    #[arg(long)]
    pub no_stream: bool,
    /// Longest response line (or SSE event) accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, hide = true)]
    pub max_line_bytes: usize,
}

/// The requests: a file or synthetic prompts, how many, their output limit.
#[derive(Debug, Args, Clone)]
pub struct WorkloadArgs {
    /// Requests file: OpenAI Batch input lines ({"body": {"messages": ..., "max_tokens": N}},
    /// like the seed's batch_5k.jsonl) or plain lines with "messages" or "prompt".
    #[arg(long, value_name = "FILE", conflicts_with_all = ["synthetic", "sharegpt"])]
    pub input: Option<PathBuf>,
    /// Generate prompts instead: --input-tokens of the server's tokens each (calibrated
    /// against the server before the run), asking for exactly --output-tokens tokens
    /// (ignore_eos + min_tokens on vLLM, num_predict on Ollama).
    #[arg(long, conflicts_with = "sharegpt")]
    pub synthetic: bool,
    /// Requests from a local ShareGPT-style dataset (a JSON array of {"conversations":
    /// [{"from": "human", ...}, {"from": "gpt", ...}]}): each first human turn, with the
    /// reply's length in words as max_tokens (--max-tokens overrides).
    #[arg(long, value_name = "FILE")]
    pub sharegpt: Option<PathBuf>,
    /// Prompt length of synthetic requests, in the server's tokens (chat template
    /// included): N, MEAN:STDDEV (normal, e.g. 512:128) or @lengths.csv (length,weight lines).
    #[arg(long, value_name = "N", value_parser = |s: &str| Lengths::parse(s, "--input-tokens"))]
    pub input_tokens: Option<Lengths>,
    /// Output length of synthetic requests, in tokens: M, MEAN:STDDEV or @lengths.csv.
    #[arg(long, value_name = "M", value_parser = |s: &str| Lengths::parse(s, "--output-tokens"))]
    pub output_tokens: Option<Lengths>,
    /// Size synthetic prompts by the server's own token count (on: a few 1-token probes,
    /// or vLLM's /tokenize, before the run) or one word per token (off).
    #[arg(long, value_name = "on|off", default_value = "on", action = clap::ArgAction::Set, value_parser = PossibleValuesParser::new(["on", "off"])
        .map(|s| s == "on"))]
    pub calibrate: bool,
    /// Count synthetic prompts' tokens with this local HuggingFace tokenizer.json (never
    /// downloaded; the chat template's tokens are still asked of the server unless
    /// --calibrate off). Needs a build with the cargo feature `tokenizer`.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Start every synthetic prompt with the same N tokens of words (measures the prefix
    /// cache); default: every prompt starts with words unique to the request and the run.
    #[arg(long, value_name = "N")]
    pub shared_prefix: Option<u32>,
    /// Measured requests to send (default: the input file's lines, 100 for --synthetic,
    /// unlimited with --duration). A file's lines repeat if it has fewer.
    #[arg(long, value_name = "K")]
    pub num_requests: Option<u64>,
    /// Seed of synthetic prompts and of the arrival process.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Output token limit for every request (replaces the input file's max_tokens).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
}

/// How the requests are applied: closed loop, open-loop rate, duration, warm-up.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Requests in flight at once (closed loop); with --rate, a cap on in-flight requests.
    /// Default 1 without --rate.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Open loop: requests per second, sent on schedule whatever the server does.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Arrival process for --rate: poisson (gamma gaps, see --burstiness) or constant.
    #[arg(long, value_name = "KIND", value_parser = PossibleValuesParser::new(["poisson", "constant"])
        .map(|s| if s == "constant" { Arrival::Constant } else { Arrival::Poisson }))]
    pub arrival: Option<Arrival>,
    /// Gamma shape of the gaps with --rate: 1 = Poisson, < 1 burstier, > 1 more regular.
    #[arg(long, value_name = "F")]
    pub burstiness: Option<f64>,
    /// Stop sending after this long (30s, 5m, 1h); requests in flight finish.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub duration: Option<Duration>,
    /// A whole number: requests sent first and not counted (they warm caches and load the
    /// model). A duration (30s) or a fraction of the run (10%): where the steady-state
    /// window starts instead of where the in-flight count says (docs/steady-state.md).
    #[arg(long, value_name = "N|DURATION|FRACTION", default_value = "0", value_parser = warmup)]
    pub warmup: Warmup,
    /// How much of the run's end the steady-state window leaves out: a duration (10s) or a
    /// fraction of the run (10%). Default: the drain, found from the in-flight count.
    #[arg(long, value_name = "DURATION|FRACTION", value_parser = cooldown)]
    pub cooldown: Option<Edge>,
    /// After Ctrl-C or SIGTERM, wait this long for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse::duration)]
    pub grace: Duration,
}

/// What is recorded with the run: config, labels, SLOs, response text, GPU telemetry, progress.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Server or engine settings to record: a JSON object, or @file.json.
    #[arg(long)]
    pub config: Option<String>,
    /// A key=value label to filter and group by later (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Service-level objectives for goodput: ttft=200ms,tpot=50ms,e2e=10s (a bare
    /// number is milliseconds).
    #[arg(long, value_name = "SLOS", value_parser = parse::slo)]
    pub slo: Option<Slo>,
    /// Keep each response's text in the raw log (up to 64 KiB per request).
    #[arg(long)]
    pub save_text: bool,
    /// GPU telemetry while the load runs: auto (NVML, else nvidia-smi, else rocm-smi), off,
    /// nvml, nvidia-smi, rocm-smi. Default: auto when the server is on this host, else off.
    #[arg(long, value_name = "SOURCE", value_parser = parse::gpu_mode)]
    pub gpu: Option<GpuMode>,
    /// The server's GPUs, as nvidia-smi numbers them (or GPU- UUID prefixes): 0 or 0,1.
    /// Only these are sampled. Default: for a server on this host, the GPUs its processes
    /// compute on (docs/metrics.md); else CUDA_VISIBLE_DEVICES, else every GPU.
    #[arg(long, value_name = "LIST")]
    pub gpu_index: Option<String>,
    /// GPU sampling interval: 500ms, 1s, 2.5s (at least 50ms).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse::interval)]
    pub gpu_interval: Duration,
    /// How often the server's /metrics (vLLM) is sampled during the run: 500ms, 1s, 5s (at
    /// least 50ms). It is also scraped just before and after the load (docs/server-view.md).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::interval)]
    pub server_metrics_interval: Duration,
    /// Do not scrape the server's /metrics (no server view, no raw/<id>.server.jsonl).
    #[arg(long)]
    pub no_server_metrics: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--warmup`: a count of unrecorded requests, or the steady-state window's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warmup {
    /// Requests sent first and not recorded.
    Requests(u64),
    /// Where the steady-state window starts: a duration after the first send, or a
    /// fraction of the run.
    Window(Edge),
}

impl Warmup {
    /// The unrecorded warm-up requests (0 when `--warmup` set the window instead).
    pub fn requests(self) -> u64 {
        match self {
            Warmup::Requests(n) => n,
            Warmup::Window(_) => 0,
        }
    }

    /// The steady-state window's start, when `--warmup` gave one.
    pub fn window(self) -> Option<Edge> {
        match self {
            Warmup::Requests(_) => None,
            Warmup::Window(e) => Some(e),
        }
    }
}

/// `--warmup`: `5` (requests), `30s`, `500ms`, `2m` (a duration), `10%` or `0.1` (a fraction).
fn warmup(s: &str) -> Result<Warmup, String> {
    match s.trim().parse::<u64>() {
        Ok(n) => Ok(Warmup::Requests(n)),
        Err(_) => edge(s).map(Warmup::Window),
    }
}

/// `--cooldown`: `10s`, `500ms` (a duration), `10%` or `0.1` (a fraction); `0` for none.
fn cooldown(s: &str) -> Result<Edge, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Ok(Edge::Seconds(0.0)),
        Ok(n) => Err(format!(
            "{n}: write a duration ({n}s) or a fraction of the run ({n}%)"
        )),
        Err(_) => edge(s),
    }
}

/// A window edge: a fraction (`10%`, `0.1`) or a duration with a unit (`30s`).
fn edge(s: &str) -> Result<Edge, String> {
    let s = s.trim();
    let fraction = |f: f64| {
        if (0.0..1.0).contains(&f) {
            Ok(Edge::Fraction(f))
        } else {
            Err(format!(
                "{s:?}: a fraction of the run must be at least 0 and under 100%"
            ))
        }
    };
    if let Some(p) = s.strip_suffix('%') {
        return match p.trim().parse::<f64>() {
            Ok(f) => fraction(f / 100.0),
            Err(_) => Err(format!("{s:?} is not a percentage; write e.g. 10%")),
        };
    }
    if let Ok(f) = s.parse::<f64>() {
        return fraction(f);
    }
    parse::duration(s)
        .map(|d| Edge::Seconds(d.as_secs_f64()))
        .map_err(|_| {
            format!(
                "{s:?}: write a duration (30s, 500ms, 2m) or a fraction of the run (10% or 0.1)"
            )
        })
}
