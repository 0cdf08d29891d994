//! `benchkeep requests --synthetic ...` or `--sharegpt FILE`: write a request file as OpenAI
//! Batch input lines (`{"custom_id","method","url","body"}`), with the prompts `run
//! --synthetic --calibrate off` sends (one word per token; no server to calibrate against
//! here) or the first human turns of a local conversation dataset, for `run --input`,
//! `vllm run-batch -i` and any OpenAI Batch tool.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::error::{Error, exit};
use crate::load::source::Synthetic;
use crate::store::{Store, atomic, outfile};

#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Generate synthetic prompts (as `run --synthetic --calibrate off`: one word a token).
    #[arg(
        long,
        required_unless_present = "sharegpt",
        conflicts_with = "sharegpt"
    )]
    pub synthetic: bool,
    /// Take the prompts from a local ShareGPT-style dataset (a JSON array of
    /// `{"conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}`): the first human
    /// turn of each conversation; the output length is --output-tokens, else the words of
    /// the reply that followed (a tokenizer-free stand-in).
    #[arg(long, value_name = "FILE", conflicts_with = "input_tokens")]
    pub sharegpt: Option<PathBuf>,
    /// Requests to write.
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub num_requests: u64,
    /// Prompt length, in tokens (words); default 128.
    #[arg(long, value_name = "N")]
    pub input_tokens: Option<u32>,
    /// Output tokens each request asks for (max_tokens; also min_tokens and ignore_eos,
    /// so vLLM generates exactly this many); default 128 (--synthetic), the reply's words
    /// (--sharegpt).
    #[arg(long, value_name = "M")]
    pub output_tokens: Option<u32>,
    /// Seed of the prompts (the same as `run --synthetic --seed`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The "model" field of each body (vllm run-batch needs it); left out when not given.
    #[arg(long)]
    pub model: Option<String>,
    /// The endpoint of each line.
    #[arg(long, default_value = "/v1/chat/completions", value_parser = ["/v1/chat/completions", "/v1/completions"])]
    pub url: String,
    /// Write here (never over an existing file); `-` or no flag: stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Upper bound on `--num-requests` (a file of that many lines is already many GB).
const MAX_REQUESTS: u64 = 10_000_000;

pub fn run(store: &Store, args: RequestsArgs) -> Result<i32> {
    if args.num_requests == 0 || args.num_requests > MAX_REQUESTS {
        return Err(Error::usage(format!(
            "--num-requests {}: give 1 to {MAX_REQUESTS}",
            args.num_requests
        ))
        .into());
    }
    if args.input_tokens == Some(0) || args.output_tokens == Some(0) {
        return Err(Error::usage("--input-tokens and --output-tokens must be at least 1").into());
    }
    let spec = Synthetic::fixed(
        args.input_tokens.unwrap_or(128),
        args.output_tokens.unwrap_or(128),
        args.seed,
    );
    let dataset = match &args.sharegpt {
        Some(path) => {
            let d = crate::ingest::dataset::read_sharegpt(path, args.num_requests)?;
            if d.prompts.is_empty() {
                return Err(Error::usage(format!(
                    "--sharegpt {}: no conversation starts with a human turn followed by a reply ({} passed over)",
                    path.display(),
                    d.skipped
                ))
                .into());
            }
            Some(d)
        }
        None => None,
    };
    let count = dataset
        .as_ref()
        .map_or(args.num_requests, |d| d.prompts.len() as u64);
    let mut text = String::new();
    for i in 0..count {
        let (prompt, output_tokens) = match &dataset {
            Some(d) => {
                let p = &d.prompts[i as usize];
                (
                    p.prompt.clone(),
                    args.output_tokens.unwrap_or(p.reply_words.max(1)),
                )
            }
            None => (spec.prompt(i), spec.output_len(i)),
        };
        let mut body = if args.url == "/v1/completions" {
            json!({ "prompt": prompt })
        } else {
            json!({ "messages": [{ "role": "user", "content": prompt }] })
        };
        if let Some(model) = &args.model {
            body["model"] = json!(model);
        }
        body["max_tokens"] = json!(output_tokens);
        body["min_tokens"] = json!(output_tokens);
        body["ignore_eos"] = json!(true);
        let line = json!({
            "custom_id": format!("request-{i}"),
            "method": "POST",
            "url": args.url,
            "body": body,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    match args.out.as_deref() {
        None => crate::cli::print_out(&text)?,
        Some(p) if p.as_os_str() == "-" => crate::cli::print_out(&text)?,
        Some(p) => {
            outfile::refuse_store_path(store, p, "--out")?;
            match atomic::publish_new(p, text.as_bytes()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::usage(format!(
                        "--out {}: the file exists; benchkeep never overwrites a request file (runs are paired by its sha256). Choose another name",
                        p.display()
                    ))
                    .into());
                }
                Err(e) => {
                    return Err(
                        Error::usage(format!("--out {}: cannot write: {e}", p.display())).into(),
                    );
                }
            }
            let mut err = std::io::stderr().lock();
            let _ = match &dataset {
                Some(d) => writeln!(
                    err,
                    "wrote {count} requests (first human turns of {}; {} conversations passed over) to {}",
                    args.sharegpt.as_deref().unwrap_or(p).display(),
                    d.skipped,
                    p.display()
                ),
                None => writeln!(
                    err,
                    "wrote {count} requests ({} prompt / {} output tokens, seed {}) to {}",
                    spec.input.identity(),
                    spec.output.identity(),
                    args.seed,
                    p.display()
                ),
            };
        }
    }
    Ok(exit::OK)
}
