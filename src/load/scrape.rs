//! The server's `/metrics` during a run: one scrape just before the measured load, one
//! every `--server-metrics-interval` during it (its gauges appended to
//! `raw/<test_id>.server.jsonl`), and one after it; [`crate::metrics::server_view`] turns
//! them into `results.server_view`.
//!
//! Bounded: a body over [`MAX_SCRAPE_BYTES`] or slower than [`SCRAPE_TIMEOUT`] is a failed
//! scrape; the series file stops at [`MAX_SERIES_LINES`] lines or [`MAX_SERIES_BYTES`]. A
//! server without a vLLM `/metrics` (Ollama, a 404, another server) is noted once and
//! never fails the run. The scrape sends the run's headers (credentials included) and
//! writes none of them: only numbers reach the file.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper::http::{HeaderMap, Method, Uri};
use serde_json::json;
use tokio::sync::oneshot;

use crate::client::http::{SendError, Transport};
use crate::client::prom::{self, MAX_SCRAPE_BYTES, Snapshot};
use crate::client::{BaseUrl, secs_since};
use crate::metrics::server_view::{self, GaugeSample};
use crate::schema::Results;
use crate::schema::server_view::ServerView;
use crate::store::nofollow;

/// Longest wait for one `/metrics` answer.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most lines of the series file (a day at the default interval of 1 s).
pub const MAX_SERIES_LINES: u64 = 86_400;
/// Most bytes of the series file.
pub const MAX_SERIES_BYTES: u64 = 16 << 20;
/// How long the scrape after the run waits for the server to count the run's last
/// requests (it updates its histograms just after it sends the last token).
const SETTLE: Duration = Duration::from_secs(2);

/// The scraper of one run.
pub(super) struct Scraper {
    transport: Transport,
    uri: Uri,
    headers: HeaderMap,
    model: String,
    interval: Duration,
    series_path: PathBuf,
    series_rel: String,
    before: Option<Snapshot>,
    unavailable: Option<String>,
    task: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<Series>)>,
}

/// What the series task collected.
struct Series {
    samples: Vec<GaugeSample>,
    failed: u64,
    truncated: bool,
    written: bool,
}

impl Scraper {
    pub(super) fn new(
        base: &BaseUrl,
        headers: HeaderMap,
        model: &str,
        interval: Duration,
        series_path: PathBuf,
        series_rel: String,
    ) -> anyhow::Result<Scraper> {
        let uri: Uri = base
            .endpoint("/metrics")
            .parse()
            .map_err(|_| anyhow::anyhow!("--base-url {}: not a valid URL", base.redacted()))?;
        Ok(Scraper {
            transport: Transport::new(base.scheme, 1)?,
            uri,
            headers,
            model: model.to_string(),
            interval,
            series_path,
            series_rel,
            before: None,
            unavailable: None,
            task: None,
        })
    }

    /// The scrape before the measured load. A server without vLLM metrics is noted here,
    /// once, and never asked again.
    pub(super) async fn before(&mut self) {
        match self.scrape().await {
            Ok(s) if s.vllm => self.before = Some(s),
            Ok(_) => {
                self.unavailable =
                    Some("GET /metrics has no vllm: metrics (not a vLLM server)".into())
            }
            Err(e) => self.unavailable = Some(e),
        }
    }

