//! The simulated inference engine: ONE task that steps a batch the way vLLM's scheduler
//! (and Ollama's parallel slots) do, and pushes each token into the request's channel.
//!
//! Each step admits waiting requests while the batch has room (FIFO), prefills them,
//! and gives every running sequence one token. A step lasts
//! `prefill_base_ms + Σ prompt_tokens / prefill_tok_s * 1000` (if it admitted anything)
//! plus `itl_ms + itl_per_seq_ms * (decoding - 1)` (if anything was decoding), times the
//! jitter factor. In the vLLM profile the prefill step yields the first token; in the
//! Ollama profile the first token comes from the next decode step. Steps are scheduled on
//! absolute deadlines, so the simulated clock does not drift with timer granularity.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::config::{Profile, SimConfig};
use super::metrics::{Metrics, Observed};
use super::request::Finish;
use super::rng::{Rng, derive};

/// What the engine tells a request.
#[derive(Debug)]
pub(crate) enum Event {
    /// One more token was generated.
    Token,
    /// Generation finished; no more tokens follow.
    Done(Timings),
}

/// When things happened to one request (the engine's simulated clock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timings {
    /// Time spent waiting for the one-time model load.
    pub load: Duration,
    /// Arrival to admission into the batch (includes `load`).
    pub queue: Duration,
    /// Admission to the end of the prefill step (Ollama `prompt_eval_duration`).
    pub prefill: Duration,
    /// End of prefill to the last token (Ollama `eval_duration`).
    pub decode: Duration,
    /// Arrival to the last token (Ollama `total_duration`).
    pub total: Duration,
}

/// A request handed to the engine.
#[derive(Debug)]
pub(crate) struct Job {
    pub prompt_tokens: u32,
    /// Tokens to generate; 0 = only make sure the model is loaded.
    pub tokens: u32,
    pub finish: Finish,
    pub arrival: Instant,
    pub out: mpsc::UnboundedSender<Event>,
}

/// Cheap handle to submit jobs.
#[derive(Clone, Debug)]
pub(crate) struct EngineHandle {
    tx: mpsc::UnboundedSender<Job>,
}

impl EngineHandle {
    /// Queue a job; the returned receiver yields its tokens. Dropping the receiver
    /// aborts the request at the next step.
    pub(crate) fn submit(
        &self,
        prompt_tokens: u32,
        tokens: u32,
        finish: Finish,
    ) -> mpsc::UnboundedReceiver<Event> {
        let (out, rx) = mpsc::unbounded_channel();
        let _ = self.tx.send(Job {
            prompt_tokens,
            tokens,
            finish,
            arrival: Instant::now(),
            out,
        });
        rx
    }
}

struct Seq {
    job: Job,
    load: Duration,
    scheduled: Instant,
    prefill_done: Option<Instant>,
    first_token: Option<Instant>,
    generated: u32,
    blocks: u64,
}

/// Engine settings derived from the [`SimConfig`].
struct Params {
    max_running: usize,
    first_token_in_prefill: bool,
    prefill_base_s: f64,
    prefill_tok_s: f64,
    itl_s: f64,
    itl_per_seq_s: f64,
    load_s: f64,
    jitter: f64,
    block_size: u64,
    num_blocks: u64,
}

/// Start the engine task on the current runtime.
pub(crate) fn spawn(
    cfg: &SimConfig,
    metrics: Arc<Metrics>,
) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = &cfg.timing;
    let params = Params {
        max_running: cfg.max_running() as usize,
        first_token_in_prefill: cfg.profile == Profile::Vllm,
        prefill_base_s: t.prefill_base_ms / 1e3,
        prefill_tok_s: t.prefill_tok_s,
        itl_s: t.itl_ms / 1e3,
        itl_per_seq_s: t.itl_per_seq_ms / 1e3,
        load_s: t.load_ms / 1e3,
        jitter: t.jitter,
        block_size: u64::from(cfg.block_size),
        num_blocks: u64::from(cfg.num_gpu_blocks),
    };
    let rng = Rng::new(derive(cfg.seed, 0xE461_4E00));
    let task = tokio::spawn(run(rx, params, rng, metrics));
    (EngineHandle { tx }, task)
}

