//! `benchkeep run`: flags -> a validated [`RunPlan`] -> [`load::run`] -> summary.
//! Glue only; every rule about timing, durability and errors lives in `client` and `load`.

mod args;
mod auth;
mod repeat;
mod workload;

use anyhow::Result;

pub use args::{LoadArgs, OutputArgs, RunArgs, TargetArgs, Warmup, WorkloadArgs};
use auth::build_headers;
pub use auth::{EnvKeys, redacted_command};

use crate::cli::common::{parse_config, parse_labels};
use crate::cli::print_out;
use crate::client::{Api, BaseUrl, ClientOptions, Limits, Scrubber};
use crate::derive::{self, Settings};
use crate::error::{Error, exit};
use crate::load::schedule::{Arrival, Rate};
use crate::load::{self, GpuPlan, LoadSpec, RunOutcome, RunPlan};
use crate::metrics::steady::Edge;
use crate::schema::Status;
use crate::store::Store;
use crate::telemetry::{GpuMode, VisibleDevices};

/// Synthetic runs send this many requests unless told otherwise.
const DEFAULT_SYNTHETIC_REQUESTS: u64 = 100;

/// Validate the flags into a plan (nothing is sent or written).
pub fn plan(args: &RunArgs, argv: &[String]) -> Result<RunPlan, Error> {
    plan_with(args, argv, &EnvKeys::read(&args.target))
}