    /// Start sampling the gauges every interval, from `clock` (time 0 of the load).
    pub(super) fn start_series(&mut self, clock: Instant) {
        if self.before.is_none() {
            return;
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let me = Probe {
            transport: self.transport.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            model: self.model.clone(),
        };
        let task = tokio::spawn(series_loop(
            me,
            self.interval,
            self.series_path.clone(),
            clock,
            stop_rx,
        ));
        self.task = Some((stop_tx, task));
    }

    /// Stop the series, scrape once more and compute the view for `results`.
    pub(super) async fn finish(mut self, results: &Results) -> Option<ServerView> {
        let series = match self.task.take() {
            Some((stop, task)) => {
                let _ = stop.send(());
                task.await.ok()
            }
            None => None,
        };
        if let Some(reason) = self.unavailable.take() {
            return Some(server_view::unavailable(reason));
        }
        let before = self.before.take()?;
        let give_up = Instant::now() + SETTLE;
        let mut view = loop {
            let after = match self.scrape().await {
                Ok(a) => a,
                Err(e) => {
                    break server_view::unavailable(format!(
                        "the scrape after the run failed: {e}"
                    ));
                }
            };
            let v = server_view::from_vllm(&before, &after, results);
            if v.requests >= results.success_count || Instant::now() >= give_up {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Some(s) = series.filter(|s| s.written) {
            let mut sum =
                server_view::summarize(&s.samples, &self.series_rel, self.interval.as_secs_f64());
            sum.truncated = s.truncated;
            sum.failed_scrapes = s.failed;
            view.series = Some(sum);
        }
        Some(view)
    }

    async fn scrape(&self) -> Result<Snapshot, String> {
        Probe {
            transport: self.transport.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            model: self.model.clone(),
        }
        .scrape()
        .await
    }
}

/// What one scrape needs (cloned into the series task).
struct Probe {
    transport: Transport,
    uri: Uri,
    headers: HeaderMap,
    model: String,
}

impl Probe {
    async fn scrape(&self) -> Result<Snapshot, String> {
        let fut = async {
            let mut resp = self
                .transport
                .send(Method::GET, &self.uri, &self.headers, None)
                .await
                .map_err(|e| match e {
                    SendError::Connect(m) | SendError::Closed(m) | SendError::Other(m) => m,
                })?;
            if !(200..300).contains(&resp.status) {
                return Err(format!("GET /metrics answered HTTP {}", resp.status));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = resp.body.chunk().await? {
                if buf.len() + chunk.len() > MAX_SCRAPE_BYTES {
                    return Err(format!(
                        "GET /metrics answered more than {} MiB",
                        MAX_SCRAPE_BYTES >> 20
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        };
        let body = match tokio::time::timeout(SCRAPE_TIMEOUT, fut).await {
            Err(_) => {
                return Err(format!(
                    "GET /metrics did not answer within {}s",
                    SCRAPE_TIMEOUT.as_secs()
                ));
            }
            Ok(r) => r?,
        };
        let text = String::from_utf8_lossy(&body);
        Ok(prom::parse(&text, Some(&self.model)))
    }
}

async fn series_loop(
    probe: Probe,
    interval: Duration,
    path: PathBuf,
    clock: Instant,
    mut stop: oneshot::Receiver<()>,
) -> Series {
    let mut out = Series {
        samples: Vec::new(),
        failed: 0,
        truncated: false,
        written: false,
    };
    // Created at the first sample: a run shorter than one interval leaves no empty file.
    let mut file: Option<std::fs::File> = None;
    let mut create_failed = false;
    let mut bytes = 0u64;
    // The first sample one interval in: at 0 the server has not seen the load yet.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let snap = tokio::select! {
            _ = &mut stop => break,
            s = probe.scrape() => s,
        };
        let Ok(s) = snap else {
            out.failed += 1;
            continue;
        };
        let sample = GaugeSample {
            t_s: secs_since(clock, Instant::now()),
            running: s.value("vllm:num_requests_running"),
            waiting: s.value("vllm:num_requests_waiting"),
            kv_cache_usage: s
                .value("vllm:kv_cache_usage_perc")
                .or_else(|| s.value("vllm:gpu_cache_usage_perc")),
        };
        if file.is_none() && !create_failed {
            match nofollow::open_with(
                &path,
                std::fs::OpenOptions::new().append(true).create_new(true),
            ) {
                Ok(f) => {
                    file = Some(f);
                    out.written = true;
                }
                Err(e) => {
                    create_failed = true;
                    eprintln!(
                        "benchkeep: warning: cannot create the server series {}: {e}; the run goes on without it",
                        path.display()
                    );
                }
            }
        }
        let Some(f) = file.as_mut() else { continue };
        if out.samples.len() as u64 >= MAX_SERIES_LINES || bytes >= MAX_SERIES_BYTES {
            out.truncated = true;
            continue;
        }
        let line = json!({
            "t_s": crate::schema::round(sample.t_s, 3),
            "running": sample.running,
            "waiting": sample.waiting,
            "kv_cache_usage": sample.kv_cache_usage,
            "preemptions_total": s.value("vllm:num_preemptions_total"),
            "generation_tokens_total": s.value("vllm:generation_tokens_total"),
        })
        .to_string()
            + "\n";
        if let Err(e) = f.write_all(line.as_bytes()) {
            eprintln!(
                "benchkeep: warning: writing the server series {} failed: {e}; the series stops here",
                path.display()
            );
            file = None;
            create_failed = true;
            continue;
        }
        bytes += line.len() as u64;
        out.samples.push(sample);
    }
    if let Some(f) = file {
        let _ = f.sync_all();
    }
    out
}
