//! `benchkeep run`: flags -> a validated [`RunPlan`] -> [`load::run`] -> summary.
//! Glue only; every rule about timing, durability and errors lives in `client` and `load`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hyper::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::cli::common::{parse_config, parse_labels};
use crate::cli::print_out;
use crate::client::{Api, BaseUrl, ClientOptions, Limits, Scrubber};
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::load::schedule::{Arrival, Rate};
use crate::load::source::{Input, Synthetic};
use crate::load::{self, GpuPlan, LoadSpec, RunOutcome, RunPlan};
use crate::metrics::Slo;
use crate::schema::Status;
use crate::store::Store;
use crate::telemetry::{self, GpuMode};

/// Synthetic runs send this many requests unless told otherwise.
const DEFAULT_SYNTHETIC_REQUESTS: u64 = 100;

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
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
    #[arg(long, value_name = "API", value_parser = parse_api)]
    pub api: Option<Api>,

    /// Requests file: OpenAI Batch input lines ({"body": {"messages": ..., "max_tokens": N}},
    /// like the seed's batch_5k.jsonl) or plain lines with "messages" or "prompt".
    #[arg(long, value_name = "FILE", conflicts_with = "synthetic")]
    pub input: Option<PathBuf>,
    /// Generate prompts instead: --input-tokens words each, asking for exactly
    /// --output-tokens tokens (ignore_eos + min_tokens on vLLM, num_predict on Ollama).
    #[arg(long)]
    pub synthetic: bool,
    /// Prompt length of synthetic requests, in tokens (words).
    #[arg(long, value_name = "N")]
    pub input_tokens: Option<u32>,
    /// Output length of synthetic requests, in tokens.
    #[arg(long, value_name = "M")]
    pub output_tokens: Option<u32>,
    /// Measured requests to send (default: the input file's lines, 100 for --synthetic,
    /// unlimited with --duration). A file's lines repeat if it has fewer.
    #[arg(long, value_name = "K")]
    pub num_requests: Option<u64>,
    /// Seed of synthetic prompts and of the arrival process.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Requests in flight at once (closed loop); with --rate, a cap on in-flight requests.
    /// Default 1 without --rate.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Open loop: requests per second, sent on schedule whatever the server does.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Arrival process for --rate: poisson (gamma gaps, see --burstiness) or constant.
    #[arg(long, value_name = "KIND", value_parser = ["poisson", "constant"])]
    pub arrival: Option<String>,
    /// Gamma shape of the gaps with --rate: 1 = Poisson, < 1 burstier, > 1 more regular.
    #[arg(long, value_name = "F")]
    pub burstiness: Option<f64>,
    /// Stop sending after this long (30s, 5m, 1h); requests in flight finish.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Requests sent first and not counted (they warm caches and load the model).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,

    /// Output token limit for every request (replaces the input file's max_tokens).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Limit for a whole request, from its send.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Longest silence (no bytes) tolerated within a response.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Ask for whole responses instead of streams (no TTFT or ITL then).
    #[arg(long)]
    pub no_stream: bool,

    /// Server or engine settings to record: a JSON object, or @file.json.
    #[arg(long)]
    pub config: Option<String>,
    /// A key=value label to filter and group by later (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Service-level objectives for goodput: ttft=200ms,tpot=50ms,e2e=10s (a bare
    /// number is milliseconds).
    #[arg(long, value_name = "SLOS", value_parser = parse_slo)]
    pub slo: Option<Slo>,
    /// Environment variable holding the API key, sent as a Bearer token
    /// (default: OPENAI_API_KEY when it is set). Never stored.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Extra request header 'Name: value' (repeatable). Values are never stored.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Keep each response's text in the raw log (up to 64 KiB per request).
    #[arg(long)]
    pub save_text: bool,
    /// GPU telemetry while the load runs: auto (NVML, else nvidia-smi, else rocm-smi), off,
    /// nvml, nvidia-smi, rocm-smi. Default: auto when the server is on this host, else off.
    #[arg(long, value_name = "SOURCE", value_parser = telemetry::parse_gpu_mode)]
    pub gpu: Option<GpuMode>,
    /// GPU sampling interval: 500ms, 1s, 2.5s (at least 50ms).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = telemetry::parse_interval)]
    pub gpu_interval: Duration,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// After Ctrl-C or SIGTERM, wait this long for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Longest response line (or SSE event) accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, hide = true)]
    pub max_line_bytes: usize,
}

