//! `benchkeep requests --synthetic ...`: write a request file as OpenAI Batch input lines
//! (`{"custom_id","method","url","body"}`), with the same prompts `run --synthetic` sends,
//! for `run --input`, `vllm run-batch -i` and any OpenAI Batch tool.

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
    /// Generate synthetic prompts (the only source for now; the flag says so explicitly).
    #[arg(long, required = true)]
    pub synthetic: bool,
    /// Requests to write.
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub num_requests: u64,
    /// Prompt length, in tokens (words).
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub input_tokens: u32,
    /// Output tokens each request asks for (max_tokens; also min_tokens and ignore_eos,
    /// so vLLM generates exactly this many).
    #[arg(long, value_name = "M", default_value_t = 128)]
    pub output_tokens: u32,
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
    if args.input_tokens == 0 || args.output_tokens == 0 {
        return Err(Error::usage("--input-tokens and --output-tokens must be at least 1").into());
    }
    let spec = Synthetic {
        input_tokens: args.input_tokens,
        output_tokens: args.output_tokens,
        seed: args.seed,
    };
    let mut text = String::new();
    for i in 0..args.num_requests {
        let prompt = spec.prompt(i);
        let mut body = if args.url == "/v1/completions" {
            json!({ "prompt": prompt })
        } else {
            json!({ "messages": [{ "role": "user", "content": prompt }] })
        };
        if let Some(model) = &args.model {
            body["model"] = json!(model);
        }
        body["max_tokens"] = json!(args.output_tokens);
        body["min_tokens"] = json!(args.output_tokens);
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
            let _ = writeln!(
                err,
                "wrote {} requests ({} prompt / {} output tokens, seed {}) to {}",
                args.num_requests,
                args.input_tokens,
                args.output_tokens,
                args.seed,
                p.display()
            );
        }
    }
    Ok(exit::OK)
}
