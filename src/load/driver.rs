//! The run driver: probe the server, reserve the run in the store, send the load, and
//! finish the run honestly whatever happens (RELIABILITY P1, P4).
//!
//! Order of events:
//! 1. probe the server (unreachable: `Error::Server`, nothing written); size synthetic
//!    prompts by the server's token count (`calibrate.rs`; its probes are not recorded),
//!    or by a local tokenizer file (`--tokenizer`, `calibrate/with_tokenizer.rs`);
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
use std::time::Duration;

use anyhow::Result;
use serde_json::{Map, Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use super::calibrate::{self, Calibration};
use super::loops::{Ctx, GpuRun, LoadDone, Stop, load};
use super::plan::{GpuPlan, RunPlan};
use super::progress::Progress;
use super::scrape::Scraper;
use super::source::Input;
use super::writer::Writer;
use crate::client::{Client, probe};
use crate::metrics::Aggregator;
use crate::schema::{Metadata, ServerInfo, SourceKind, Status, TestInfo};
use crate::store::{Store, ids, store_io};

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

/// Run a benchmark into `store`.
pub async fn run(store: &Store, plan: RunPlan) -> Result<RunOutcome> {
    let client = Client::new(&plan.base, plan.client.clone(), plan.scrubber.clone())?;
    let transport = client.transport().clone();
    let server = match plan.server.clone() {
        Some(server) => server,
        None => {
            probe::probe(
                client.transport(),
                &plan.base,
                &plan.client.headers,
                plan.client.api,
                &plan.model,
            )
            .await?
        }
    };
    // Synthetic prompts are sized by the server's own token count (probes not recorded).
    let target = calibrate::Target {
        client: &client,
        base: &plan.base,
        headers: &plan.client.headers,
        api: plan.client.api,
        model: &plan.model,
        stream: plan.client.stream,
    };
    let calibration = match &plan.input {
        // A local tokenizer counts the text; the server (calibration on) the template.
        Input::Synthetic(s) if s.tokenizer.is_some() => {
            let tok = s.tokenizer.as_ref().expect("checked");
            let nonce = run_nonce();
            let server = s.calibrate.then_some(&target);
            Some(
                match calibrate::calibrate_with_tokenizer(server, s, tok, nonce).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!(
                            "warning: {e}; sending one word per token instead (prompt_calibration.method none)"
                        );
                        Calibration::failed(s, nonce, e.to_string())
                    }
                },
            )
        }
        Input::Synthetic(s) if s.calibrate => {
            let nonce = run_nonce();
            Some(match calibrate::calibrate(&target, s, nonce).await {
                Ok(c) => c,
                // A server that fails the probes still gets its run (whose requests then
                // fail and are recorded): word-sized prompts, said in the metadata.
                Err(e) => {
                    eprintln!(
                        "warning: {e}; sending one word per token instead (prompt_calibration.method none; --calibrate off skips the probes)"
                    );
                    Calibration::failed(s, nonce, e.to_string())
                }
            })
        }
        Input::Synthetic(s) => Some(Calibration::off(s, run_nonce())),
        Input::File { .. } => None,
    };
    // From here a signal finishes the run cleanly instead of killing the process.
    let mut signals = Signals::new()?;
    let bodies = plan.input.render_sized(
        plan.client.api,
        &plan.model,
        plan.client.stream,
        plan.max_tokens,
        calibration.as_ref().map(|c| c.sizing).unwrap_or_default(),
    );

    store.ensure_layout()?;
    let mut meta = initial_metadata(&plan, server, calibration.as_ref());
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
            meta.process = None;
            let _ = store.replace(&meta);
            return Err(err);
        }
    };
    let _ = crate::store::atomic::sync_dir(&store.raw_dir());

    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let stop_tx = Arc::new(stop_tx);
    let aggregator = Aggregator::new()
        .with_slo(plan.slo.clone())
        .with_steady(plan.steady_spec());
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
        stalls: super::stall::Stalls::new(),
    });
    let scraper = scraper(&plan, store, &meta.test_id);
    let series_rel = format!("raw/{}.gpu.jsonl", meta.test_id);
    let gpu_plan = match plan.gpu.clone() {
        Some(p) => Some(server_gpus(p).await),
        None => None,
    };
    let gpu = gpu_plan.map(|p| GpuRun {
        plan: p,
        series: store.resolve(&series_rel),
        sampler: None,
    });
    let mut task = tokio::spawn(load(ctx, plan.load.clone(), stop_rx, gpu, scraper));

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
    let window = aggregator.window_s();
    meta.results = aggregator.finish(total_time, 0);
    meta.test.num_requests = success + failure;
    meta.results.server_view = match done.scraper {
        Some(s) => s.finish(&meta.results).await,
        None => crate::metrics::server_view::from_ollama(&meta.results),
    }
    .map(Box::new);
    meta.test.raw_sha256 = Some(written.sha256);
    meta.test.raw_bytes = Some(written.bytes);
    meta.test
        .extra
        .insert("warmup_failed".into(), json!(done.warmup_failed));
    if let (Some(Value::Object(c)), Input::Synthetic(s)) =
        (meta.test.extra.get_mut("prompt_calibration"), &plan.input)
    {
        c.insert(
            "achieved".into(),
            calibrate::achieved(&raw_path, s).unwrap_or(Value::Null),
        );
    }
    // The GPU energy over exactly the run's window (first send to last response).
    let at = |c: std::time::Instant, s: f64| c + Duration::from_secs_f64(s.max(0.0));
    let selection = done.gpu.as_ref().map(|g| g.plan.visible.clone());
    let gpu = done
        .gpu
        .and_then(|g| g.sampler)
        .and_then(|s| match (done.clock, window) {
            (Some(c), Some((a, b))) => s.finish_window(at(c, a), at(c, b)),
            _ => s.finish(),
        });
    if let Some(summary) = gpu {
        let selection = selection.unwrap_or_default();
        crate::telemetry::warn_unchosen(&selection, summary.count);
        let series = store
            .resolve(&series_rel)
            .is_file()
            .then_some(series_rel.as_str());
        summary.apply_to(&mut meta, series);
        if let Some(g) = meta.gpu.as_mut() {
            g.extra
                .insert("selection".into(), json!(selection.describe()));
        }
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
    meta.process = None;
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

/// The `/metrics` scraper of a run (not for Ollama's API, whose view comes from its
/// per-request durations, nor with `--no-server-metrics`).
fn scraper(plan: &RunPlan, store: &Store, test_id: &str) -> Option<Box<Scraper>> {
    let interval = plan.server_metrics?;
    if plan.client.api.is_ollama() {
        return None;
    }
    let rel = format!("raw/{test_id}.server.jsonl");
    Scraper::new(
        &plan.base,
        plan.client.headers.clone(),
        &plan.model,
        interval,
        store.resolve(&rel),
        rel,
    )
    .ok()
    .map(Box::new)
}

/// Probe the server a plan targets, once (a sweep probes once and hands the answer to
/// every point through [`RunPlan::server`]). Unreachable: `Error::Server`.
pub async fn probe_server(plan: &RunPlan) -> Result<ServerInfo> {
    let client = Client::new(&plan.base, plan.client.clone(), plan.scrubber.clone())?;
    Ok(probe::probe(
        client.transport(),
        &plan.base,
        &plan.client.headers,
        plan.client.api,
        &plan.model,
    )
    .await?)
}

/// The test id's base: `{platform}-{model}-{num_requests}-{date}` with the planned number
/// of requests (0 for an open-ended `--duration` run).
pub fn base_test_id(platform: &str, model: &str, planned: Option<u64>) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    ids::base_test_id(platform, model, planned.unwrap_or(0), &date)
}

