//! The simulator's prompt-token count: words scaled by a tokens-per-word factor, plus the
//! tokens a chat template adds, so that a client calibrating its prompts against the
//! simulator has a count to find that is not the word count (real tokenizers and chat
//! templates are not one token a word either).
//!
//! One rule everywhere a prompt is counted: `usage.prompt_tokens` of the OpenAI layer,
//! Ollama's `prompt_eval_count`, and vLLM's `POST /tokenize`. Defaults (1.0 and 0) keep
//! the count equal to the word count.

/// How the simulator turns a prompt's words into its token count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenModel {
    /// Tokens per whitespace-separated word: a text of `w` words counts
    /// `round(w * tokens_per_word)` tokens (at least 1 for a non-empty text).
    pub tokens_per_word: f64,
    /// Tokens the chat template adds to a templated prompt (chat requests, Ollama's
    /// `/api/generate`, `/tokenize` with `messages`); a raw `/v1/completions` prompt has none.
    pub template_tokens: u32,
}

impl Default for TokenModel {
    fn default() -> Self {
        TokenModel {
            tokens_per_word: 1.0,
            template_tokens: 0,
        }
    }
}

/// Largest accepted `--tokens-per-word`.
pub const MAX_TOKENS_PER_WORD: f64 = 16.0;

impl TokenModel {
    /// Tokens of a text of `words` words, before any template.
    pub fn text(&self, words: u32) -> u32 {
        if words == 0 {
            return 0;
        }
        let t = (f64::from(words) * self.tokens_per_word).round();
        t.clamp(1.0, f64::from(u32::MAX)) as u32
    }

    /// Tokens of a prompt of `words` words: the text's, plus the template's when the
    /// prompt goes through one.
    pub fn prompt(&self, words: u32, templated: bool) -> u32 {
        let t = self.text(words);
        if templated {
            t.saturating_add(self.template_tokens)
        } else {
            t
        }
    }

    /// Check the values; errors name the `simulate` flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tokens_per_word.is_finite()
                && self.tokens_per_word > 0.0
                && self.tokens_per_word <= MAX_TOKENS_PER_WORD,
            "--tokens-per-word {}: must be > 0 and at most {MAX_TOKENS_PER_WORD} (1.0 counts one token a word)",
            self.tokens_per_word
        );
        anyhow::ensure!(
            self.template_tokens <= 1 << 20,
            "--chat-template-tokens {}: at most 1048576",
            self.template_tokens
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_word_count() {
        let m = TokenModel::default();
        assert_eq!(m.prompt(0, true), 0);
        assert_eq!(m.prompt(32, true), 32);
        assert_eq!(m.prompt(32, false), 32);
    }

    #[test]
    fn scaled_and_templated() {
        let m = TokenModel {
            tokens_per_word: 1.3,
            template_tokens: 7,
        };
        assert_eq!(m.text(10), 13);
        assert_eq!(m.text(1), 1);
        assert_eq!(m.prompt(10, true), 20);
        assert_eq!(m.prompt(10, false), 13);
        assert_eq!(
            m.prompt(0, true),
            7,
            "an empty message still has its template"
        );
        m.validate().unwrap();
        let bad = TokenModel {
            tokens_per_word: 0.0,
            ..m
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--tokens-per-word")
        );
    }
}
