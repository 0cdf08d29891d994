//! Planning a response: the vLLM context checks (the character bound before
//! tokenizing, then the token-based ones), the output length and finish reason, and the
//! per-request seed. The request itself is parsed and validated in `request.rs`.

use super::config::{Profile, SimConfig};
use super::request::{ApiError, Finish, GenRequest};
use super::rng::{Rng, derive, hash_bytes};

/// vLLM refuses, before tokenizing, a prompt text longer than this many characters per
/// token of context (`6 x max_model_len`).
const CHARS_PER_TOKEN_BOUND: u64 = 6;

/// vLLM's character check: the rendered prompt (`GenRequest::prompt_chars`) over
/// `6 x max_model_len` characters is a 400 with `param: "input_text"`.
fn too_many_chars(req: &GenRequest, ctx: u32) -> Option<ApiError> {
    let c = req.prompt_chars?;
    let bound = CHARS_PER_TOKEN_BOUND * u64::from(ctx);
    (c > bound).then(|| {
        ApiError::field(
            "input_text",
            format!(
                "This model's maximum context length is {ctx} tokens. However, your prompt \
             contains {c} characters (more than {bound} characters, which is the upper \
             bound for {ctx} input tokens). Please reduce the length of the input prompt. \
             (parameter=input_text, value={c})"
            ),
        )
    })
}

/// The response's length and finish reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub tokens: u32,
    pub finish: Finish,
}

/// Decide the output length: the request's limit, the context left, and (when no limit
/// is given, or with `natural_eos`) a draw from the output-length distribution.
pub(crate) fn plan(req: &GenRequest, cfg: &SimConfig, rng: &mut Rng) -> Result<Plan, ApiError> {
    let ctx = cfg.max_model_len;
    let p = req.prompt_tokens;
    let vllm_checks = cfg.profile == Profile::Vllm && !req.api.is_native_ollama();
    if vllm_checks {
        if let Some(e) = too_many_chars(req, ctx) {
            return Err(e);
        }
        if let Some(m) = req.max_tokens {
            if m > ctx {
                return Err(ApiError::field(
                    "max_tokens",
                    format!(
                        "max_tokens={m} cannot be greater than max_model_len={ctx}. \
                         Please request fewer output tokens. (parameter=max_tokens, value={m})"
                    ),
                ));
            }
            if u64::from(p) + u64::from(m) > u64::from(ctx) {
                return Err(ApiError::bad(format!(
                    "This model's maximum context length is {ctx} tokens. However, you \
                     requested {} tokens ({p} in the messages, {m} in the completion). \
                     Please reduce the length of the messages or completion.",
                    u64::from(p) + u64::from(m)
                )));
            }
        } else if p >= ctx {
            return Err(ApiError::bad(format!(
                "This model's maximum context length is {ctx} tokens. However, your \
                 request has {p} input tokens. Please reduce the length of the input \
                 messages."
            )));
        }
    }
    // Room left in the context (Ollama cuts the output there instead of failing).
    let room = ctx.saturating_sub(p).max(1);
    let natural = rng.output_len(&cfg.output_len).max(req.min_tokens).max(1);
    let (limit, exact) = match req.max_tokens {
        Some(m) => (m.min(room), req.ignore_eos || !cfg.natural_eos),
        None => (room, false),
    };
    if exact || natural >= limit {
        Ok(Plan {
            tokens: limit,
            finish: Finish::Length,
        })
    } else {
        Ok(Plan {
            tokens: natural,
            finish: Finish::Stop,
        })
    }
}

/// A per-request seed: from the request's own `seed` when given (so a client can pin a
/// response), else from the order of arrival.
pub(crate) fn request_seed(server_seed: u64, req: &GenRequest, arrival_index: u64) -> u64 {
    match req.seed {
        Some(s) => derive(server_seed ^ 0xA5A5_5A5A, s ^ hash_bytes(b"seed")),
        None => derive(server_seed, arrival_index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::request::{Api, parse};

    fn p(api: Api, body: &str) -> Result<GenRequest, ApiError> {
        parse(api, body.as_bytes(), Profile::Vllm)
    }

    #[test]
    fn planning() {
        let cfg = SimConfig {
            max_model_len: 100,
            ..SimConfig::default()
        };
        let mut rng = Rng::new(1);
        let mut r = p(
            Api::Chat,
            r#"{"model":"m","messages":[{"role":"u","content":"a b"}],"max_tokens":10}"#,
        )
        .unwrap();
        let pl = plan(&r, &cfg, &mut rng).unwrap();
        assert_eq!(
            pl,
            Plan {
                tokens: 10,
                finish: Finish::Length
            }
        );
        r.max_tokens = Some(99);
        let e = plan(&r, &cfg, &mut rng).unwrap_err();
        assert!(
            e.message.contains("maximum context length is 100"),
            "{}",
            e.message
        );
        r.max_tokens = Some(101);
        assert!(
            plan(&r, &cfg, &mut rng)
                .unwrap_err()
                .message
                .contains("max_model_len=100")
        );
        r.max_tokens = None;
        let pl = plan(&r, &cfg, &mut rng).unwrap();
        assert!(pl.tokens <= 98);
        let natural = SimConfig {
            natural_eos: true,
            ..cfg.clone()
        };
        r.max_tokens = Some(50);
        r.min_tokens = 0;
        for _ in 0..50 {
            let pl = plan(&r, &natural, &mut rng).unwrap();
            assert!(pl.tokens <= 50);
            assert_eq!(pl.finish == Finish::Length, pl.tokens == 50);
        }
        r.ignore_eos = true;
        assert_eq!(plan(&r, &natural, &mut rng).unwrap().tokens, 50);
    }

    #[test]
    fn character_bound_comes_before_the_token_checks() {
        let cfg = SimConfig {
            max_model_len: 10,
            ..SimConfig::default()
        };
        let mut rng = Rng::new(1);
        // "user: " + 43 characters + "\n" + "assistant:" = 60 = 6 x 10: allowed.
        let ok = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}],"max_tokens":1}}"#,
            "a".repeat(43)
        );
        let r = p(Api::Chat, &ok).unwrap();
        assert_eq!(r.prompt_chars, Some(60));
        assert!(plan(&r, &cfg, &mut rng).is_ok());
        // One more character: refused by characters even though max_tokens is too big too.
        let long = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}],"max_tokens":99}}"#,
            "a".repeat(44)
        );
        let e = plan(&p(Api::Chat, &long).unwrap(), &cfg, &mut rng).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input_text"));
        assert!(
            e.message.ends_with("(parameter=input_text, value=61)"),
            "{}",
            e.message
        );
        // Completions: the prompt text itself; token ids are not counted in characters.
        let r = p(
            Api::Completion,
            &format!(r#"{{"model":"m","prompt":"{}"}}"#, "é".repeat(61)),
        )
        .unwrap();
        assert_eq!(r.prompt_chars, Some(61));
        assert!(
            plan(&r, &cfg, &mut rng)
                .unwrap_err()
                .message
                .contains("contains 61 characters")
        );
        let r = p(Api::Completion, r#"{"model":"m","prompt":[1,2]}"#).unwrap();
        assert_eq!(r.prompt_chars, None);
    }
}