/// A number for this run only: the unique heads of its synthetic prompts.
fn run_nonce() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    // splitmix64's finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// For a server on this host (and no `--gpu-index`), sample only the GPUs its processes
/// use; when they cannot be found, the plan's GPUs, with the reason in `gpu.selection`.
async fn server_gpus(mut p: GpuPlan) -> GpuPlan {
    let Some(port) = p.server_port.filter(|_| !p.visible.is_explicit()) else {
        return p;
    };
    let (mode, me) = (p.mode, std::process::id());
    let found =
        tokio::task::spawn_blocking(move || crate::telemetry::server_gpus::find(mode, port, me))
            .await
            .unwrap_or_else(|e| Err(format!("the search failed ({e})")));
    p.visible = match found {
        Ok(v) => v,
        Err(reason) => p.visible.server_not_found(reason),
    };
    p
}

fn initial_metadata(
    plan: &RunPlan,
    server: ServerInfo,
    calibration: Option<&Calibration>,
) -> Metadata {
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
    for (key, value) in plan.steady_spec().trim_keys() {
        load.insert(key.into(), json!(value));
    }
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
    if let (Input::Synthetic(s), Some(c)) = (&plan.input, calibration) {
        extra.insert("synthetic".into(), s.describe(&c.sizing));
        extra.insert("prompt_calibration".into(), c.to_json());
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
        input_sha256: Some(match (&plan.input, calibration) {
            // What was sent: word-sized prompts when the calibration fell back.
            (Input::Synthetic(s), Some(c)) if c.method == calibrate::Method::None => {
                let mut sent = s.effective(plan.max_tokens);
                sent.calibrate = false;
                sent.tokenizer = None;
                sent.sha256(l.num_requests)
            }
            _ => plan.input.sha256(l.num_requests, plan.max_tokens),
        }),
        raw_sha256: None,
        raw_bytes: None,
        extra,
    };
    meta.labels = plan.labels.clone();
    meta.source.command = plan.command.clone();
    meta.server = Some(Box::new(server));
    meta.sweep = plan.sweep.clone().map(Box::new);
    meta.repeat = plan.repeat.clone();
    meta.pid = Some(std::process::id());
    meta.process = Some(Box::new(crate::store::process::this()));
    meta
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
