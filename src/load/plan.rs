//! What a run is: the target, the workload, the load and what to record, validated.
//!
//! A [`RunPlan`] is built once (by the CLI from flags, by `demo` from its options, by a
//! sweep for each of its points) and is cheap to clone: a request file's requests are
//! shared, not copied. [`RunPlan::new`] holds the library's defaults, so that a caller
//! names only what differs.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::http::HeaderMap;
use serde_json::{Map, Value};

use super::schedule::Rate;
use super::source::Input;
use crate::client::{Api, BaseUrl, ClientOptions, Limits, Scrubber};
use crate::metrics::Slo;
use crate::metrics::steady::{Edge, Shape, SteadySpec};
use crate::schema::{ServerInfo, SweepLink};
use crate::telemetry::{GpuMode, VisibleDevices};

/// Whole-request limit by default, from the send.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest silence within a response by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long requests in flight may finish after a stop signal, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How often the server's `/metrics` is sampled during a run, by default.
pub const DEFAULT_SERVER_METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// The largest `--concurrency` accepted: more requests in flight than this is a mistake
/// (no server takes them, and each costs a task, a socket and buffers).
pub const MAX_CONCURRENCY: u32 = 100_000;

/// Connections worth keeping for `load`: what can be in flight at once, never more than
/// the requests planned.
pub fn pool_size(load: &LoadSpec) -> usize {
    let c = load.concurrency.unwrap_or(256) as u64;
    let c = load.num_requests.map_or(c, |n| c.min(n.max(1)));
    c.max(1) as usize
}

/// How the load is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Closed loop with this many requests in flight; with `rate`, a cap on in-flight.
    pub concurrency: Option<u32>,
    /// Open loop at this rate.
    pub rate: Option<Rate>,
    /// Measured requests to send (`None`: until `duration` ends).
    pub num_requests: Option<u64>,
    /// Stop scheduling after this long (requests in flight still finish).
    pub duration: Option<Duration>,
    /// Requests sent first and not recorded.
    pub warmup: u64,
    /// Seed of the arrival process (and of synthetic prompts).
    pub seed: u64,
}

/// GPU telemetry while the measured load runs (the sampler `record` uses too).
#[derive(Debug, Clone)]
pub struct GpuPlan {
    pub mode: GpuMode,
    /// The GPUs `CUDA_VISIBLE_DEVICES` leaves visible (read by the CLI).
    pub visible: VisibleDevices,
    pub interval: Duration,
    /// The port of a server on this host: its own GPUs are looked for from its processes
    /// (`telemetry::server_gpus`) unless `visible` was named with `--gpu-index`.
    pub server_port: Option<u16>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub platform: String,
    pub model: String,
    pub base: BaseUrl,
    pub client: ClientOptions,
    pub scrubber: Scrubber,
    pub input: Input,
    /// The input file as the user named it (`None` for synthetic workloads).
    pub input_file: Option<String>,
    /// `--max-tokens`: replaces every request's limit.
    pub max_tokens: Option<u64>,
    pub load: LoadSpec,
    pub slo: Slo,
    pub labels: BTreeMap<String, String>,
    pub config: Map<String, Value>,
    /// The command line, already redacted.
    pub command: Option<String>,
    pub quiet: bool,
    /// How long in-flight requests may finish after a stop signal.
    pub grace: Duration,
    pub gpu: Option<GpuPlan>,
    /// The sweep this run is a point of (written to the metadata's `sweep`).
    pub sweep: Option<SweepLink>,
    /// The `run --repeat N` group this run is one repeat of.
    pub repeat: Option<crate::schema::RepeatLink>,
    /// What the server said about itself, when a sweep already probed it: the run then
    /// skips its own probe (one probe per sweep). `None`: the run probes.
    pub server: Option<ServerInfo>,
    /// Scrape the server's `/metrics` before, during (this often) and after the load
    /// (docs/server-view.md); `None`: not at all.
    pub server_metrics: Option<Duration>,
    /// `--warmup` as a duration or fraction: where the steady-state window starts (see
    /// `docs/steady-state.md`). `None`: found from the in-flight count.
    pub steady_warmup: Option<Edge>,
    /// `--cooldown`: how much of the run's end the steady-state window leaves out.
    pub steady_cooldown: Option<Edge>,
}

impl Default for LoadSpec {
    /// One request at a time, for as many requests as the input has.
    fn default() -> Self {
        LoadSpec {
            concurrency: Some(1),
            rate: None,
            num_requests: None,
            duration: None,
            warmup: 0,
            seed: 0,
        }
    }
}

impl RunPlan {
    /// A plan with the library's defaults: the API's default streaming, [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_IDLE_TIMEOUT`], no extra headers, default limits, [`LoadSpec::default`], no
    /// SLO, labels or config, [`DEFAULT_GRACE`], no GPU telemetry, progress shown.
    pub fn new(
        platform: impl Into<String>,
        model: impl Into<String>,
        base: BaseUrl,
        api: Api,
        input: Input,
    ) -> RunPlan {
        RunPlan {
            platform: platform.into(),
            model: model.into(),
            base,
            client: ClientOptions {
                api,
                stream: true,
                timeout: DEFAULT_TIMEOUT,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                headers: HeaderMap::new(),
                limits: Limits::default(),
                save_text: false,
                pool_size: 1,
            },
            scrubber: Scrubber::default(),
            input,
            input_file: None,
            max_tokens: None,
            load: LoadSpec::default(),
            slo: Slo::default(),
            labels: BTreeMap::new(),
            config: Map::<String, Value>::new(),
            command: None,
            quiet: false,
            grace: DEFAULT_GRACE,
            gpu: None,
            sweep: None,
            repeat: None,
            server: None,
            server_metrics: Some(DEFAULT_SERVER_METRICS_INTERVAL),
            steady_warmup: None,
            steady_cooldown: None,
        }
    }

    /// How the run's steady-state window is found: the load's shape (a closed loop at
    /// `concurrency`, or an open loop with `--rate`) and the `--warmup`/`--cooldown` edges.
    pub fn steady_spec(&self) -> SteadySpec {
        let shape = match self.load.rate {
            Some(_) => Shape::Open,
            None => Shape::Closed(self.load.concurrency.unwrap_or(1)),
        };
        SteadySpec::new(shape).with_trim(self.steady_warmup, self.steady_cooldown)
    }

    /// The same plan under another load (a sweep's point): the connection pool follows the
    /// concurrency.
    pub fn with_load(mut self, load: LoadSpec) -> RunPlan {
        self.client.pool_size = pool_size(&load);
        self.load = load;
        self
    }

    /// GPU telemetry with `mode` (`Off` turns it off), sampling every `interval`.
    pub fn with_gpu(mut self, mode: GpuMode, visible: VisibleDevices, interval: Duration) -> Self {
        self.gpu = (mode != GpuMode::Off).then_some(GpuPlan {
            mode,
            visible,
            interval,
            server_port: None,
        });
        self
    }
}