/// How far the simulated clock may fall behind the real one before it is reset.
const MAX_LAG: Duration = Duration::from_millis(50);

async fn run(mut rx: mpsc::UnboundedReceiver<Job>, p: Params, mut rng: Rng, metrics: Arc<Metrics>) {
    let mut waiting: VecDeque<Seq> = VecDeque::new();
    let mut running: Vec<Seq> = Vec::new();
    let mut loaded = p.load_s <= 0.0;
    let mut clock = Instant::now();
    let mut reserved_blocks: u64 = 0;
    let new_seq = |job: Job| Seq {
        job,
        load: Duration::ZERO,
        scheduled: Instant::now(),
        prefill_done: None,
        first_token: None,
        generated: 0,
        blocks: 0,
    };
    loop {
        if running.is_empty() && waiting.is_empty() {
            metrics.running.store(0, Relaxed);
            metrics.waiting.store(0, Relaxed);
            metrics.set_kv_usage(0.0);
            match rx.recv().await {
                Some(job) => waiting.push_back(new_seq(job)),
                None => return,
            }
            // Without a load time the model counts as loaded once asked for
            // (`/api/ps` is empty before the first request, as on a fresh Ollama).
            if loaded {
                metrics.loaded.store(true, Relaxed);
            }
            clock = clock.max(Instant::now());
        }
        while let Ok(job) = rx.try_recv() {
            waiting.push_back(new_seq(job));
        }
        if !loaded {
            let start = clock;
            let end = start + secs(p.load_s * rng.jitter(p.jitter));
            metrics.waiting.store(waiting.len() as u64, Relaxed);
            tokio::time::sleep_until(end.into()).await;
            while let Ok(job) = rx.try_recv() {
                waiting.push_back(new_seq(job));
            }
            for s in &mut waiting {
                s.load = end.saturating_duration_since(s.job.arrival.max(start));
            }
            loaded = true;
            metrics.loaded.store(true, Relaxed);
            clock = end.max(lagged_now());
        }
        // Load-only jobs and clients that left while queued leave the queue at once.
        waiting.retain(|s| {
            if s.job.out.is_closed() {
                metrics.finished(None, None);
                return false;
            }
            if s.job.tokens == 0 {
                let total = clock.saturating_duration_since(s.job.arrival);
                let _ = s.job.out.send(Event::Done(Timings {
                    load: s.load,
                    queue: total,
                    prefill: Duration::ZERO,
                    decode: Duration::ZERO,
                    total,
                }));
                return false;
            }
            true
        });
        // Admit (FIFO) while the batch and the KV cache have room.
        let mut admitted: Vec<Seq> = Vec::new();
        let mut prefill_tokens: u64 = 0;
        while running.len() + admitted.len() < p.max_running {
            let Some(front) = waiting.front() else { break };
            let need = blocks(
                u64::from(front.job.prompt_tokens) + u64::from(front.job.tokens),
                p.block_size,
            );
            let empty = running.is_empty() && admitted.is_empty();
            if !empty && reserved_blocks + need > p.num_blocks {
                break;
            }
            let mut s = waiting.pop_front().expect("front exists");
            s.scheduled = clock.max(s.job.arrival);
            s.blocks = need;
            reserved_blocks += need;
            prefill_tokens += u64::from(s.job.prompt_tokens);
            metrics
                .prompt_tokens
                .fetch_add(u64::from(s.job.prompt_tokens), Relaxed);
            admitted.push(s);
        }
        if running.is_empty() && admitted.is_empty() {
            // Nothing runnable (every waiting client left); go back to idle.
            continue;
        }
        let decoding = running.len();
        let mut step_s = 0.0;
        if !admitted.is_empty() {
            step_s += p.prefill_base_s + prefill_tokens as f64 / p.prefill_tok_s;
        }
        if decoding > 0 {
            step_s += p.itl_s + p.itl_per_seq_s * (decoding - 1) as f64;
        }
        step_s *= rng.jitter(p.jitter);
        let end = clock + secs(step_s);
        metrics
            .running
            .store((running.len() + admitted.len()) as u64, Relaxed);
        metrics.waiting.store(waiting.len() as u64, Relaxed);
        metrics.set_kv_usage(kv_usage(running.iter().chain(&admitted), &p));
        if step_s > 0.0 {
            tokio::time::sleep_until(end.into()).await;
        } else {
            tokio::task::yield_now().await;
        }

        // Every decoding sequence gets one token.
        let mut new_tokens: u64 = 0;
        let mut itl_gaps: u64 = 0;
        for s in &mut running {
            if s.first_token.is_none() {
                s.first_token = Some(end);
                metrics.first_token(end.saturating_duration_since(s.job.arrival).as_secs_f64());
            } else {
                itl_gaps += 1;
            }
            s.generated += 1;
            new_tokens += 1;
            if s.job.out.send(Event::Token).is_err() {
                s.generated = u32::MAX; // client gone: abort below
            }
        }
        for mut s in admitted {
            s.prefill_done = Some(end);
            if p.first_token_in_prefill {
                s.first_token = Some(end);
                metrics.first_token(end.saturating_duration_since(s.job.arrival).as_secs_f64());
                s.generated = 1;
                new_tokens += 1;
                if s.job.out.send(Event::Token).is_err() {
                    s.generated = u32::MAX;
                }
            }
            running.push(s);
        }
        metrics.generation_tokens.fetch_add(new_tokens, Relaxed);
        metrics.itl(step_s, itl_gaps);
        // Retire finished and aborted sequences.
        running.retain(|s| {
            if s.generated == u32::MAX {
                reserved_blocks -= s.blocks;
                metrics.finished(None, None);
                return false;
            }
            if s.generated < s.job.tokens {
                return true;
            }
            reserved_blocks -= s.blocks;
            let t = timings(s, end);
            // Counted before the client can see the end, as vLLM counts it.
            metrics.finished(
                Some(s.job.finish),
                Some(&Observed {
                    e2e_s: t.total.as_secs_f64(),
                    queue_s: t.queue.as_secs_f64(),
                    prefill_s: t.prefill.as_secs_f64(),
                    decode_s: t.decode.as_secs_f64(),
                    prompt_tokens: s.job.prompt_tokens,
                    generation_tokens: s.generated,
                }),
            );
            let _ = s.job.out.send(Event::Done(t));
            false
        });
        metrics.set_kv_usage(kv_usage(running.iter(), &p));
        metrics.running.store(running.len() as u64, Relaxed);
        // Keep the simulated clock on its deadlines unless the runtime fell far behind.
        clock = end.max(lagged_now());
    }
}

