//! Response bodies. [`SimBody`] is the one body type of every response: a whole buffer,
//! a token stream, or a faulty body (cut, stalled, endless). The token stream pulls
//! tokens from the engine's channel (or, with `--no-delay`, makes them on the spot),
//! renders as many chunks as are ready into one buffer and sends them as one frame, and
//! injects the planned fault at its chunk.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::engine::{Event, Timings};
use super::metrics::{FaultKind, Metrics, Observed};
use super::render::{self, now_rfc3339};
use super::request::Finish;
use super::rng::TextGen;

/// Frames are sent once this many bytes are buffered.
const FRAME_BYTES: usize = 64 * 1024;

/// The SSE end-of-stream sentinel.
pub(crate) const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// How long a dropped connection waits for its last bytes to be flushed.
const LINGER: Duration = Duration::from_millis(20);

/// A stalled response gives up after this long even if the client stays.
pub(crate) const STALL_MAX: Duration = Duration::from_secs(600);

/// Filler of the endless line: bytes without a newline.
pub(crate) static LINE_FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Filler of the endless event: 1 KiB `data:` lines that never end the event.
pub(crate) static EVENT_FILL: [u8; 64 * 1024] = event_fill();

const fn event_fill() -> [u8; 64 * 1024] {
    let mut a = [b'x'; 64 * 1024];
    let mut i = 0;
    while i < a.len() {
        a[i] = b'd';
        a[i + 1] = b'a';
        a[i + 2] = b't';
        a[i + 3] = b'a';
        a[i + 4] = b':';
        a[i + 5] = b' ';
        a[i + 1023] = b'\n';
        i += 1024;
    }
    a
}

type PollFrame = Poll<Option<Result<Frame<Bytes>, io::Error>>>;

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "benchkeep simulator: connection dropped on purpose",
    )
}

/// Response body of every simulator response.
#[derive(Debug)]
pub(crate) enum SimBody {
    /// A complete body (or none).
    Full(Option<Bytes>),
    /// A complete body sent chunked, without a Content-Length (Ollama's `/api/show`).
    Chunked(Option<Bytes>),
    /// A token stream.
    Stream(Box<TokenStream>),
    /// A body that misbehaves.
    Fault(FaultBody),
}

impl SimBody {
    pub(crate) fn full(b: impl Into<Bytes>) -> Self {
        SimBody::Full(Some(b.into()))
    }

    pub(crate) fn chunked(b: impl Into<Bytes>) -> Self {
        SimBody::Chunked(Some(b.into()))
    }

