//! A lean load client for `scripts/bench_sim.sh`: keeps N HTTP/1.1 connections busy
//! with streamed chat requests against the simulator and counts SSE events (`\n\n`)
//! without parsing JSON, so one core of client can outrun one core of server.
//!
//! ```text
//! cargo run --release --example sim_load -- --addr 127.0.0.1:8000 \
//!     --concurrency 64 --tokens 256 --seconds 10
//! ```
//! Prints one JSON line with responses, events, content chunks and chunks per second.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Args {
    addr: String,
    concurrency: usize,
    tokens: u32,
    seconds: f64,
    model: String,
    path: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        addr: "127.0.0.1:8000".into(),
        concurrency: 64,
        tokens: 256,
        seconds: 10.0,
        model: "sim-model".into(),
        path: "/v1/chat/completions".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--tokens" => a.tokens = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--model" => a.model = value()?,
            "--path" => a.path = value()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

#[derive(Default, Clone, Copy)]
struct Count {
    responses: u64,
    events: u64,
    bytes: u64,
}

/// Count `\n\n` event terminators, including one split across frames.
fn count_events(data: &[u8], last_was_nl: &mut bool) -> u64 {
    let mut n = memchr::memmem::find_iter(data, b"\n\n").count() as u64;
    if *last_was_nl && data.first() == Some(&b'\n') {
        n += 1;
    }
    if let Some(&b) = data.last() {
        *last_was_nl = b == b'\n';
    }
    n
}

async fn worker(addr: String, path: String, body: Bytes, stop: Instant) -> anyhow::Result<Count> {
    let stream = TcpStream::connect(&addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut c = Count::default();
    while Instant::now() < stop {
        let req = Request::post(path.as_str())
            .header("host", addr.as_str())
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let resp = sender.send_request(req).await?;
        if !resp.status().is_success() {
            bail!("HTTP {}", resp.status());
        }
        let mut b = resp.into_body();
        let mut last_nl = false;
        while let Some(frame) = b.frame().await {
            if let Ok(data) = frame?.into_data() {
                c.bytes += data.len() as u64;
                c.events += count_events(&data, &mut last_nl);
            }
        }
        c.responses += 1;
    }
    Ok(c)
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let body = Bytes::from(
        serde_json::json!({
            "model": a.model,
            "messages": [{"role": "user", "content": "count to a big number"}],
            "max_tokens": a.tokens,
            "ignore_eos": true,
            "stream": true,
        })
        .to_string(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (total, elapsed) = rt.block_on(async {
        let start = Instant::now();
        let stop = start + Duration::from_secs_f64(a.seconds);
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency {
            tasks.push(tokio::spawn(worker(
                a.addr.clone(),
                a.path.clone(),
                body.clone(),
                stop,
            )));
        }
        let mut total = Count::default();
        for t in tasks {
            let c = t.await??;
            total.responses += c.responses;
            total.events += c.events;
            total.bytes += c.bytes;
        }
        anyhow::Ok((total, start.elapsed()))
    })?;
    // Each chat stream has a role chunk and `[DONE]` besides its content chunks.
    let content = total.events.saturating_sub(2 * total.responses);
    let secs = elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "seconds": (secs * 1000.0).round() / 1000.0,
            "concurrency": a.concurrency,
            "tokens_per_response": a.tokens,
            "responses": total.responses,
            "events": total.events,
            "content_chunks": content,
            "content_chunks_per_s": (content as f64 / secs).round(),
            "mib_per_s": ((total.bytes as f64 / secs / 1048576.0) * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