fn parse_api(s: &str) -> Result<Api, String> {
    Api::from_name(s).ok_or_else(|| {
        format!(
            "unknown API {s:?}; one of: {}",
            Api::ALL.map(|a| a.name()).join(", ")
        )
    })
}

/// `30s`, `250ms`, `5m`, `1h`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs = parse_scaled(s, 1.0)
        .ok_or_else(|| format!("{s:?} is not a duration; write e.g. 250ms, 30s, 5m or 1h"))?;
    if !(secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A number with an optional unit, in seconds; a bare number is multiplied by `bare`.
fn parse_scaled(s: &str, bare: f64) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" => bare,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(v * scale).filter(|x| x.is_finite())
}

/// `ttft=200ms,tpot=50ms,e2e=10s`.
pub fn parse_slo(s: &str) -> Result<Slo, String> {
    let mut slo = Slo::default();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected name=limit, e.g. ttft=200ms"))?;
        let ms = parse_scaled(v, 1e-3)
            .filter(|x| *x > 0.0)
            .ok_or_else(|| format!("{v:?} is not a positive time; write e.g. 200ms or 10s"))?
            * 1000.0;
        match k.trim() {
            "ttft" => slo.ttft_ms = Some(ms),
            "tpot" => slo.tpot_ms = Some(ms),
            "e2e" => slo.e2e_ms = Some(ms),
            other => return Err(format!("unknown SLO {other:?}; use ttft, tpot or e2e")),
        }
    }
    if slo.is_empty() {
        return Err("no SLO given; write e.g. ttft=200ms,tpot=50ms,e2e=10s".into());
    }
    Ok(slo)
}

/// The command line with every `--header` value hidden (before the generic redaction).
pub fn redacted_command(argv: &[String]) -> String {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for a in argv {
        if hide_next {
            out.push(hide_header_value(a));
            hide_next = false;
        } else if a == "--header" {
            out.push(a.clone());
            hide_next = true;
        } else if let Some(v) = a.strip_prefix("--header=") {
            out.push(format!("--header={}", hide_header_value(v)));
        } else {
            out.push(a.clone());
        }
    }
    crate::redact::command_line(&out)
}

fn hide_header_value(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: {}", name.trim(), crate::redact::REDACTED),
        None => crate::redact::REDACTED.to_string(),
    }
}

/// Headers and the secrets to scrub from messages.
fn build_headers(args: &RunArgs, base: &BaseUrl) -> Result<(HeaderMap, Vec<String>), Error> {
    let mut headers = HeaderMap::new();
    let mut secrets = base.secrets();
    for h in &args.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| {
            Error::usage(
                "--header: expected 'Name: value', e.g. --header 'X-Request-Source: bench'",
            )
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::usage(format!(
                "--header {:?}: not a valid header name",
                name.trim()
            ))
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            Error::usage(format!(
                "--header {name}: the value is not a valid header value (value not shown)"
            ))
        })?;
        value.set_sensitive(true);
        secrets.push(value.to_str().unwrap_or_default().to_string());
        headers.append(name, value);
    }
    let explicit_key = match &args.api_key_env {
        Some(var) => match std::env::var(var) {
            Ok(k) if !k.is_empty() => Some(k),
            _ => {
                return Err(Error::usage(format!(
                    "--api-key-env {var}: ${var} is not set; export it or drop the flag"
                )));
            }
        },
        None => None,
    };
    let implicit_key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    for k in explicit_key.iter().chain(implicit_key.iter()) {
        secrets.push(k.clone());
    }
    let bearer = |k: &str| {
        HeaderValue::from_str(&format!("Bearer {k}"))
            .map_err(|_| Error::usage("the API key contains characters not allowed in a header"))
    };
    if let Some(w) = auth_warning(
        headers.contains_key(header::AUTHORIZATION),
        explicit_key.as_ref().and(args.api_key_env.as_deref()),
        base.has_credentials(),
        implicit_key.is_some(),
    ) {
        eprintln!("{w}");
    }
    let auth = if headers.contains_key(header::AUTHORIZATION) {
        None
    } else if let Some(k) = &explicit_key {
        Some(bearer(k)?)
    } else if let Some(basic) = base.basic_auth() {
        Some(HeaderValue::from_str(&basic).map_err(|_| {
            Error::usage("--base-url: the user:password part is not usable as a header")
        })?)
    } else if let Some(k) = &implicit_key {
        Some(bearer(k)?)
    } else {
        None
    };
    if let Some(mut v) = auth {
        v.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, v);
    }
    Ok((headers, secrets))
}

