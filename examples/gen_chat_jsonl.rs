//! Write a large results file of vLLM-style `chat.completion` lines, for the `analyze`
//! performance benchmark (`scripts/bench_analyze.sh`).
//!
//! Usage: `cargo run --release --example gen_chat_jsonl -- OUT.jsonl [LINES]`
//! (default 500,000 lines, about 530 MB). Lines look like what vLLM 0.32's OpenAI server
//! returns (FORMATS.md §1.2, §10): id, object, created, model, one choice with a message of
//! a few hundred characters, finish_reason, usage, and vLLM's null extras. The content is
//! pseudo-random but deterministic, so every run writes the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "model",
    "token",
    "cache",
    "batch",
    "latency",
    "throughput",
    "request",
    "memory",
    "GPU",
    "server",
    "prefill",
    "decode",
    "attention",
    "kernel",
    "quantized",
    "context",
    "window",
    "prompt",
    "answer",
    "because",
    "however",
    "therefore",
    "example",
    "result",
    "number",
    "value",
    "first",
    "second",
    "paris",
    "france",
    "capital",
    "river",
    "north",
    "south",
    "water",
];

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: gen_chat_jsonl OUT.jsonl [LINES]");
        std::process::exit(2);
    };
    let lines: u64 = match args.next() {
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("LINES must be a number, got {n:?}");
            std::process::exit(2)
        }),
        None => 500_000,
    };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut content = String::with_capacity(1024);
    for i in 0..lines {
        content.clear();
        let target = 390 + rng.below(120) as usize;
        while content.len() < target {
            if !content.is_empty() {
                content.push(' ');
            }
            content.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            if rng.below(12) == 0 {
                content.push_str(".\\n");
            }
        }
        let prompt = 200 + rng.below(1000);
        let completion = 50 + rng.below(450);
        let finish = if i % 7 == 0 { "length" } else { "stop" };
        writeln!(
            w,
            "{{\"id\":\"chatcmpl-{:016x}{:016x}\",\"object\":\"chat.completion\",\"created\":{},\"model\":\"google/gemma-3-4b-it\",\
\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{content}\",\"refusal\":null,\"annotations\":null,\
\"audio\":null,\"function_call\":null,\"tool_calls\":[],\"reasoning\":null,\"reasoning_content\":null}},\"logprobs\":null,\
\"finish_reason\":\"{finish}\",\"stop_reason\":null,\"token_ids\":null}}],\"service_tier\":null,\"system_fingerprint\":null,\
\"usage\":{{\"prompt_tokens\":{prompt},\"total_tokens\":{},\"completion_tokens\":{completion},\"prompt_tokens_details\":null}},\
\"prompt_logprobs\":null,\"prompt_token_ids\":null,\"kv_transfer_params\":null}}",
            rng.next(),
            rng.next(),
            1_767_225_600 + i / 50,
            prompt + completion,
        )?;
    }
    w.flush()?;
    Ok(())
}
