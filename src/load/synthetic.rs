//! Synthetic prompts: per request, a target length in tokens (fixed or drawn from a
//! distribution, `lengths.rs`), turned into a number of words by the server's own
//! tokens-per-word and template overhead ([`Sizing`], learnt by `calibrate.rs`), and
//! filled with common words, deterministic in (seed, request index).
//!
//! Every prompt starts with a head of [`HEAD_WORDS`] words drawn from the run's nonce and
//! the request index, so no two requests of a run, and no two runs, share a prefix that a
//! prefix cache could serve; `--shared-prefix N` puts N tokens of words common to every
//! request (and every run with the same seed) before that head, to measure the cache.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::lengths::{Lengths, unit};
use super::tokenizer::TokenizerFile;
use crate::client::body::{GenRequest, Prompt, Sampling};
use crate::digest::sha256_hex;

/// Words of synthetic prompts: short and common, about one token each for most tokenizers
/// (and exactly one for the built-in simulator's default). One word a line in
/// `words.txt`; their order is part of every synthetic workload's identity.
static WORDS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("words.txt").split_whitespace().collect());

/// Words at the start of every prompt (after a shared prefix) drawn from the run's nonce:
/// 240^3 = 13.8 million heads, common words so their token count is as steady as the rest.
pub const HEAD_WORDS: u32 = 3;

/// A synthetic workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// Prompt length of each request, in the server's tokens (chat template included).
    pub input: Lengths,
    /// Output tokens each request asks for (exactly, where the server allows).
    pub output: Lengths,
    pub seed: u64,
    /// Tokens of words common to every request at the start of each prompt.
    pub shared_prefix: Option<u32>,
    /// Size the prompts by the server's count (probes before the run); `false`: one word
    /// per token, as benchkeep did before calibration.
    pub calibrate: bool,
    /// `--tokenizer FILE`: count the prompt text with this tokenizer (the server then only
    /// tells the chat template's tokens, when `calibrate` is on).
    pub tokenizer: Option<TokenizerFile>,
}

/// How many words make a number of tokens on the target server, and the run's nonce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// Tokens per word of the prompt (the slope of the server's count).
    pub tokens_per_word: f64,
    /// Tokens the server counts beyond the words (chat template, special tokens).
    pub overhead: f64,
    /// Drawn once per run: the unique heads of its prompts. `None`: no head (the prompts
    /// of `requests --synthetic`, as before heads existed: all words from the seed).
    pub nonce: Option<u64>,
}

impl Default for Sizing {
    /// One token a word, no overhead, no head.
    fn default() -> Self {
        Sizing {
            tokens_per_word: 1.0,
            overhead: 0.0,
            nonce: None,
        }
    }
}

fn rng(seed: u64, index: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(
        seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
    )
}

fn push_words(s: &mut String, rng: &mut Xoshiro256PlusPlus, n: u32) {
    for _ in 0..n {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
    }
}

impl Synthetic {
    /// Fixed lengths, unique prefixes, calibrated.
    pub fn fixed(input_tokens: u32, output_tokens: u32, seed: u64) -> Synthetic {
        Synthetic {
            input: Lengths::Fixed(input_tokens),
            output: Lengths::Fixed(output_tokens),
            seed,
            shared_prefix: None,
            calibrate: true,
            tokenizer: None,
        }
    }

    /// The prompt length request `index` aims at, in tokens.
    pub fn input_target(&self, index: u64) -> u32 {
        self.input.sample(self.seed, index, 0)
    }

    /// The output length request `index` asks for.
    pub fn output_len(&self, index: u64) -> u32 {
        self.output.sample(self.seed, index, 1)
    }

    /// Words to send for a `tokens`-token prompt: `(tokens - overhead) / tokens_per_word`,
    /// rounded down or up at random in proportion to the fraction (so the mean over many
    /// requests is the exact solution), at least 1.
    pub fn words_for(&self, sizing: &Sizing, tokens: u32, index: u64) -> u32 {
        let x = ((f64::from(tokens) - sizing.overhead) / sizing.tokens_per_word).max(1.0);
        let floor = x.floor();
        let up = unit(&mut rng(self.seed, index, 2)) < x - floor;
        (floor as u32).saturating_add(u32::from(up)).max(1)
    }