/// One line saying which credentials are sent when several are given (only one
/// `Authorization` header can be), and which are not; never the values. The order: a
/// `--header Authorization`, then `--api-key-env VAR`, then the URL's `user:password`,
/// then `$OPENAI_API_KEY`.
fn auth_warning(
    header: bool,
    explicit_var: Option<&str>,
    url: bool,
    implicit: bool,
) -> Option<String> {
    let mut given: Vec<String> = Vec::new();
    if header {
        given.push("the --header Authorization value".into());
    }
    if let Some(var) = explicit_var {
        given.push(format!("the API key from ${var} (Bearer)"));
    }
    if url {
        given.push("the --base-url user:password (Basic)".into());
    }
    if implicit && explicit_var.is_none() {
        given.push("the API key from $OPENAI_API_KEY (Bearer)".into());
    }
    if given.len() < 2 {
        return None;
    }
    let sent = given.remove(0);
    Some(format!(
        "warning: several credentials given; sending {sent}, not {}",
        given.join(" nor ")
    ))
}

/// Validate the flags into a plan (nothing is sent or written).
pub fn plan(args: &RunArgs, argv: &[String]) -> Result<RunPlan, Error> {
    let base = BaseUrl::parse(&args.base_url).map_err(Error::Usage)?;
    if args.platform.trim().is_empty() {
        return Err(Error::usage(
            "--platform must not be empty, e.g. --platform vllm",
        ));
    }
    if args.model.trim().is_empty() {
        return Err(Error::usage("--model must not be empty"));
    }
    let api = args
        .api
        .unwrap_or_else(|| Api::default_for_platform(&args.platform));
    if let Some(c) = args.concurrency
        && c == 0
    {
        return Err(Error::usage("--concurrency 0: must be at least 1"));
    }
    if args.num_requests == Some(0) {
        return Err(Error::usage("--num-requests 0: must be at least 1"));
    }
    if args.max_tokens == Some(0) {
        return Err(Error::usage("--max-tokens 0: must be at least 1"));
    }
    let rate = match args.rate {
        None => {
            if args.arrival.is_some() || args.burstiness.is_some() {
                return Err(Error::usage(
                    "--arrival and --burstiness shape an open-loop rate: add --rate R",
                ));
            }
            None
        }
        Some(r) if !(r.is_finite() && r > 0.0) => {
            return Err(Error::usage(format!(
                "--rate {r}: must be > 0 requests per second"
            )));
        }
        Some(r) => {
            let arrival = match args.arrival.as_deref() {
                Some("constant") => Arrival::Constant,
                _ => Arrival::Poisson,
            };
            let burstiness = args.burstiness.unwrap_or(1.0);
            if !(burstiness.is_finite() && burstiness > 0.0) {
                return Err(Error::usage(format!(
                    "--burstiness {burstiness}: must be > 0 (1 = Poisson)"
                )));
            }
            if arrival == Arrival::Constant && args.burstiness.is_some() {
                return Err(Error::usage(
                    "--burstiness applies to --arrival poisson only; constant arrivals have no spread",
                ));
            }
            Some(Rate {
                per_sec: r,
                arrival,
                burstiness,
            })
        }
    };
    let (input, input_file) = match (&args.input, args.synthetic) {
        (Some(path), false) => {
            if args.input_tokens.is_some() || args.output_tokens.is_some() {
                return Err(Error::usage(
                    "--input-tokens and --output-tokens are for --synthetic; with --input use --max-tokens",
                ));
            }
            (Input::from_file(path)?, Some(path.display().to_string()))
        }
        (None, true) => {
            let (Some(i), Some(o)) = (args.input_tokens, args.output_tokens) else {
                return Err(Error::usage(
                    "--synthetic needs --input-tokens N and --output-tokens M, e.g. --synthetic --input-tokens 128 --output-tokens 256",
                ));
            };
            if i == 0 || o == 0 {
                return Err(Error::usage(
                    "--input-tokens and --output-tokens must be at least 1",
                ));
            }
            (
                Input::Synthetic(Synthetic {
                    input_tokens: i,
                    output_tokens: o,
                    seed: args.seed,
                }),
                None,
            )
        }
        _ => {
            return Err(Error::usage(
                "give the requests: --input FILE (JSONL), or --synthetic --input-tokens N --output-tokens M",
            ));
        }
    };
    let num_requests = match (args.num_requests, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(input.requests().unwrap_or(DEFAULT_SYNTHETIC_REQUESTS)),
    };
    let concurrency = match (args.concurrency, rate) {
        (Some(c), _) => Some(c),
        (None, None) => Some(1),
        (None, Some(_)) => None,
    };
    let (headers, secrets) = build_headers(args, &base)?;
    let config = parse_config(args.config.as_deref())?;
    let labels = parse_labels(&args.labels)?;
    let limits = Limits {
        max_line_bytes: args.max_line_bytes.max(1024),
        ..Limits::default()
    };
    Ok(RunPlan {
        platform: args.platform.clone(),
        model: args.model.clone(),
        client: ClientOptions {
            api,
            stream: !args.no_stream,
            timeout: args.timeout,
            idle_timeout: args.idle_timeout,
            headers,
            limits,
            save_text: args.save_text,
            pool_size: concurrency.unwrap_or(256) as usize,
        },
        base,
        scrubber: Scrubber::new(secrets),
        input,
        input_file,
        max_tokens: args.max_tokens,
        load: LoadSpec {
            concurrency,
            rate,
            num_requests,
            duration: args.duration,
            warmup: args.warmup,
            seed: args.seed,
        },
        slo: args.slo.clone().unwrap_or_default(),
        labels,
        config,
        command: Some(redacted_command(argv)),
        quiet: args.quiet,
        grace: args.grace,
        gpu: Some(GpuPlan {
            mode: args.gpu.unwrap_or(if is_this_host(&args.base_url) {
                GpuMode::Auto
            } else {
                GpuMode::Off
            }),
            interval: args.gpu_interval,
            visible: crate::cli::common::visible_gpus(),
        })
        .filter(|g| g.mode != GpuMode::Off),
    })
}