    pub(crate) fn empty() -> Self {
        SimBody::Full(None)
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> PollFrame {
        match self.get_mut() {
            SimBody::Full(b) | SimBody::Chunked(b) => {
                Poll::Ready(b.take().map(|b| Ok(Frame::data(b))))
            }
            SimBody::Stream(s) => s.poll(cx),
            SimBody::Fault(f) => f.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Bodies that misbehave on purpose. Each first sends what was already rendered.
#[derive(Debug)]
pub(crate) enum FaultBody {
    /// Then, after a short linger that lets the sent bytes leave the socket, fail so
    /// the connection closes mid-body.
    Truncate {
        /// Bytes still to send before closing.
        pending: Option<Bytes>,
        /// The linger before closing.
        linger: Option<Pin<Box<Sleep>>>,
    },
    /// Then send nothing more and keep the connection open (until [`STALL_MAX`]).
    Stall {
        /// Bytes still to send before stalling.
        pending: Option<Bytes>,
        /// When to give up.
        sleep: Pin<Box<Sleep>>,
    },
    /// Then send `fill` over and over until the client disconnects.
    Endless {
        /// Bytes still to send first.
        pending: Option<Bytes>,
        /// What to repeat.
        fill: &'static [u8],
    },
}

impl FaultBody {
    pub(crate) fn truncate(pending: Option<Bytes>) -> Self {
        FaultBody::Truncate {
            pending,
            linger: None,
        }
    }

    pub(crate) fn stall(pending: Option<Bytes>) -> Self {
        FaultBody::Stall {
            pending,
            sleep: Box::pin(tokio::time::sleep(STALL_MAX)),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> PollFrame {
        match self {
            FaultBody::Truncate { pending, linger } => {
                if let Some(b) = pending.take().filter(|b| !b.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                let sleep = linger.get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(cut())))
            }
            FaultBody::Stall { pending, sleep } => {
                if let Some(b) = pending.take().filter(|b| !b.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(cut())))
            }
            FaultBody::Endless { pending, fill } => {
                let b = pending
                    .take()
                    .filter(|b| !b.is_empty())
                    .unwrap_or_else(|| Bytes::from_static(fill));
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
        }
    }
}

/// Keeps the gauges and counters of a `--no-delay` request (which bypasses the engine)
/// true: it is running while this lives, and aborted if dropped before `complete`.
#[derive(Debug)]
pub(crate) struct Inflight {
    metrics: Arc<Metrics>,
    start: Instant,
    first: Option<Instant>,
    prompt_tokens: u32,
    generated: u32,
    done: bool,
}

impl Inflight {
    pub(crate) fn new(metrics: Arc<Metrics>, prompt_tokens: u32) -> Self {
        metrics.running.fetch_add(1, Relaxed);
        metrics
            .prompt_tokens
            .fetch_add(u64::from(prompt_tokens), Relaxed);
        Inflight {
            metrics,
            start: Instant::now(),
            first: None,
            prompt_tokens,
            generated: 0,
            done: false,
        }
    }

    fn token(&mut self) {
        if self.first.is_none() {
            let now = Instant::now();
            self.first = Some(now);
            self.metrics
                .first_token(now.saturating_duration_since(self.start).as_secs_f64());
        }
        self.generated += 1;
    }

    /// Account `n` tokens at once (non-streamed responses).
    pub(crate) fn tokens(&mut self, n: u32) {
        self.token();
        self.generated += n.saturating_sub(1);
    }

    /// Mark the request finished; returns its (real, tiny) timings. Durations are at
    /// least 1 ns so Ollama's fields stay present.
    pub(crate) fn complete(&mut self, finish: Finish) -> Timings {
        let now = Instant::now();
        let first = self.first.unwrap_or(now);
        let one = Duration::from_nanos(1);
        let t = Timings {
            load: Duration::ZERO,
            queue: Duration::ZERO,
            prefill: first.saturating_duration_since(self.start).max(one),
            decode: now.saturating_duration_since(first).max(one),
            total: now.saturating_duration_since(self.start).max(2 * one),
        };
        if !self.done {
            self.done = true;
            self.metrics.finished(
                Some(finish),
                Some(&Observed {
                    e2e_s: t.total.as_secs_f64(),
                    queue_s: 0.0,
                    prefill_s: t.prefill.as_secs_f64(),
                    decode_s: t.decode.as_secs_f64(),
                    prompt_tokens: self.prompt_tokens,
                    generation_tokens: self.generated,
                }),
            );
        }
        t
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.metrics.running.fetch_sub(1, Relaxed);
        self.metrics
            .generation_tokens
            .fetch_add(u64::from(self.generated), Relaxed);
        if !self.done {
            self.metrics.finished(None, None);
        }
    }
}

/// Where tokens come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// `--no-delay`: every token is ready at once.
    Instant(Inflight),
    /// The engine's channel.
    Engine(mpsc::UnboundedReceiver<Event>),
    /// The engine's channel, with its first event already received (Ollama writes no
    /// status line before its first chunk, so the handler waits for it).
    Primed(Option<Event>, mpsc::UnboundedReceiver<Event>),
    /// Nothing more will come (after a fault).
    Closed,
}

enum Next {
    Token,
    Done(Timings),
    Gone,
}

impl Source {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        emitted: u32,
        total: u32,
        f: Finish,
    ) -> Poll<Next> {
        match self {
            Source::Instant(inflight) => {
                if emitted < total {
                    inflight.token();
                    Poll::Ready(Next::Token)
                } else {
                    Poll::Ready(Next::Done(inflight.complete(f)))
                }
            }
            Source::Engine(rx) | Source::Primed(None, rx) => match ready!(rx.poll_recv(cx)) {
                Some(Event::Token) => Poll::Ready(Next::Token),
                Some(Event::Done(t)) => Poll::Ready(Next::Done(t)),
                None => Poll::Ready(Next::Gone),
            },
            Source::Primed(first, _) => match first.take() {
                Some(Event::Token) => Poll::Ready(Next::Token),
                Some(Event::Done(t)) => Poll::Ready(Next::Done(t)),
                None => Poll::Ready(Next::Gone),
            },
            Source::Closed => Poll::Ready(Next::Gone),
        }
    }
}

enum State {
    Tokens,
    Fault(FaultBody),
    End,
}

/// A streamed response (SSE or NDJSON) being produced.
pub(crate) struct TokenStream {
    tpl: render::Stream,
    src: Source,
    text: TextGen,
    emitted: u32,
    fault: Option<(u32, FaultKind)>,
    state: State,
    buf: BytesMut,
    ts: String,
    metrics: Arc<Metrics>,
    /// Timed (engine) tokens: every line / event is its own HTTP chunk, as the real
    /// servers write them. `--no-delay` batches what is ready into big frames.
    framed: bool,
    /// Frames still to send, in order.
    frames: VecDeque<Bytes>,
    /// Text of tokens held back to go with the next chunk (Ollama's chat).
    carry: Vec<u8>,
}

impl std::fmt::Debug for TokenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStream")
            .field("emitted", &self.emitted)
            .field("total", &self.tpl.ctx().completion_tokens)
            .finish_non_exhaustive()
    }
}

impl TokenStream {
    pub(crate) fn new(
        tpl: render::Stream,
        src: Source,
        text: TextGen,
        fault: Option<(u32, FaultKind)>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let framed = !matches!(src, Source::Instant(_));
        TokenStream {
            framed,
            frames: VecDeque::new(),
            carry: Vec::new(),
            tpl,
            src,
            text,
            emitted: 0,
            fault,
            state: State::Tokens,
            buf: BytesMut::with_capacity(8 * 1024),
            ts: String::new(),
            metrics,
        }
    }

