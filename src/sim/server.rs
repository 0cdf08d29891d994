//! The HTTP side: the accept loop (hyper HTTP/1.1 with keep-alive and a header-read
//! timeout), routing of both API families on one port, bounded request bodies, and the
//! generation handler that plans a response, picks its fault, and hands it a token
//! source (the engine, or instant tokens with `--no-delay`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::body::{FaultBody, Inflight, LINE_FILL, SimBody, Source, TokenStream};
use super::config::{Faults, Profile, SimConfig};
use super::engine::{EngineHandle, Event, Timings};
use super::info;
use super::metrics::{FaultKind, Metrics};
use super::render::{self, Ctx, GARBAGE_LINE, Shape, Wire, error_body, now_rfc3339, unix_now};
use super::request::{self, Api, ApiError, Finish, GenRequest};
use super::rng::{Rng, TextGen, derive};

/// How long a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// State shared by every connection.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub metrics: Arc<Metrics>,
    pub engine: Option<EngineHandle>,
    arrivals: AtomicU64,
    started_at: String,
    fingerprint: String,
}

impl Shared {
    pub(crate) fn new(cfg: SimConfig, metrics: Arc<Metrics>, engine: Option<EngineHandle>) -> Self {
        // vLLM: `vllm-<version>-<8 hex digits of its build>`.
        let build = super::rng::hash_bytes(cfg.server_version.as_bytes()) as u32;
        let fingerprint = format!("vllm-{}-{build:08x}", cfg.server_version);
        Shared {
            cfg,
            metrics,
            engine,
            arrivals: AtomicU64::new(0),
            started_at: now_rfc3339(),
            fingerprint,
        }
    }
}