/// Whether a base URL names this machine (loopback, `localhost`, or its host name): only
/// then are this machine's GPUs the server's.
fn is_this_host(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "::1"
        || host == "0.0.0.0"
        || host.starts_with("127.")
        || host
            == gethostname::gethostname()
                .to_string_lossy()
                .to_ascii_lowercase()
}

#[cfg(test)]
mod gpu_tests {
    use super::is_this_host;

    #[test]
    fn local_servers_get_gpu_telemetry_by_default() {
        assert!(is_this_host("http://127.0.0.1:8000/v1"));
        assert!(is_this_host("http://localhost:11434"));
        assert!(is_this_host("http://user:pw@[::1]:8000"));
        assert!(!is_this_host("https://api.openai.com/v1"));
        assert!(!is_this_host("http://10.0.0.5:8000"));
    }
}

/// A tokio runtime for the load: one worker per core this process may use (its CPU
/// affinity and cgroup quota count: under `taskset -c 0` one worker avoids switching
/// between two on one core).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

pub fn run(store: &Store, settings: &Settings, args: RunArgs) -> Result<i32> {
    let argv: Vec<String> = std::env::args().collect();
    let plan = plan(&args, &argv)?;
    let outcome = runtime()?.block_on(load::run(store, plan))?;
    let derived = if outcome.store_error.is_none() {
        derive::refresh(store, settings).err()
    } else {
        None
    };
    report(store, &outcome, derived)
}