    /// The prompt of request `index` with `words` words: the shared prefix (if any), the
    /// unique head, then words drawn from (seed, index).
    pub fn prompt_of(&self, sizing: &Sizing, index: u64, words: u32) -> String {
        let shared = self.shared_prefix.map_or(0, |n| {
            ((f64::from(n) / sizing.tokens_per_word).round() as u32).min(words)
        });
        let head = sizing.nonce.map_or(0, |_| HEAD_WORDS.min(words - shared));
        let mut s = String::with_capacity(words as usize * 6);
        push_words(&mut s, &mut rng(self.seed, 0, 3), shared);
        push_words(&mut s, &mut rng(sizing.nonce.unwrap_or(0), index, 4), head);
        push_words(&mut s, &mut rng(self.seed, index, 0), words - shared - head);
        s
    }

    /// The prompt of request `index` at one word a token, without a unique head
    /// (`requests --synthetic`: the same file for the same flags).
    pub fn prompt(&self, index: u64) -> String {
        let sizing = Sizing::default();
        let words = self.words_for(&sizing, self.input_target(index), index);
        self.prompt_of(&sizing, index, words)
    }

    /// Request `index` as sized for the server.
    pub fn request(&self, index: u64, sizing: &Sizing) -> GenRequest {
        let words = self.words_for(sizing, self.input_target(index), index);
        self.request_of(sizing, index, words, self.output_len(index))
    }

    /// Request `index` with `words` words, asking for `output` tokens.
    pub fn request_of(&self, sizing: &Sizing, index: u64, words: u32, output: u32) -> GenRequest {
        GenRequest {
            prompt: Prompt::Text(self.prompt_of(sizing, index, words)),
            max_tokens: Some(u64::from(output)),
            exact: true,
            sampling: Sampling::default(),
            extra: Default::default(),
        }
    }

    /// The workload actually sent: `--max-tokens` replaces the output length.
    pub fn effective(&self, max_tokens: Option<u64>) -> Synthetic {
        let mut s = self.clone();
        if let Some(m) = max_tokens {
            s.output = Lengths::Fixed(m.min(u32::MAX as u64) as u32);
        }
        s
    }

    /// sha256 of the canonical description of the workload (`num_requests` of `None`:
    /// open-ended, as in a `--duration` run). The lengths' distributions, the shared
    /// prefix and how prompts are sized (the server's count, words, or a tokenizer file by
    /// its sha256) are part of it; the
    /// run's nonce is not (two runs of one workload pair in the head-to-head).
    pub fn sha256(&self, num_requests: Option<u64>) -> String {
        let n = num_requests.map_or_else(|| "unbounded".to_string(), |n| n.to_string());
        let desc = format!(
            "benchkeep-synthetic-v2\ninput_tokens={}\noutput_tokens={}\nnum_requests={n}\nseed={}\nshared_prefix={}\nsizing={}\n",
            self.input.identity(),
            self.output.identity(),
            self.seed,
            self.shared_prefix
                .map_or_else(|| "none".to_string(), |p| p.to_string()),
            match (&self.tokenizer, self.calibrate) {
                (Some(t), true) => format!("tokenizer:{}+server-template", t.sha256()),
                (Some(t), false) => format!("tokenizer:{}", t.sha256()),
                (None, true) => "server-tokens".to_string(),
                (None, false) => "words".to_string(),
            },
        );
        sha256_hex(&desc)
    }

