//! The run driver: probe the server, reserve the run in the store, send the load, and
//! finish the run honestly whatever happens (RELIABILITY P1, P4).
//!
//! Order of events:
//! 1. probe the server (unreachable: `Error::Server`, nothing written);
//! 2. make sure the store is writable; publish the metadata with status `running` and the
//!    pid; create `raw/<test_id>.jsonl` — all before the first request;
//! 3. warm-up requests (not recorded), then the measured load; every finished request goes
//!    to the raw log writer;
//! 4. on SIGINT/SIGTERM: stop scheduling, give in-flight requests `grace` to finish (a second
//!    signal cuts it short); those still in flight then are dropped and recorded as failed
//!    with kind `aborted`, so every request sent has its record; finish as `interrupted`;
//! 5. write the final metadata (`completed`, `partial`, `failed`, `interrupted`); the
//!    caller then refreshes the derived reports ([`crate::derive`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Map, Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::plan::{GpuPlan, LoadSpec, RunPlan};
use super::progress::Progress;
use super::schedule::{Arrivals, Rate};
use super::source::{Bodies, Input};
use super::writer::Writer;
use crate::client::{Client, probe};
use crate::metrics::Aggregator;
use crate::schema::{Metadata, RequestRecord, ServerInfo, SourceKind, Status, TestInfo};
use crate::store::{Store, ids, store_io};
use crate::telemetry::GpuSampler as TelemetrySampler;

/// The sampler for the measured phase, writing its series to `raw/<test_id>.gpu.jsonl`.
struct GpuRun {
    plan: GpuPlan,
    series: PathBuf,
    sampler: Option<TelemetrySampler>,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub metadata: Metadata,
    pub metadata_path: PathBuf,
    /// Stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// Writing the raw log or the final metadata failed (exit 4).
    pub store_error: Option<anyhow::Error>,
    /// The final metadata was written. When `false` the file on disk still says `running`
    /// (the raw log keeps every finished request; `recover` finishes the run).
    pub metadata_saved: bool,
    /// Warm-up requests that failed.
    pub warmup_failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Send nothing new; let requests in flight finish.
    Drain,
    /// Drop requests in flight.
    Abort,
}

struct Ctx {
    client: Client,
    bodies: Bodies,
    tx: mpsc::Sender<RequestRecord>,
    limit: Option<u64>,
}

