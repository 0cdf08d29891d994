//! Prompt calibration with a local tokenizer (`--tokenizer FILE`, `method: tokenizer`).
//!
//! The prompt *text* is counted locally by the tokenizer (no server call, so many prompts
//! per length: [`TOKENIZER_SAMPLES`]); the line `tokens = a + b x words` is fitted over a
//! short and a long length and checked at the words solved for the target, as the server
//! calibration does, and the final line is moved to pass through the last check (the
//! count near the target matters, not far from it).
//!
//! A `tokenizer.json` has no chat template, so the template's tokens are learnt from the
//! server when calibration is on: its count of the same prompts (`/tokenize`, else 1-token
//! probes) minus the tokenizer's, averaged (`template_tokens`). With `--calibrate off` the
//! server is not asked and the template is not counted (`template_tokens: null`): the
//! prompts then hold `--input-tokens` tokens of text. A server that cannot give a count
//! does not stop the run either: the template is not counted, and `template_error` says why.

use serde_json::{Map, Value, json};

use super::{
    Calibration, MAX_VERIFY, Method, PROBE_BASE, SHORT_WORDS, TOKENIZE_SAMPLES, Target,
    USAGE_SAMPLES, fit, probe_usage, prompt_text, tokenize,
};
use crate::error::Error;
use crate::load::synthetic::{Sizing, Synthetic};
use crate::load::tokenizer::TokenizerFile;

/// Prompts counted by the tokenizer per probe length (local and cheap).
pub const TOKENIZER_SAMPLES: u64 = 32;
/// Index space of the template probes (inside the calibration's, past its own probes).
const TEMPLATE_BASE: u64 = PROBE_BASE + (1 << 40);

