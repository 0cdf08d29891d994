//! The built-in simulator: an OpenAI-compatible and Ollama-native server on one port,
//! with a vLLM- or Ollama-like timing model, for tests, dry runs and demos.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use benchkeep::sim::{self, SimConfig};
//! let mut config = SimConfig::default(); // vLLM profile, 127.0.0.1:0
//! config.timing.no_delay = true;
//! let server = sim::start(config).await?;
//! let url = format!("{}/v1/chat/completions", server.base_url());
//! // ... drive it ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From synchronous code (a `#[test]` without a runtime), [`start_blocking`] runs the
//! server on its own thread. See `docs/simulator.md` for the endpoints, the timing
//! formulas and the fault modes.

mod body;
mod config;
mod engine;
mod errors;
mod histograms;
mod info;
mod metrics;
mod plan;
mod render;
mod request;
mod rng;
mod server;
mod tokens;
mod whole;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{oneshot, watch};

pub use config::{Faults, OutputLen, OutputLenDist, Profile, SimConfig, Timing, bind_addr};
pub use metrics::{FaultCounts, SimStats};
pub use tokens::TokenModel;

/// A running simulator. It stops when dropped or on [`SimServer::shutdown`].
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    metrics: Arc<metrics::Metrics>,
    shutdown: Option<watch::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Start a simulator on the current tokio runtime. It binds `config.bind` (port 0
/// picks a free port) before returning, so it accepts connections at once.
pub async fn start(config: SimConfig) -> anyhow::Result<SimServer> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (--host/--port)", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let metrics = Arc::new(metrics::Metrics::new(config.max_model_len));
    let (engine, engine_task) = if config.timing.no_delay {
        (None, None)
    } else {
        let (handle, task) = engine::spawn(&config, Arc::clone(&metrics));
        (Some(handle), Some(task))
    };
    let shared = Arc::new(server::Shared::new(config, Arc::clone(&metrics), engine));
    let (shutdown_tx, shutdown_rx) = watch::channel(());
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(server::serve(
        listener,
        shared,
        shutdown_rx,
        engine_task,
        done_tx,
    ));
    Ok(SimServer {
        addr,
        metrics,
        shutdown: Some(shutdown_tx),
        done: Some(done_rx),
        thread: None,
    })
}

/// Start a simulator on a new thread with its own single-threaded runtime, for callers
/// without a runtime (plain `#[test]`s). Dropping the returned server stops it and
/// joins the thread.
pub fn start_blocking(config: SimConfig) -> anyhow::Result<SimServer> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("benchkeep-sim".to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::new(e).context("starting a runtime")));
                    return;
                }
            };
            rt.block_on(async move {
                match start(config).await {
                    Ok(mut server) => {
                        let inner_done = server.done.take();
                        let _ = tx.send(Ok(server));
                        if let Some(d) = inner_done {
                            let _ = d.await;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
            drop(rt);
            let _ = done_tx.send(());
        })
        .context("spawning the simulator thread")?;
    let mut server = rx
        .recv()
        .context("the simulator thread exited before starting")??;
    server.done = Some(done_rx);
    server.thread = Some(thread);
    Ok(server)
}

impl SimServer {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, the base of both API families (Ollama clients use it as is).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://HOST:PORT/v1`, the base URL OpenAI clients expect.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A snapshot of the counters (requests, tokens, faults, queue).
    pub fn stats(&self) -> SimStats {
        self.metrics.stats()
    }

    /// Stop accepting, close every connection, stop the engine, and wait until done.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        // Dropping the sender wakes the accept loop, which closes everything.
        self.shutdown.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