/// Run a benchmark into `store`.
pub async fn run(store: &Store, plan: RunPlan) -> Result<RunOutcome> {
    let client = Client::new(&plan.base, plan.client.clone(), plan.scrubber.clone())?;
    let transport = client.transport().clone();
    let server = probe::probe(
        client.transport(),
        &plan.base,
        &plan.client.headers,
        plan.client.api,
        &plan.model,
    )
    .await?;
    // From here a signal finishes the run cleanly instead of killing the process.
    let mut signals = Signals::new()?;
    let bodies = plan.input.render(
        plan.client.api,
        &plan.model,
        plan.client.stream,
        plan.max_tokens,
    );

    store.ensure_layout()?;
    let mut meta = initial_metadata(&plan, server);
    let base_id = meta.test_id.clone();
    let metadata_path = store.publish_new(&base_id, &mut meta)?;
    let raw_path = store.resolve(&meta.test.output_file);
    let file = match std::fs::OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&raw_path)
    {
        Ok(f) => f,
        Err(e) => {
            let err = store_io(&raw_path, "create", e);
            meta.status = Status::Failed;
            meta.pid = None;
            let _ = store.replace(&meta);
            return Err(err);
        }
    };
    let _ = crate::store::atomic::sync_dir(&store.raw_dir());

    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let stop_tx = Arc::new(stop_tx);
    let aggregator = Aggregator::new().with_slo(plan.slo.clone());
    let writer = {
        let stop = stop_tx.clone();
        Writer::start(file, raw_path.clone(), aggregator, move || {
            let _ = stop.send(Stop::Abort);
        })
        .map_err(|e| anyhow::anyhow!("cannot start the raw log writer: {e}"))?
    };
    let progress = Progress::start(plan.load.num_requests, writer.counters.clone(), plan.quiet);

    let ctx = Arc::new(Ctx {
        client,
        bodies,
        tx: writer.tx.clone(),
        limit: plan.load.num_requests,
    });
    let series_rel = format!("raw/{}.gpu.jsonl", meta.test_id);
    let gpu = plan.gpu.map(|p| GpuRun {
        plan: p,
        series: store.resolve(&series_rel),
        sampler: None,
    });
    let mut task = tokio::spawn(load(ctx, plan.load.clone(), stop_rx, gpu));

    enum First {
        Finished(std::result::Result<LoadDone, tokio::task::JoinError>),
        Signal,
    }
    let first = tokio::select! {
        r = &mut task => First::Finished(r),
        _ = signals.recv() => First::Signal,
    };
    let (joined, interrupted) = match first {
        First::Finished(r) => (r, false),
        First::Signal => {
            progress.println(&format!(
                "Interrupted: no new requests; waiting up to {} for those in flight (signal again to stop now)",
                crate::client::fmt_duration(plan.grace)
            ));
            let _ = stop_tx.send(Stop::Drain);
            let drained = tokio::select! {
                r = &mut task => Some(r),
                _ = tokio::time::sleep(plan.grace) => None,
                _ = signals.recv() => None,
            };
            let r = match drained {
                Some(r) => r,
                None => {
                    let _ = stop_tx.send(Stop::Abort);
                    task.await
                }
            };
            (r, true)
        }
    };
    let done = joined.map_err(|e| anyhow::anyhow!("the load task failed: {e}"))?;
    progress.finish();
    let written = writer.finish().await;
    if let Some(server) = meta.server.as_mut()
        && (plan.client.api.is_ollama() || server.details.contains_key("family"))
    {
        let refresh = probe::refresh_ollama(
            &transport,
            &plan.base,
            &plan.client.headers,
            &plan.model,
            server,
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), refresh).await;
    }

    // Final metadata: what is in the raw log, nothing else.
    let mut store_error = written.error;
    let aggregator = written.aggregator;
    let (success, failure) = (aggregator.success_count(), aggregator.failure_count());
    let total_time = aggregator.span_s().unwrap_or(0.0);
    meta.results = aggregator.finish(total_time, 0);
    meta.test.num_requests = success + failure;
    meta.test.raw_sha256 = Some(written.sha256);
    meta.test.raw_bytes = Some(written.bytes);
    meta.test
        .extra
        .insert("warmup_failed".into(), json!(done.warmup_failed));
    if let Some(summary) = done.gpu.and_then(|g| g.sampler).and_then(|s| s.finish()) {
        let series = store
            .resolve(&series_rel)
            .is_file()
            .then_some(series_rel.as_str());
        summary.apply_to(&mut meta, series);
    }
    meta.status = if interrupted || store_error.is_some() {
        Status::Interrupted
    } else if success == 0 {
        Status::Failed
    } else if failure > 0 {
        Status::Partial
    } else {
        Status::Completed
    };
    meta.pid = None;
    let metadata_saved = match store.replace(&meta) {
        Ok(()) => true,
        Err(e) => {
            // The final metadata is the more urgent news: the run is not finished on disk.
            store_error = Some(match store_error.take() {
                Some(raw_error) => anyhow::anyhow!("{e:#}; before that, {raw_error:#}"),
                None => e,
            });
            false
        }
    };
    Ok(RunOutcome {
        metadata: meta,
        metadata_path,
        interrupted,
        store_error,
        metadata_saved,
        warmup_failed: done.warmup_failed,
    })
}

/// The test id's base: `{platform}-{model}-{num_requests}-{date}` with the planned number
/// of requests (0 for an open-ended `--duration` run).
pub fn base_test_id(platform: &str, model: &str, planned: Option<u64>) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    ids::base_test_id(platform, model, planned.unwrap_or(0), &date)
}