/// [`plan`] with the API keys already read (once per process).
pub fn plan_with(args: &RunArgs, argv: &[String], keys: &EnvKeys) -> Result<RunPlan, Error> {
    let base = BaseUrl::parse(&args.target.base_url).map_err(Error::Usage)?;
    if args.target.platform.trim().is_empty() {
        return Err(Error::usage(
            "--platform must not be empty, e.g. --platform vllm",
        ));
    }
    if args.target.model.trim().is_empty() {
        return Err(Error::usage("--model must not be empty"));
    }
    if let Some(slo) = &args.output.slo {
        check_slo_measurable(slo, args.target.no_stream)?;
    }
    let visible = match &args.output.gpu_index {
        Some(list) => VisibleDevices::chosen(list).map_err(Error::Usage)?,
        None => crate::cli::common::visible_gpus(),
    };
    let api = args
        .target
        .api
        .unwrap_or_else(|| Api::default_for_platform(&args.target.platform));
    if let Some(c) = args.load.concurrency
        && c == 0
    {
        return Err(Error::usage("--concurrency 0: must be at least 1"));
    }
    if let Some(c) = args.load.concurrency
        && c > load::plan::MAX_CONCURRENCY
    {
        return Err(Error::usage(format!(
            "--concurrency {c}: at most {} requests can be in flight; use a smaller value",
            load::plan::MAX_CONCURRENCY
        )));
    }
    if args.workload.num_requests == Some(0) {
        return Err(Error::usage("--num-requests 0: must be at least 1"));
    }
    if args.workload.max_tokens == Some(0) {
        return Err(Error::usage("--max-tokens 0: must be at least 1"));
    }
    if let (Some(Edge::Fraction(w)), Some(Edge::Fraction(c))) =
        (args.load.warmup.window(), args.load.cooldown)
        && w + c >= 1.0
    {
        return Err(Error::usage(format!(
            "--warmup {} and --cooldown {} leave nothing of the run for the steady-state window; make them add up to less than 100%",
            Edge::Fraction(w).describe(),
            Edge::Fraction(c).describe()
        )));
    }
    let rate = match args.load.rate {
        None => {
            if args.load.arrival.is_some() || args.load.burstiness.is_some() {
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
            let arrival = args.load.arrival.unwrap_or(Arrival::Poisson);
            let burstiness = args.load.burstiness.unwrap_or(1.0);
            if !(burstiness.is_finite() && burstiness > 0.0) {
                return Err(Error::usage(format!(
                    "--burstiness {burstiness}: must be > 0 (1 = Poisson)"
                )));
            }
            if arrival == Arrival::Constant && args.load.burstiness.is_some() {
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
    let (input, input_file) = workload::input(&args.workload)?;
    let num_requests = match (args.workload.num_requests, args.load.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(input.requests().unwrap_or(DEFAULT_SYNTHETIC_REQUESTS)),
    };
    let concurrency = match (args.load.concurrency, rate) {
        (Some(c), _) => Some(c),
        (None, None) => Some(1),
        (None, Some(_)) => None,
    };
    let (headers, secrets) = build_headers(&args.target, keys, &base)?;
    let config = parse_config(args.output.config.as_deref())?;
    let labels = parse_labels(&args.output.labels)?;
    let load = LoadSpec {
        concurrency,
        rate,
        num_requests,
        duration: args.load.duration,
        warmup: args.load.warmup.requests(),
        seed: args.workload.seed,
    };
    let limits = Limits {
        max_line_bytes: args.target.max_line_bytes.max(1024),
        ..Limits::default()
    };
    Ok(RunPlan {
        platform: args.target.platform.clone(),
        model: args.target.model.clone(),
        client: ClientOptions {
            api,
            stream: !args.target.no_stream,
            timeout: args.target.timeout,
            idle_timeout: args.target.idle_timeout,
            headers,
            limits,
            save_text: args.output.save_text,
            pool_size: load::plan::pool_size(&load),
        },
        base,
        scrubber: Scrubber::new(secrets),
        input,
        input_file,
        max_tokens: args.workload.max_tokens,
        load,
        slo: args.output.slo.clone().unwrap_or_default(),
        labels,
        config,
        command: Some(redacted_command(argv)),
        quiet: args.output.quiet,
        grace: args.load.grace,
        gpu: Some(GpuPlan {
            mode: args
                .output
                .gpu
                .unwrap_or(if is_this_host(&args.target.base_url) {
                    GpuMode::Auto
                } else {
                    GpuMode::Off
                }),
            interval: args.output.gpu_interval,
            visible,
            server_port: local_port(&args.target.base_url),
        })
        .filter(|g| g.mode != GpuMode::Off),
        sweep: None,
        repeat: None,
        server: None,
        server_metrics: (!args.output.no_server_metrics)
            .then_some(args.output.server_metrics_interval),
        steady_warmup: args.load.warmup.window(),
        steady_cooldown: args.load.cooldown,
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

/// The port of a server on this host (its own GPUs are then looked for), `None` for
/// another host.
fn local_port(url: &str) -> Option<u16> {
    if !is_this_host(url) {
        return None;
    }
    url::Url::parse(url).ok()?.port_or_known_default()
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
    if args.repeat != 1 {
        return repeat::run(store, settings, plan, args.repeat);
    }
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
    if let Some(g) = &m.results.goodput
        && let Some(n) = g.undetermined_requests.filter(|n| *n > 0)
    {
        let lacking: Vec<String> = g
            .undetermined_by_metric
            .iter()
            .map(|(k, v)| format!("{v} without {}", k.to_uppercase()))
            .collect();
        eprintln!(
            "warning: goodput: {n} successful requests could not be judged against every SLO ({}; a 1-token answer has no TPOT): they are neither good nor bad, and the goodput percentage is over the other {} requests",
            lacking.join(", "),
            g.denominator_requests.unwrap_or(0)
        );
    }
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

/// Refuse SLOs this run cannot measure: a non-streamed answer arrives whole, so it has no
/// time to first token and no time per output token.
fn check_slo_measurable(slo: &crate::metrics::Slo, no_stream: bool) -> Result<(), Error> {
    if !no_stream {
        return Ok(());
    }
    let named: Vec<&str> = [("ttft", slo.ttft_ms), ("tpot", slo.tpot_ms)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|_| k))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--slo {}: --no-stream answers arrive whole, so TTFT and TPOT cannot be measured; drop --no-stream, or keep only an e2e objective (e.g. --slo e2e=2s)",
        named.join(",")
    )))
}

/// The error of a run whose final metadata could not be written (disk full...).
fn not_finalized(test_id: &str, raw: &std::path::Path, requests: u64) -> String {
    format!(
        "the run {test_id} could not be finalized: its metadata still says `running`. The raw log {} keeps the {requests} finished requests; once space is freed, `benchkeep recover {test_id}` finishes the run",
        raw.display()
    )
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
        assert_eq!(super::local_port("http://127.0.0.1:8000/v1"), Some(8000));
        assert_eq!(super::local_port("http://localhost"), Some(80));
        assert_eq!(super::local_port("http://10.0.0.5:8000"), None);
    }
}