    fn take_buf(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }

    /// Move the buffer into `frames`, one frame per line (NDJSON) or event (SSE).
    fn split_units(&mut self) {
        let sep: &[u8] = if self.tpl.ctx().wire.is_ndjson() {
            b"\n"
        } else {
            b"\n\n"
        };
        while !self.buf.is_empty() {
            let end =
                memchr::memmem::find(&self.buf, sep).map_or(self.buf.len(), |i| i + sep.len());
            self.frames.push_back(self.buf.split_to(end).freeze());
        }
    }

    fn start_fault(&mut self, kind: FaultKind) {
        self.metrics.fault(kind);
        if !matches!(kind, FaultKind::Garbage | FaultKind::InvalidUtf8) {
            self.src = Source::Closed;
        }
        self.state = match kind {
            FaultKind::StreamError | FaultKind::Error => {
                self.tpl.error_event(&mut self.buf);
                State::End
            }
            FaultKind::Drop => State::Fault(FaultBody::truncate(self.take_buf())),
            FaultKind::Garbage => {
                self.tpl.garbage(&mut self.buf);
                State::Tokens
            }
            FaultKind::Stall => State::Fault(FaultBody::stall(self.take_buf())),
            FaultKind::InvalidUtf8 => {
                self.tpl
                    .raw_chunk(&mut self.buf, b"\xff\xfe invalid", &self.ts);
                State::Tokens
            }
            FaultKind::EndlessEvent if !self.tpl.ctx().wire.is_ndjson() => {
                self.buf.extend_from_slice(b"data: {\"id\":\"\n");
                State::Fault(FaultBody::Endless {
                    pending: self.take_buf(),
                    fill: &EVENT_FILL,
                })
            }
            FaultKind::EndlessLine | FaultKind::EndlessEvent => {
                self.buf.extend_from_slice(self.tpl.endless_start());
                State::Fault(FaultBody::Endless {
                    pending: self.take_buf(),
                    fill: &LINE_FILL,
                })
            }
            // Handled when the stream ends.
            FaultKind::MissingDone => State::Tokens,
        };
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> PollFrame {
        let total = self.tpl.ctx().completion_tokens;
        let finish = self.tpl.ctx().finish;
        let mut ts_fresh = false;
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(f))));
            }
            match &mut self.state {
                State::Fault(f) => return f.poll(cx),
                State::End => return Poll::Ready(self.take_buf().map(|b| Ok(Frame::data(b)))),
                State::Tokens => {}
            }
            if self.buf.len() >= FRAME_BYTES {
                return Poll::Ready(Some(Ok(Frame::data(self.buf.split().freeze()))));
            }
            if let Some((after, kind)) = self.fault
                && after == self.emitted
            {
                self.fault = None;
                self.start_fault(kind);
                continue;
            }
            let next = match self.src.poll_next(cx, self.emitted, total, finish) {
                Poll::Ready(n) => n,
                Poll::Pending => {
                    return match self.take_buf() {
                        Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                        None => Poll::Pending,
                    };
                }
            };
            if !ts_fresh && self.tpl.needs_ts() {
                self.ts = now_rfc3339();
                ts_fresh = true;
            }
            match next {
                Next::Token => {
                    self.tpl.token(
                        &mut self.buf,
                        self.emitted,
                        &mut self.text,
                        &self.ts,
                        &mut self.carry,
                    );
                    self.emitted += 1;
                    if self.framed {
                        self.split_units();
                    }
                }
                Next::Done(t) => {
                    if matches!(self.fault, Some((_, FaultKind::MissingDone))) {
                        self.metrics.fault(FaultKind::MissingDone);
                        if !self.tpl.ctx().wire.is_ndjson() {
                            let mut trailer = BytesMut::new();
                            self.tpl.trailer(&mut trailer, &t, &self.ts);
                            let keep = trailer.len() - DONE_EVENT.len();
                            self.buf.extend_from_slice(&trailer[..keep]);
                        }
                    } else {
                        self.tpl.trailer(&mut self.buf, &t, &self.ts);
                        // vLLM writes its usage event and `[DONE]` one by one; Ollama's
                        // `/v1` writes finish, usage and `[DONE]` at once.
                        if self.framed && self.tpl.ctx().wire.shape() == render::Shape::Vllm {
                            self.split_units();
                        }
                    }
                    self.src = Source::Closed;
                    self.state = State::End;
                }
                Next::Gone => {
                    // The engine stopped (server shutting down): cut the stream.
                    self.state = State::Fault(FaultBody::truncate(self.take_buf()));
                }
            }
        }
    }
}