/// Counts an open connection while it lives.
struct ConnGuard(Arc<Metrics>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// Accept connections until `shutdown` fires (or its sender is dropped), then close
/// every connection and stop the engine.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<()>,
    engine_task: Option<tokio::task::JoinHandle<()>>,
    done: oneshot::Sender<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sh = Arc::clone(&shared);
                    sh.metrics.connections.fetch_add(1, Relaxed);
                    let guard = ConnGuard(Arc::clone(&sh.metrics));
                    conns.spawn(async move {
                        let _guard = guard;
                        let service = hyper::service::service_fn(move |req| {
                            let sh = Arc::clone(&sh);
                            async move { Ok::<_, Infallible>(route(&sh, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(30))
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    if let Some(task) = engine_task {
        task.abort();
        let _ = task.await;
    }
    let _ = done.send(());
}

fn respond(status: u16, content_type: &'static str, body: SimBody) -> Response<SimBody> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: u16, v: &Value) -> Response<SimBody> {
    respond(status, "application/json", SimBody::full(v.to_string()))
}

/// Ollama's native endpoints: JSON with a charset.
fn native_json(status: u16, body: String) -> Response<SimBody> {
    respond(status, render::NATIVE_JSON, SimBody::full(body))
}

fn error_response(shape: Shape, e: &ApiError) -> Response<SimBody> {
    let body = error_body(shape, e.status, &e.message, e.param.as_deref());
    respond(
        e.status,
        shape.error_content_type(e.status),
        SimBody::full(body),
    )
}

fn not_found(path: &str, profile: Profile) -> Response<SimBody> {
    if path.starts_with("/api/") || profile == Profile::Ollama {
        respond(404, "text/plain", SimBody::full("404 page not found"))
    } else {
        json_response(404, &json!({"detail": "Not Found"}))
    }
}

const KNOWN_PATHS: &[&str] = &[
    "/",
    "/health",
    "/ping",
    "/version",
    "/metrics",
    "/tokenize",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/api/chat",
    "/api/generate",
    "/api/version",
    "/api/tags",
    "/api/ps",
    "/api/show",
];

async fn route(sh: &Arc<Shared>, req: Request<Incoming>) -> Response<SimBody> {
    let cfg = &sh.cfg;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/") => respond(
            200,
            "text/plain; charset=utf-8",
            SimBody::full("Ollama is running"),
        ),
        // vLLM: an empty 200 without a content type.
        (Method::GET, "/health" | "/ping") => Response::new(SimBody::empty()),
        (Method::GET, "/version") => json_response(200, &info::version(cfg)),
        (Method::GET, "/api/version") => native_json(200, info::version(cfg).to_string()),
        (Method::GET, "/metrics") => respond(
            200,
            "text/plain; version=1.0.0; charset=utf-8",
            SimBody::full(sh.metrics.render(cfg)),
        ),
        (Method::GET, "/v1/models") => respond(
            200,
            "application/json",
            SimBody::full(info::models(cfg, unix_now())),
        ),
        (Method::GET, p) if p.starts_with("/v1/models/") && cfg.profile == Profile::Ollama => {
            let id = &p["/v1/models/".len()..];
            match info::model(cfg, id, unix_now()) {
                Some(v) => respond(200, "application/json", SimBody::full(v)),
                None => error_response(Shape::Compat, &not_found_model(id)),
            }
        }
        (Method::POST, "/v1/chat/completions") => generate(sh, Api::Chat, req).await,
        (Method::POST, "/v1/completions") => generate(sh, Api::Completion, req).await,
        (Method::POST, "/api/chat") => generate(sh, Api::OllamaChat, req).await,
        (Method::POST, "/api/generate") => generate(sh, Api::OllamaGenerate, req).await,
        (Method::POST, "/tokenize") if cfg.profile == Profile::Vllm => {
            let body = match read_body(req, cfg.max_body_bytes).await {
                Ok(b) => b,
                Err(e) => return error_response(Shape::Vllm, &e),
            };
            match info::tokenize(cfg, &body) {
                Ok(v) => respond(200, "application/json", SimBody::full(v)),
                Err(m) => error_response(Shape::Vllm, &ApiError::bad(m)),
            }
        }
        (Method::GET, "/api/tags") => native_json(200, info::tags(cfg, &sh.started_at)),
        (Method::GET, "/api/ps") => native_json(200, info::ps(cfg, &sh.metrics)),
        (Method::POST, "/api/show") => {
            let body = match read_body(req, cfg.max_body_bytes).await {
                Ok(b) => b,
                Err(e) => return error_response(Shape::Native, &e),
            };
            match info::show(cfg, &body, &sh.started_at) {
                // Ollama streams /api/show (chunked, no Content-Length).
                Ok(Some(v)) => respond(200, render::NATIVE_JSON, SimBody::chunked(v)),
                Ok(None) => {
                    let name = info::requested_name(&body).unwrap_or_default();
                    error_response(Shape::Native, &not_found_model(&name))
                }
                Err(m) => error_response(Shape::Native, &ApiError::bad(m)),
            }
        }
        (_, p) if KNOWN_PATHS.contains(&p) && !p.starts_with("/api/") => {
            json_response(405, &json!({"detail": "Method Not Allowed"}))
        }
        (_, p) => not_found(p, cfg.profile),
    }
}

/// Read a request body of at most `limit` bytes, within [`BODY_TIMEOUT`].
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::status(
            413,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let len = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        if len.is_none_or(|l| l > limit as u64) {
            return Err(
                len.map_or_else(|| ApiError::bad("invalid Content-Length"), |_| too_large())
            );
        }
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::status(408, "timed out reading the request body")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad(format!(
            "error reading the request body: {e}"
        ))),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

fn wire_for(api: Api, profile: Profile) -> Wire {
    match (api, profile) {
        (Api::Chat, Profile::Vllm) => Wire::VllmChat,
        (Api::Completion, Profile::Vllm) => Wire::VllmCompletion,
        (Api::Chat, Profile::Ollama) => Wire::CompatChat,
        (Api::Completion, Profile::Ollama) => Wire::CompatCompletion,
        (Api::OllamaChat, _) => Wire::OllamaChat,
        (Api::OllamaGenerate, _) => Wire::OllamaGenerate,
    }
}

/// Ollama's "unknown model" error (its `/v1` layer wraps the same message).
fn not_found_model(name: &str) -> ApiError {
    ApiError::status(404, format!("model '{name}' not found"))
}

/// The model name to echo, or the imitated server's "unknown model" error.
fn check_model(cfg: &SimConfig, wire: Wire, req: &GenRequest) -> Result<String, ApiError> {
    if wire.shape() == Shape::Vllm {
        if req.model == cfg.model {
            return Ok(cfg.model.clone());
        }
        return Err(ApiError {
            status: 404,
            message: format!(
                "The model `{}` does not exist. Valid aliases: {}.",
                req.model, cfg.model
            ),
            param: Some("model".to_string()),
        });
    }
    if info::ollama_name(&req.model) == info::ollama_name(&cfg.model) {
        Ok(req.model.clone())
    } else {
        Err(not_found_model(&req.model))
    }
}

/// Roll every fault rate (always in the same order, so the draws stay deterministic)
/// and return the first that fires.
fn pick_fault(f: &Faults, rng: &mut Rng) -> Option<FaultKind> {
    let rolls = [
        (FaultKind::Error, rng.chance(f.error_rate)),
        (FaultKind::StreamError, rng.chance(f.stream_error_rate)),
        (FaultKind::Drop, rng.chance(f.drop_rate)),
        (FaultKind::Garbage, rng.chance(f.garbage_rate)),
        (FaultKind::InvalidUtf8, rng.chance(f.invalid_utf8_rate)),
        (FaultKind::MissingDone, rng.chance(f.missing_done_rate)),
        (FaultKind::Stall, f.stall_after.is_some()),
        (FaultKind::EndlessLine, f.endless_line),
        (FaultKind::EndlessEvent, f.endless_event),
    ];
    rolls.into_iter().find(|(_, hit)| *hit).map(|(k, _)| k)
}

/// After how many content chunks the fault strikes.
fn fault_position(kind: FaultKind, f: &Faults, tokens: u32) -> u32 {
    match kind {
        FaultKind::Stall => f.stall_after.unwrap_or(0).min(tokens),
        FaultKind::EndlessLine | FaultKind::EndlessEvent => 1.min(tokens),
        // Checked when the stream ends, not at a chunk.
        FaultKind::MissingDone => u32::MAX,
        _ => (tokens / 2).max(1).min(tokens),
    }
}

async fn generate(sh: &Arc<Shared>, api: Api, req: Request<Incoming>) -> Response<SimBody> {
    let cfg = &sh.cfg;
    let metrics = &sh.metrics;
    let wire = wire_for(api, cfg.profile);
    let shape = wire.shape();
    metrics.requests.fetch_add(1, Relaxed);
    let reject = |e: ApiError| {
        if e.status < 500 {
            metrics.rejected.fetch_add(1, Relaxed);
        }
        error_response(shape, &e)
    };
    let body = match read_body(req, cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return reject(e),
    };
    let mut greq = match request::parse(api, &body, cfg.profile) {
        Ok(g) => g,
        Err(e) if shape == Shape::Vllm => {
            return reject(super::errors::vllm_validation(api, e, &body));
        }
        Err(e) => return reject(e),
    };
    // Words -> tokens (a prompt of token ids is already counted in tokens).
    if api != Api::Completion || greq.prompt_chars.is_some() {
        greq.prompt_tokens = cfg
            .tokens
            .prompt(greq.prompt_tokens, api != Api::Completion);
    }
    let model = match check_model(cfg, wire, &greq) {
        Ok(m) => m,
        Err(e) => return reject(e),
    };
    let seed = super::plan::request_seed(cfg.seed, &greq, sh.arrivals.fetch_add(1, Relaxed));
    let mut len_rng = Rng::new(derive(seed, 1));
    let text = TextGen::new(derive(seed, 2));
    let mut fault_rng = Rng::new(derive(seed, 3));
    let id_bits = derive(seed, 4);
    metrics.last_used_unix.store(unix_now(), Relaxed);
    if greq.load_only {
        return load_only(sh, wire, &greq).await;
    }
    let plan = match super::plan::plan(&greq, cfg, &mut len_rng) {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    let fault = pick_fault(&cfg.faults, &mut fault_rng);
    if fault == Some(FaultKind::Error) {
        metrics.fault(FaultKind::Error);
        return error_response(
            shape,
            &ApiError::status(500, "benchkeep simulator: injected internal server error"),
        );
    }
    // vLLM: unique hex ids; Ollama's layer: a small, not unique number (as Ollama does).
    let id = match wire {
        Wire::VllmChat => format!("chatcmpl-{id_bits:016x}"),
        Wire::VllmCompletion => format!("cmpl-{id_bits:016x}"),
        Wire::CompatChat => format!("chatcmpl-{}", id_bits % 999),
        Wire::CompatCompletion => format!("cmpl-{}", id_bits % 999),
        Wire::OllamaChat | Wire::OllamaGenerate => String::new(),
    };
    let ctx = Ctx {
        wire,
        id,
        created: unix_now(),
        model,
        include_usage: greq.include_usage,
        prompt_tokens: greq.prompt_tokens,
        completion_tokens: plan.tokens,
        finish: plan.finish,
        fingerprint: sh.fingerprint.clone(),
        warm_load: cfg.profile == Profile::Ollama,
        // A planned fault counts content chunks: keep one chunk per token then.
        merge_chat: cfg.profile == Profile::Ollama
            && matches!(wire, Wire::OllamaChat | Wire::CompatChat)
            && fault.is_none(),
    };
    let src = match &sh.engine {
        // Ollama writes its status line with the first chunk: a queued request sees
        // nothing (not even headers) until its first token.
        Some(engine) if greq.stream && cfg.profile == Profile::Ollama => {
            let mut rx = engine.submit(greq.prompt_tokens, plan.tokens, plan.finish);
            let first = rx.recv().await;
            Source::Primed(first, rx)
        }
        Some(engine) => Source::Engine(engine.submit(greq.prompt_tokens, plan.tokens, plan.finish)),
        None => {
            metrics.loaded.store(true, Relaxed);
            Source::Instant(Inflight::new(Arc::clone(metrics), greq.prompt_tokens))
        }
    };
    if greq.stream {
        let at = fault.map(|k| (fault_position(k, &cfg.faults, plan.tokens), k));
        let stream = TokenStream::new(render::Stream::new(ctx), src, text, at, Arc::clone(metrics));
        return respond(
            200,
            wire.content_type(true),
            SimBody::Stream(Box::new(stream)),
        );
    }
    whole(sh, ctx, src, text, fault).await
}

/// A non-streamed response: wait for every token, then answer in one body (or fault).
async fn whole(
    sh: &Arc<Shared>,
    ctx: Ctx,
    src: Source,
    mut text: TextGen,
    fault: Option<FaultKind>,
) -> Response<SimBody> {
    let metrics = &sh.metrics;
    let shape = ctx.wire.shape();
    let total = ctx.completion_tokens;
    let engine_dead = || {
        error_response(
            shape,
            &ApiError::status(500, render::ENGINE_DEAD.to_string()),
        )
    };
    let cut_after = (fault == Some(FaultKind::StreamError))
        .then(|| fault_position(FaultKind::StreamError, &sh.cfg.faults, total));
    let timings: Timings = match src {
        Source::Instant(mut inflight) => {
            if cut_after.is_some() {
                metrics.fault(FaultKind::StreamError);
                return engine_dead();
            }
            inflight.tokens(total);
            inflight.complete(ctx.finish)
        }
        Source::Engine(mut rx) => {
            let mut n = 0;
            loop {
                match rx.recv().await {
                    Some(Event::Token) => {
                        n += 1;
                        if Some(n) == cut_after {
                            metrics.fault(FaultKind::StreamError);
                            return engine_dead();
                        }
                    }
                    Some(Event::Done(t)) => break t,
                    None => {
                        return error_response(
                            shape,
                            &ApiError::status(503, "the simulator is shutting down"),
                        );
                    }
                }
            }
        }
        Source::Closed | Source::Primed(..) => return engine_dead(),
    };
    let content = text.text(total);
    let body = render::full(&ctx, &content, &timings, &now_rfc3339());
    let Some(kind) = fault.filter(|k| *k != FaultKind::MissingDone) else {
        return respond(200, ctx.wire.content_type(false), SimBody::full(body));
    };
    let json = ctx.wire.content_type(false);
    metrics.fault(kind);
    let faulty = match kind {
        FaultKind::Drop => {
            let half = body.len() / 2;
            FaultBody::truncate(Some(Bytes::from(body).slice(..half)))
        }
        FaultKind::Garbage => {
            return respond(200, json, SimBody::full(GARBAGE_LINE));
        }
        FaultKind::Stall => FaultBody::stall(None),
        FaultKind::InvalidUtf8 => {
            let mut bytes = body.into_bytes();
            if let Some(first) = find(&bytes, content.as_bytes()) {
                bytes[first] = 0xff;
            }
            return respond(200, json, SimBody::full(bytes));
        }
        _ => FaultBody::Endless {
            pending: Some(Bytes::from_static(b"{\"id\":\"")),
            fill: &LINE_FILL,
        },
    };
    respond(200, json, SimBody::Fault(faulty))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Ollama: an empty prompt only loads the model and answers `done_reason: "load"`.
async fn load_only(sh: &Arc<Shared>, wire: Wire, req: &GenRequest) -> Response<SimBody> {
    match &sh.engine {
        Some(engine) => {
            let mut rx = engine.submit(0, 0, Finish::Stop);
            while let Some(ev) = rx.recv().await {
                if matches!(ev, Event::Done(_)) {
                    break;
                }
            }
        }
        None => sh.metrics.loaded.store(true, Relaxed),
    }
    // Ollama answers with one JSON body even when streaming was asked (or defaulted).
    native_json(200, render::ollama_load(wire, &req.model, &now_rfc3339()))
}