/// Print the summary and map the outcome (and the derived files' refresh) to the exit code.
pub fn report(
    store: &Store,
    outcome: &RunOutcome,
    derived_error: Option<anyhow::Error>,
) -> Result<i32> {
    let m = &outcome.metadata;
    let raw = store.resolve(&m.test.output_file);
    if !outcome.metadata_saved {
        // The metadata on disk still says `running`: no "Saved metadata", no status.
        let e = outcome.store_error.as_ref().map_or_else(
            || "the metadata was not written".to_string(),
            |e| format!("{e:#}"),
        );
        return Err(anyhow::anyhow!("{e}").context(Error::StoreIo(not_finalized(
            &m.test_id,
            &raw,
            m.test.num_requests,
        ))));
    }
    print_out(&crate::report::detail::run_summary(
        m,
        &outcome.metadata_path,
        &raw,
    ))?;
    if outcome.warmup_failed > 0 {
        eprintln!(
            "warning: {} of the warm-up requests failed",
            outcome.warmup_failed
        );
    }
    if let Some(e) = &outcome.store_error {
        return Err(anyhow::anyhow!("{e:#}").context(Error::StoreIo(format!(
            "the run stopped because the store could not be written; every request in {} is kept (finish it with `benchkeep recover {}` once there is space)",
            raw.display(),
            m.test_id
        ))));
    }
    if let Some(e) = &derived_error {
        eprintln!("warning: the run is saved, but regenerating the reports failed: {e:#}");
        return Ok(exit::STORE_IO);
    }
    if outcome.interrupted {
        eprintln!(
            "Interrupted: {} requests kept (any still in flight at the end are recorded as `aborted`); the run is saved with status `interrupted`",
            m.test.num_requests
        );
        return Ok(exit::INTERRUPTED);
    }
    if m.status == Status::Failed {
        let top = m
            .results
            .errors_by_kind
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| k.as_str())
            .unwrap_or("none");
        eprintln!(
            "error: every request failed (most often: {top}); the run is saved with status `failed`. Inspect the errors with `benchkeep show {}` or in {}",
            m.test_id,
            raw.display()
        );
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// The error of a run whose final metadata could not be written (disk full...).
fn not_finalized(test_id: &str, raw: &std::path::Path, requests: u64) -> String {
    format!(
        "the run {test_id} could not be finalized: its metadata still says `running`. The raw log {} keeps the {requests} finished requests; once space is freed, `benchkeep recover {test_id}` finishes the run",
        raw.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_slos() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        let s = parse_slo("ttft=200ms,tpot=50,e2e=10s").unwrap();
        assert_eq!(s.ttft_ms, Some(200.0));
        assert_eq!(s.tpot_ms, Some(50.0));
        assert_eq!(s.e2e_ms, Some(10_000.0));
        assert!(parse_slo("ttfb=1s").unwrap_err().contains("unknown SLO"));
        assert!(parse_slo("ttft").is_err());
    }

    #[test]
    fn auth_warning_names_what_is_sent() {
        assert_eq!(auth_warning(false, None, true, false), None);
        assert_eq!(auth_warning(false, None, false, true), None);
        let w = auth_warning(false, None, true, true).unwrap();
        assert_eq!(
            w,
            "warning: several credentials given; sending the --base-url user:password (Basic), not the API key from $OPENAI_API_KEY (Bearer)"
        );
        let w = auth_warning(false, Some("MY_KEY"), true, true).unwrap();
        assert!(
            w.contains("sending the API key from $MY_KEY (Bearer), not the --base-url"),
            "{w}"
        );
        assert!(!w.contains("OPENAI_API_KEY"), "{w}");
        let w = auth_warning(true, None, true, true).unwrap();
        assert!(
            w.contains("sending the --header Authorization value, not"),
            "{w}"
        );
    }

    #[test]
    fn header_values_never_reach_the_command_line() {
        let argv: Vec<String> = [
            "benchkeep",
            "run",
            "--header",
            "X-Key: CANARY1",
            "--header=X-Other: CANARY2",
            "--base-url",
            "http://u:CANARY3@h:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = redacted_command(&argv);
        assert!(!c.contains("CANARY"), "{c}");
        assert!(c.contains("X-Key: ***"), "{c}");
    }
}