fn initial_metadata(plan: &RunPlan, server: ServerInfo) -> Metadata {
    let now = chrono::Utc::now();
    let l = &plan.load;
    let o = &plan.client;
    let mut load = Map::new();
    load.insert(
        "mode".into(),
        json!(if l.rate.is_some() {
            "rate"
        } else {
            "concurrency"
        }),
    );
    if let Some(c) = l.concurrency {
        load.insert("concurrency".into(), json!(c));
    }
    if let Some(r) = l.rate {
        load.insert("rate".into(), json!(r.per_sec));
        load.insert("arrival".into(), json!(r.arrival.name()));
        load.insert("burstiness".into(), json!(r.burstiness));
    }
    if let Some(d) = l.duration {
        load.insert("duration_s".into(), json!(d.as_secs_f64()));
    }
    load.insert("planned_requests".into(), json!(l.num_requests));
    load.insert("warmup".into(), json!(l.warmup));
    load.insert("seed".into(), json!(l.seed));
    load.insert("stream".into(), json!(o.stream));
    load.insert("max_tokens".into(), json!(plan.max_tokens));
    load.insert("timeout_s".into(), json!(o.timeout.as_secs_f64()));
    load.insert("idle_timeout_s".into(), json!(o.idle_timeout.as_secs_f64()));
    load.insert("save_text".into(), json!(o.save_text));
    let mut extra = Map::new();
    extra.insert("load".into(), Value::Object(load));
    if !plan.slo.is_empty() {
        extra.insert("slo_ms".into(), plan.slo.to_json());
    }
    if let Input::Synthetic(s) = &plan.input {
        extra.insert("synthetic".into(), super::source::describe(s));
    }
    let mut meta = Metadata::new(
        SourceKind::Run,
        "benchkeep",
        plan.platform.clone(),
        plan.model.clone(),
        now,
    );
    meta.test_id = base_test_id(&plan.platform, &plan.model, l.num_requests);
    meta.config = plan.config.clone();
    meta.test = TestInfo {
        num_requests: l.num_requests.unwrap_or(0),
        input_file: plan.input_file.clone(),
        output_file: String::new(),
        input_sha256: Some(plan.input.sha256(l.num_requests, plan.max_tokens)),
        raw_sha256: None,
        raw_bytes: None,
        extra,
    };
    meta.labels = plan.labels.clone();
    meta.source.command = plan.command.clone();
    meta.server = Some(server);
    meta.pid = Some(std::process::id());
    meta
}

struct LoadDone {
    warmup_failed: u64,
    gpu: Option<GpuRun>,
}

/// Warm-up, then the measured load; returns when every request has finished or the run
/// was stopped.
async fn load(
    ctx: Arc<Ctx>,
    spec: LoadSpec,
    stop: watch::Receiver<Stop>,
    mut gpu: Option<GpuRun>,
) -> LoadDone {
    let warmup_failed = if spec.warmup > 0 {
        warmup(&ctx, &spec, stop.clone()).await
    } else {
        0
    };
    if stopping(&stop) {
        return LoadDone { warmup_failed, gpu };
    }
    if let Some(g) = gpu.as_mut() {
        g.sampler = Some(TelemetrySampler::start(
            g.plan.mode,
            g.plan.visible.clone(),
            g.plan.interval,
            Some(g.series.clone()),
        ));
    }
    let clock = Instant::now();
    let end = spec.duration.map(|d| clock + d);
    match spec.rate {
        None => closed_loop(&ctx, spec.concurrency.unwrap_or(1), clock, end, stop).await,
        Some(rate) => open_loop(&ctx, &spec, rate, clock, end, stop).await,
    }
    LoadDone { warmup_failed, gpu }
}

/// Whether the run is no longer sending new requests.
fn stopping(stop: &watch::Receiver<Stop>) -> bool {
    *stop.borrow() != Stop::Run
}

/// How long request tasks get, once the run is aborted, to hand over the records of the
/// requests they stop; then they are dropped.
const ABORT_WAIT: Duration = Duration::from_secs(5);

/// Wait for every task of `set`. When the run is aborted, the requests in flight stop
/// themselves (see [`aborted`]) and record it; a task that does not end within
/// [`ABORT_WAIT`] is dropped.
async fn join_all(set: &mut JoinSet<()>, stop: &mut watch::Receiver<Stop>) {
    loop {
        let aborted = tokio::select! {
            r = set.join_next() => if r.is_none() { return } else { false },
            _ = wait_until(stop, |s| *s == Stop::Abort) => true,
        };
        if aborted {
            let give_up = tokio::time::Instant::now() + ABORT_WAIT;
            while let Ok(Some(_)) = tokio::time::timeout_at(give_up, set.join_next()).await {}
            set.abort_all();
            while set.join_next().await.is_some() {}
            return;
        }
    }
}

/// Completes when the run is aborted (`--grace` expired, a second signal, a store error):
/// a request still in flight then ends as a failed record of kind `aborted`.
async fn aborted(mut stop: watch::Receiver<Stop>) {
    wait_until(&mut stop, |s| *s == Stop::Abort).await
}

