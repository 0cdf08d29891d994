//! The load loops of a run: warm-up requests, then the measured load as a closed loop
//! (`--concurrency`) or an open loop on a schedule (`--rate`), and the stop protocol
//! (drain on the first signal, abort on the second) that lets every request sent hand over
//! its record. The run's lifecycle around them (probe, publish, finish) is in
//! [`super::driver`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::plan::{GpuPlan, LoadSpec};
use super::schedule::{Arrivals, Rate};
use super::scrape::Scraper;
use super::source::Bodies;
use super::stall::Stalls;
use crate::client::Client;
use crate::schema::RequestRecord;
use crate::telemetry::GpuSampler as TelemetrySampler;

/// The sampler for the measured phase, writing its series to `raw/<test_id>.gpu.jsonl`.
pub(super) struct GpuRun {
    pub(super) plan: GpuPlan,
    pub(super) series: PathBuf,
    pub(super) sampler: Option<TelemetrySampler>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Run,
    /// Send nothing new; let requests in flight finish.
    Drain,
    /// Drop requests in flight.
    Abort,
}

pub(super) struct Ctx {
    pub(super) client: Client,
    pub(super) bodies: Bodies,
    pub(super) tx: mpsc::Sender<RequestRecord>,
    pub(super) limit: Option<u64>,
    /// Times the client itself was stalled (see [`super::stall`]).
    pub(super) stalls: Stalls,
}

impl Ctx {
    /// Mark a finished record with the client stall time while it was in flight (from its
    /// due time until now).
    fn mark_stall(&self, rec: &mut RequestRecord, due: Instant) {
        let now = Instant::now();
        rec.client_stall_ms = self.stalls.within(due, now, now);
    }
}

pub(super) struct LoadDone {
    pub(super) warmup_failed: u64,
    pub(super) gpu: Option<GpuRun>,
    /// Time 0 of the measured phase (the records' `*_s` times count from it).
    pub(super) clock: Option<Instant>,
    /// The server's `/metrics` scraper, handed back for its last scrape.
    pub(super) scraper: Option<Box<Scraper>>,
}

/// Warm-up, then the measured load; returns when every request has finished or the run
/// was stopped.
pub(super) async fn load(
    ctx: Arc<Ctx>,
    spec: LoadSpec,
    stop: watch::Receiver<Stop>,
    mut gpu: Option<GpuRun>,
    mut scraper: Option<Box<Scraper>>,
) -> LoadDone {
    let warmup_failed = if spec.warmup > 0 {
        warmup(&ctx, &spec, stop.clone()).await
    } else {
        0
    };
    if stopping(&stop) {
        return LoadDone {
            warmup_failed,
            gpu,
            clock: None,
            scraper,
        };
    }
    // The scrape before the load, ahead of the GPU sampler so that its first sample
    // stays at the start of the measured window.
    if let Some(s) = scraper.as_mut() {
        s.before().await;
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
    if let Some(s) = scraper.as_mut() {
        s.start_series(clock);
    }
    let end = spec.duration.map(|d| clock + d);
    let monitor = ctx.stalls.spawn_monitor();
    match spec.rate {
        None => closed_loop(&ctx, spec.concurrency.unwrap_or(1), clock, end, stop).await,
        Some(rate) => open_loop(&ctx, &spec, rate, clock, end, stop).await,
    }
    monitor.abort();
    // The GPU figures end with the load, not after the final scrape and the writing.
    if let Some(s) = gpu.as_mut().and_then(|g| g.sampler.as_mut()) {
        s.halt();
    }
    LoadDone {
        warmup_failed,
        gpu,
        clock: Some(clock),
        scraper,
    }
}

/// Whether the run is no longer sending new requests.
pub(super) fn stopping(stop: &watch::Receiver<Stop>) -> bool {
    *stop.borrow() != Stop::Run
}

/// How long request tasks get, once the run is aborted, to hand over the records of the
/// requests they stop; then they are dropped.
pub(super) const ABORT_WAIT: Duration = Duration::from_secs(5);

/// Wait for every task of `set`. When the run is aborted, the requests in flight stop
/// themselves (see [`aborted`]) and record it; a task that does not end within
/// [`ABORT_WAIT`] is dropped.
pub(super) async fn join_all(set: &mut JoinSet<()>, stop: &mut watch::Receiver<Stop>) {
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
pub(super) async fn aborted(mut stop: watch::Receiver<Stop>) {
    wait_until(&mut stop, |s| *s == Stop::Abort).await
}

/// Wait until the stop state satisfies `pred` (forever if the run's sender is gone).
pub(super) async fn wait_until(stop: &mut watch::Receiver<Stop>, pred: impl FnMut(&Stop) -> bool) {
    if stop.wait_for(pred).await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub(super) async fn warmup(
    ctx: &Arc<Ctx>,
    spec: &LoadSpec,
    mut stop: watch::Receiver<Stop>,
) -> u64 {
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

pub(super) async fn closed_loop(
    ctx: &Arc<Ctx>,
    concurrency: u32,
    clock: Instant,
    end: Option<Instant>,
    mut stop: watch::Receiver<Stop>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    // Workers by what runs: never more than the requests to send.
    let workers = ctx
        .limit
        .map_or(concurrency as u64, |n| n.min(concurrency as u64));
    for _ in 0..workers.max(1) {
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
                ctx.mark_stall(&mut rec, scheduled);
                rec.id = Some(id);
                if ctx.tx.send(rec).await.is_err() {
                    return;
                }
            }
        });
    }
    join_all(&mut set, &mut stop).await;
}

pub(super) async fn open_loop(
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
        // From the schedule until a slot was free: its own figure (the schedule's view of
        // TTFT and E2E includes it; the loop itself waits only on slots when capped).
        let slot_wait = cap.is_some().then(|| {
            let waited = Instant::now().saturating_duration_since(due);
            (waited.as_secs_f64() * 1e6).round() / 1000.0
        });
        while set.try_join_next().is_some() {}
        let ctx = ctx.clone();
        let abort = aborted(stop.clone());
        set.spawn(async move {
            let (id, body) = ctx.bodies.get(i);
            let mut rec = ctx.client.generate_until(body, due, clock, abort).await;
            drop(permit);
            rec.slot_wait_ms = slot_wait;
            ctx.mark_stall(&mut rec, due);
            rec.id = Some(id);
            let _ = ctx.tx.send(rec).await;
        });
    }
    join_all(&mut set, &mut stop).await;
}