    /// `test.synthetic` in the metadata.
    pub fn describe(&self, sizing: &Sizing) -> Value {
        json!({
            "input_tokens": self.input.describe(),
            "output_tokens": self.output.describe(),
            "seed": self.seed,
            "prefix": if self.shared_prefix.is_some() { "shared" } else { "unique" },
            "shared_prefix_tokens": self.shared_prefix,
            "nonce": sizing.nonce.map(|n| format!("{n:016x}")),
            "calibrate": self.calibrate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        s.split(' ').collect()
    }

    #[test]
    fn sized_prompts_have_unique_heads_and_shared_prefixes() {
        let s = Synthetic::fixed(32, 16, 7);
        let plain = Sizing::default();
        assert_eq!(s.prompt(3), s.prompt(3));
        assert_ne!(s.prompt(3), s.prompt(4));
        assert_eq!(words(&s.prompt(3)).len(), 32, "one word a token");
        let run_a = Sizing {
            nonce: Some(1),
            ..plain
        };
        let run_b = Sizing {
            nonce: Some(2),
            ..plain
        };
        let (a, b) = (s.prompt_of(&run_a, 3, 32), s.prompt_of(&run_b, 3, 32));
        assert_ne!(words(&a)[..3], words(&b)[..3], "another run, another head");
        assert_eq!(words(&a)[3..], words(&b)[3..], "the rest is the seed's");

        let shared = Synthetic {
            shared_prefix: Some(10),
            ..s.clone()
        };
        let scaled = Sizing {
            tokens_per_word: 2.0,
            overhead: 0.0,
            nonce: Some(1),
        };
        let (p, q) = (
            shared.prompt_of(&scaled, 1, 20),
            shared.prompt_of(&scaled, 2, 20),
        );
        assert_eq!(
            words(&p)[..5],
            words(&q)[..5],
            "10 tokens = 5 words in common"
        );
        assert_ne!(words(&p)[5..8], words(&q)[5..8]);
        assert_eq!(words(&p).len(), 20);
    }

    #[test]
    fn words_for_hits_the_mean() {
        let s = Synthetic::fixed(32, 16, 0);
        let sizing = Sizing {
            tokens_per_word: 1.3,
            overhead: 7.0,
            nonce: None,
        };
        // (32 - 7) / 1.3 = 19.23 words: 19 or 20, 20 about a quarter of the time
        let n = 4000;
        let total: u32 = (0..n).map(|i| s.words_for(&sizing, 32, i)).sum();
        let mean = f64::from(total) / n as f64;
        assert!((mean - 19.2308).abs() < 0.03, "{mean}");
        assert!((0..n).all(|i| (19..=20).contains(&s.words_for(&sizing, 32, i))));
        assert_eq!(s.words_for(&sizing, 2, 0), 1, "at least one word");
    }

    #[test]
    fn identity_covers_what_is_sent() {
        let s = Synthetic::fixed(32, 16, 7);
        assert_eq!(s.sha256(Some(10)), s.sha256(Some(10)));
        assert_ne!(s.sha256(Some(10)), s.sha256(Some(11)));
        let normal = Synthetic {
            input: Lengths::Normal {
                mean: 32.0,
                stddev: 4.0,
            },
            ..s.clone()
        };
        let shared = Synthetic {
            shared_prefix: Some(8),
            ..s.clone()
        };
        let words = Synthetic {
            calibrate: false,
            ..s.clone()
        };
        struct Words;
        impl crate::load::tokenizer::CountTokens for Words {
            fn count(&self, text: &str) -> Result<u32, String> {
                Ok(text.split_whitespace().count() as u32)
            }
        }
        let tok = |sha: &str| {
            Some(TokenizerFile::new(
                "t.json",
                sha,
                1,
                std::sync::Arc::new(Words),
            ))
        };
        let tokenized = Synthetic {
            tokenizer: tok("aa"),
            ..s.clone()
        };
        let other_file = Synthetic {
            tokenizer: tok("bb"),
            ..s.clone()
        };
        let text_only = Synthetic {
            calibrate: false,
            ..tokenized.clone()
        };
        assert_ne!(tokenized.sha256(Some(10)), other_file.sha256(Some(10)));
        for other in [normal, shared, words, tokenized, text_only] {
            assert_ne!(other.sha256(Some(10)), s.sha256(Some(10)), "{other:?}");
        }
    }
}