/// Wait until the stop state satisfies `pred` (forever if the run's sender is gone).
async fn wait_until(stop: &mut watch::Receiver<Stop>, pred: impl FnMut(&Stop) -> bool) {
    if stop.wait_for(pred).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn warmup(ctx: &Arc<Ctx>, spec: &LoadSpec, mut stop: watch::Receiver<Stop>) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let workers = spec
        .concurrency
        .map_or(spec.warmup, |c| spec.warmup.min(c as u64));
    let mut set = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (ctx, next, failed, stop) = (ctx.clone(), next.clone(), failed.clone(), stop.clone());
        let n = spec.warmup;
        set.spawn(async move {
            loop {
                if stopping(&stop) {
                    return;
                }
                let i = next.fetch_add(1, Relaxed);
                if i >= n {
                    return;
                }
                let now = Instant::now();
                let abort = aborted(stop.clone());
                let r = ctx
                    .client
                    .generate_until(ctx.bodies.warmup(i), now, now, abort)
                    .await;
                // A warm-up request stopped by the run's abort did not fail.
                if !r.ok && *stop.borrow() != Stop::Abort {
                    failed.fetch_add(1, Relaxed);
                }
            }
        });
    }
    join_all(&mut set, &mut stop).await;
    failed.load(Relaxed)
}

async fn closed_loop(
    ctx: &Arc<Ctx>,
    concurrency: u32,
    clock: Instant,
    end: Option<Instant>,
    mut stop: watch::Receiver<Stop>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (ctx, next, stop) = (ctx.clone(), next.clone(), stop.clone());
        set.spawn(async move {
            loop {
                if stopping(&stop) {
                    return;
                }
                let i = next.fetch_add(1, Relaxed);
                if ctx.limit.is_some_and(|n| i >= n) {
                    return;
                }
                let scheduled = Instant::now();
                if end.is_some_and(|e| scheduled >= e) {
                    return;
                }
                let (id, body) = ctx.bodies.get(i);
                let abort = aborted(stop.clone());
                let mut rec = ctx
                    .client
                    .generate_until(body, scheduled, clock, abort)
                    .await;
                rec.id = Some(id);
                if ctx.tx.send(rec).await.is_err() {
                    return;
                }
            }
        });
    }
    join_all(&mut set, &mut stop).await;
}

async fn open_loop(
    ctx: &Arc<Ctx>,
    spec: &LoadSpec,
    rate: Rate,
    clock: Instant,
    end: Option<Instant>,
    mut stop: watch::Receiver<Stop>,
) {
    let cap = spec
        .concurrency
        .map(|c| Arc::new(Semaphore::new(c as usize)));
    let mut set = JoinSet::new();
    for (i, at) in Arrivals::new(rate, spec.seed).enumerate() {
        let i = i as u64;
        if ctx.limit.is_some_and(|n| i >= n) {
            break;
        }
        let due = clock + Duration::from_secs_f64(at);
        if end.is_some_and(|e| due >= e) {
            break;
        }
        if due > Instant::now() {
            tokio::select! {
                biased;
                _ = wait_until(&mut stop, |s| *s != Stop::Run) => break,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
        } else if stopping(&stop) {
            break;
        }
        let permit = match &cap {
            None => None,
            Some(sem) => tokio::select! {
                biased;
                _ = wait_until(&mut stop, |s| *s != Stop::Run) => break,
                p = sem.clone().acquire_owned() => p.ok(),
            },
        };
        while set.try_join_next().is_some() {}
        let ctx = ctx.clone();
        let abort = aborted(stop.clone());
        set.spawn(async move {
            let (id, body) = ctx.bodies.get(i);
            let mut rec = ctx.client.generate_until(body, due, clock, abort).await;
            drop(permit);
            rec.id = Some(id);
            let _ = ctx.tx.send(rec).await;
        });
    }
    join_all(&mut set, &mut stop).await;
}

/// SIGINT and SIGTERM, as one stream.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())
                .map_err(|e| anyhow::anyhow!("cannot handle SIGINT: {e}"))?,
            term: signal(SignalKind::terminate())
                .map_err(|e| anyhow::anyhow!("cannot handle SIGTERM: {e}"))?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
    }
}