/// Size `spec`'s prompts with `tok`; with `server` (calibration on), also learn the chat
/// template's tokens from the server.
pub async fn calibrate_with_tokenizer(
    server: Option<&Target<'_>>,
    spec: &Synthetic,
    tok: &TokenizerFile,
    nonce: u64,
) -> Result<Calibration, Error> {
    let sizing0 = Sizing {
        nonce: Some(nonce),
        ..Sizing::default()
    };
    let target = spec.input.mean();
    let mut k = 0u64;
    // The tokenizer's mean count over several prompts of `words` words.
    let mut count = |words: u32| -> Result<f64, Error> {
        let mut sum = 0.0;
        for _ in 0..TOKENIZER_SAMPLES {
            k += 1;
            let req = spec.request_of(&sizing0, PROBE_BASE + k, words, 1);
            sum += f64::from(tok.count(&prompt_text(&req))?);
        }
        Ok(sum / TOKENIZER_SAMPLES as f64)
    };
    let mut probes: Vec<(u32, f64)> = Vec::new();
    let long = (2.0 * target).round().clamp(64.0, 256.0) as u32;
    for words in [SHORT_WORDS, long] {
        probes.push((words, count(words)?));
    }
    let no_line = |probes: &[(u32, f64)]| {
        Error::Server(format!(
            "prompt calibration: the tokenizer {}'s counts do not grow with the prompt ({})",
            tok.name(),
            probes
                .iter()
                .map(|(w, t)| format!("{t:.1} tokens for {w} words"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let mut line = fit(&probes).ok_or_else(|| no_line(&probes))?;

    let mut extra = Map::new();
    extra.insert("tokenizer".into(), tok.describe());
    let mut server_load_ms = None;
    let template = match server {
        None => {
            extra.insert("template_tokens".into(), Value::Null);
            extra.insert(
                "template_error".into(),
                json!("not counted: --calibrate off asks the server nothing"),
            );
            0.0
        }
        Some(t) => {
            let words = super::words_for(line, target);
            match template_tokens(t, spec, &sizing0, words, tok).await {
                Ok((x, how, load_ns)) => {
                    extra.insert("template_tokens".into(), json!(crate::schema::round(x, 4)));
                    extra.insert("template_method".into(), json!(how.name()));
                    server_load_ms = load_ns.map(|ns| ns as f64 / 1e6);
                    x
                }
                Err(e) => {
                    eprintln!(
                        "warning: {e}; the chat template's tokens are not counted (prompts hold --input-tokens tokens of text)"
                    );
                    extra.insert("template_tokens".into(), Value::Null);
                    extra.insert("template_error".into(), json!(e.to_string()));
                    0.0
                }
            }
        }
    };

    // The text's share of the target, checked at the solved length.
    let text_target = (target - template).max(1.0);
    let mut last = None;
    for _ in 0..MAX_VERIFY {
        let words = super::words_for(line, text_target);
        if let Some(p) = probes.iter().find(|(w, _)| *w == words) {
            last = Some(*p);
            break;
        }
        let n = count(words)?;
        probes.push((words, n));
        last = Some((words, n));
        line = fit(&probes).ok_or_else(|| no_line(&probes))?;
        if (n - text_target).abs() <= (0.01 * text_target).max(0.5) {
            break;
        }
    }
    // Through the count nearest the target, with the fitted slope.
    let overhead = last.map_or(line.0, |(w, n)| n - line.1 * f64::from(w));
    Ok(Calibration {
        method: Method::Tokenizer,
        sizing: Sizing {
            tokens_per_word: line.1,
            overhead: overhead + template,
            nonce: Some(nonce),
        },
        target,
        probes,
        error: None,
        server_load_ms,
        extra,
    })
}

/// The server's count minus the tokenizer's for the same prompts of `words` words, the
/// method used, and the model load the probes reported (ns).
async fn template_tokens(
    t: &Target<'_>,
    spec: &Synthetic,
    sizing0: &Sizing,
    words: u32,
    tok: &TokenizerFile,
) -> Result<(f64, Method, Option<u64>), Error> {
    let (mut sum, mut n, mut j) = (0.0, 0u64, 0u64);
    let mut method = Method::Tokenize;
    let mut load_ns: Option<u64> = None;
    while n < if method == Method::Tokenize {
        TOKENIZE_SAMPLES
    } else {
        USAGE_SAMPLES
    } {
        j += 1;
        let req = spec.request_of(sizing0, TEMPLATE_BASE + j, words, 1);
        let text = prompt_text(&req);
        let counted = if method == Method::Tokenize {
            tokenize(t, &text).await
        } else {
            None
        };
        let server = match counted {
            Some(c) => c,
            None if method == Method::Tokenize && n > 0 => {
                return Err(Error::Server(
                    "prompt calibration: /tokenize answered, then stopped answering".into(),
                ));
            }
            _ => {
                method = Method::ProbeUsage;
                let (c, load) = probe_usage(t, &req, words).await?;
                if let Some(ns) = load {
                    load_ns = Some(load_ns.unwrap_or(0).saturating_add(ns));
                }
                c
            }
        };
        sum += f64::from(server) - f64::from(tok.count(&text)?);
        n += 1;
    }
    Ok((sum / n as f64, method, load_ns))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::load::tokenizer::CountTokens;

    /// One token a character (spaces aside) and a BOS: nothing like one token a word.
    struct Chars;
    impl CountTokens for Chars {
        fn count(&self, text: &str) -> Result<u32, String> {
            Ok(1 + text.chars().filter(|c| !c.is_whitespace()).count() as u32)
        }
    }

    #[tokio::test]
    async fn prompts_hit_the_target_under_the_tokenizer() {
        let tok = TokenizerFile::new("chars.json", "ab", 1, Arc::new(Chars));
        for target in [32, 128, 512] {
            let spec = Synthetic::fixed(target, 4, 11);
            let c = calibrate_with_tokenizer(None, &spec, &tok, 5)
                .await
                .unwrap();
            assert_eq!(c.method, Method::Tokenizer);
            let n = 400;
            let total: u64 = (0..n)
                .map(|i| {
                    let req = spec.request(i, &c.sizing);
                    u64::from(Chars.count(&prompt_text(&req)).unwrap())
                })
                .sum();
            let mean = total as f64 / n as f64;
            let err = (mean - f64::from(target)).abs() / f64::from(target);
            assert!(err < 0.02, "target {target}: mean {mean} ({c:?})");
            let words = (0..n)
                .map(|i| u64::from(spec.words_for(&c.sizing, target, i)))
                .sum::<u64>() as f64
                / n as f64;
            assert!(
                words < f64::from(target) / 2.0,
                "{words} words: not word-sized"
            );
            let v = c.to_json();
            assert_eq!(v["method"], "tokenizer");
            assert_eq!(v["tokenizer"]["file"], "chars.json");
            assert_eq!(v["template_tokens"], Value::Null);
        }
    }
}
