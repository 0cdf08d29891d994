//! The workload flags of `run` (and `sweep`) into an [`Input`]: a request file, synthetic
//! prompts (lengths, shared prefix, calibration, a tokenizer file), or a ShareGPT-style dataset.

use std::path::Path;

use super::args::WorkloadArgs;
use crate::client::body::{GenRequest, Prompt, Sampling};
use crate::digest::sha256_hex;
use crate::error::Error;
use crate::load::source::{Input, Item, Synthetic};
use crate::load::tokenizer::TokenizerFile;

/// Conversations read from a dataset when `--num-requests` is not given (as `vllm bench
/// serve --num-prompts` defaults to).
pub const DEFAULT_DATASET_REQUESTS: u64 = 1000;

/// The input the flags describe, and the file as the user named it.
pub fn input(w: &WorkloadArgs) -> Result<(Input, Option<String>), Error> {
    let synthetic_only =
        w.input_tokens.is_some() || w.output_tokens.is_some() || w.shared_prefix.is_some();
    if let Some(t) = &w.tokenizer
        && !w.synthetic
    {
        return Err(Error::usage(format!(
            "--tokenizer {}: it sizes synthetic prompts; use it with --synthetic --input-tokens N --output-tokens M",
            t.display()
        )));
    }
    match (&w.input, w.synthetic, &w.sharegpt) {
        (Some(path), false, None) => {
            if synthetic_only {
                return Err(Error::usage(
                    "--input-tokens, --output-tokens and --shared-prefix are for --synthetic; with --input use --max-tokens",
                ));
            }
            Ok((Input::from_file(path)?, Some(path.display().to_string())))
        }
        (None, false, Some(path)) => {
            if synthetic_only {
                return Err(Error::usage(
                    "--input-tokens, --output-tokens and --shared-prefix are for --synthetic; with --sharegpt the lengths are the dataset's (--max-tokens caps the output)",
                ));
            }
            let limit = w.num_requests.unwrap_or(DEFAULT_DATASET_REQUESTS);
            Ok((sharegpt(path, limit)?, Some(path.display().to_string())))
        }
        (None, true, None) => {
            let (Some(i), Some(o)) = (w.input_tokens.clone(), w.output_tokens.clone()) else {
                return Err(Error::usage(
                    "--synthetic needs --input-tokens N and --output-tokens M, e.g. --synthetic --input-tokens 128 --output-tokens 256 (or MEAN:STDDEV, or @lengths.csv)",
                ));
            };
            if w.shared_prefix == Some(0) {
                return Err(Error::usage(
                    "--shared-prefix 0: give the tokens every prompt shares (at least 1), or leave it out for unique prompts",
                ));
            }
            if let Some(n) = w.shared_prefix
                && f64::from(n) >= i.mean()
            {
                return Err(Error::usage(format!(
                    "--shared-prefix {n}: must be shorter than the prompts (--input-tokens mean {}), or no prompt has a part of its own",
                    i.mean()
                )));
            }
            Ok((
                Input::Synthetic(Synthetic {
                    input: i,
                    output: o,
                    seed: w.seed,
                    shared_prefix: w.shared_prefix,
                    calibrate: w.calibrate,
                    tokenizer: match &w.tokenizer {
                        Some(p) => Some(TokenizerFile::load(p)?),
                        None => None,
                    },
                }),
                None,
            ))
        }
        _ => Err(Error::usage(
            "give the requests: --input FILE (JSONL), --sharegpt FILE (a conversation dataset), or --synthetic --input-tokens N --output-tokens M",
        )),
    }
}

/// The first human turn of up to `limit` conversations, each asking for the reply's
/// length in words (a limit, not an exact length: the model may stop sooner). The
/// identity is the sha256 of the requests taken, so two runs of the same prompts pair.
fn sharegpt(path: &Path, limit: u64) -> Result<Input, Error> {
    let d = crate::ingest::dataset::read_sharegpt(path, limit)?;
    if d.prompts.is_empty() {
        return Err(Error::input(
            path,
            format!(
                "--sharegpt: no conversation starts with a human turn followed by a reply ({} passed over)",
                d.skipped
            ),
        ));
    }
    let mut desc = String::from("benchkeep-sharegpt-v1\n");
    let items: Vec<Item> = d
        .prompts
        .into_iter()
        .map(|p| {
            let max = u64::from(p.reply_words.max(1));
            desc.push_str(&serde_json::json!([p.prompt, max]).to_string());
            desc.push('\n');
            Item {
                custom_id: None,
                request: GenRequest {
                    prompt: Prompt::Text(p.prompt),
                    max_tokens: Some(max),
                    exact: false,
                    sampling: Sampling::default(),
                    extra: Default::default(),
                },
            }
        })
        .collect();
    Ok(Input::File {
        path: path.to_path_buf(),
        items: items.into(),
        sha256: sha256_hex(&desc),
    })
}