fn timings(s: &Seq, end: Instant) -> Timings {
    let arrival = s.job.arrival;
    let prefill_done = s.prefill_done.unwrap_or(end);
    Timings {
        load: s.load,
        queue: s.scheduled.saturating_duration_since(arrival),
        prefill: prefill_done.saturating_duration_since(s.scheduled),
        decode: end.saturating_duration_since(prefill_done),
        total: end.saturating_duration_since(arrival),
    }
}

/// Fraction of the KV cache the sequences' tokens occupy.
fn kv_usage<'a>(seqs: impl Iterator<Item = &'a Seq>, p: &Params) -> f64 {
    let used: u64 = seqs
        .map(|s| {
            let generated = if s.generated == u32::MAX {
                0
            } else {
                s.generated
            };
            blocks(
                u64::from(s.job.prompt_tokens) + u64::from(generated),
                p.block_size,
            )
        })
        .sum();
    (used as f64 / p.num_blocks as f64).min(1.0)
}

/// Now, minus the lag the simulated clock may keep.
fn lagged_now() -> Instant {
    let now = Instant::now();
    now.checked_sub(MAX_LAG).unwrap_or(now)
}

fn blocks(tokens: u64, block_size: u64) -> u64 {
    tokens.div_ceil(block_size).max(1)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 1e7))
}
