//! Request parsing: turns an OpenAI or Ollama request body into a [`GenRequest`]
//! (prompt tokens and characters, limits, streaming options) and validates it the way
//! the imitated server would. Errors are [`ApiError`]s that `server.rs` renders in the
//! right server's shape (vLLM's pydantic report of every invalid field: `errors.rs`).
//! Deciding the response's length is `plan.rs`.

use serde_json::{Map, Value};

use super::config::Profile;
use super::rng::count_words;

/// The four generation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
    /// `POST /api/chat`
    OllamaChat,
    /// `POST /api/generate`
    OllamaGenerate,
}

impl Api {
    pub(crate) fn is_native_ollama(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }
}

/// An error answered before any token: HTTP status, message and the offending field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn field(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    pub(crate) fn status(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
        }
    }
}

/// A parsed generation request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GenRequest {
    pub api: Api,
    /// The model name as the client sent it (echoed by Ollama).
    pub model: String,
    pub prompt_tokens: u32,
    /// The length in characters (Unicode scalar values, as Python counts) of the prompt
    /// text vLLM renders: for chat, every message as `{role}: {content}\n` followed by
    /// `assistant:` (the template the recorded server applied, see `too_long.req`); for
    /// completions the prompt string. `None` for a prompt of token ids.
    pub prompt_chars: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
    /// The output limit the imitated server honours for this endpoint.
    pub max_tokens: Option<u32>,
    pub min_tokens: u32,
    pub ignore_eos: bool,
    /// A request-level seed (`seed`, `options.seed`), folded into the text seed.
    pub seed: Option<u64>,
    /// Ollama: empty prompt / no messages only loads the model (`done_reason: "load"`).
    pub load_only: bool,
}

/// Why the output ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Parse a generation request body for `api`, as `profile`'s server would.
pub(crate) fn parse(api: Api, body: &[u8], profile: Profile) -> Result<GenRequest, ApiError> {
    let native = api.is_native_ollama();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad(if native {
            "missing request body"
        } else {
            "JSON decode error: the request body is empty"
        }));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| super::errors::json_error(native || profile == Profile::Ollama, body, &e))?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::bad(
            "the request body must be a JSON object (Input should be a valid dictionary)",
        ));
    };
    if !native && profile == Profile::Vllm {
        super::errors::pydantic_lax(api, &mut obj);
    }
    let model = match obj.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::field(
                "model",
                if native {
                    "model is required".to_string()
                } else {
                    "model: Field required".to_string()
                },
            ));
        }
        Some(Value::String(_)) => return Err(ApiError::field("model", "model is required")),
        Some(_) => return Err(type_error("model", "a valid string")),
    };
    let openai_vllm = !native && profile == Profile::Vllm;
    let mut req = GenRequest {
        api,
        model,
        prompt_tokens: 0,
        prompt_chars: None,
        stream: get_bool(&obj, "stream")?.unwrap_or(native),
        include_usage: false,
        max_tokens: None,
        min_tokens: 0,
        ignore_eos: false,
        seed: None,
        load_only: false,
    };
    match api {
        Api::Chat | Api::OllamaChat => {
            let messages: &[Value] = match obj.get("messages") {
                Some(Value::Array(a)) => a,
                None | Some(Value::Null) if native => &[],
                None | Some(Value::Null) => {
                    return Err(ApiError::field("messages", "messages: Field required"));
                }
                Some(_) => return Err(type_error("messages", "a valid list")),
            };
            if messages.is_empty() && !native {
                return Err(ApiError::field(
                    "messages",
                    "messages: List should have at least 1 item after validation",
                ));
            }
            req.load_only = native && messages.is_empty();
            let (tokens, chars) = count_messages(messages, native)?;
            req.prompt_tokens = tokens;
            req.prompt_chars = Some(chars);
        }
        Api::Completion => {
            req.prompt_tokens = match obj.get("prompt") {
                None | Some(Value::Null) => {
                    return Err(ApiError::field("prompt", "prompt: Field required"));
                }
                Some(p) => count_prompt(p)?,
            };
            req.prompt_chars = match obj.get("prompt") {
                Some(Value::String(s)) => Some(chars(s)),
                Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(chars),
                _ => None,
            };
        }
        Api::OllamaGenerate => {
            let prompt = get_str(&obj, "prompt")?.unwrap_or("");
            let system = get_str(&obj, "system")?.unwrap_or("");
            req.load_only = prompt.is_empty();
            req.prompt_tokens = count_words(prompt).saturating_add(count_words(system));
        }
    }
    if native {
        if let Some(opts) = obj.get("options") {
            match opts {
                Value::Null => {}
                Value::Object(o) => {
                    // Ollama: num_predict <= 0 (-1 unlimited, -2 fill context) means no cap.
                    if let Some(n) = get_int(o, "num_predict", "options.num_predict")?
                        && n > 0
                    {
                        req.max_tokens = Some(n.min(i64::from(u32::MAX)) as u32);
                    }
                    req.seed = get_int(o, "seed", "options.seed")?.map(|s| s as u64);
                }
                _ => return Err(type_error("options", "an object")),
            }
        }
        return Ok(req);
    }
    // OpenAI-compatible layer.
    if let Some(so) = obj.get("stream_options") {
        match so {
            Value::Null => {}
            Value::Object(o) => {
                req.include_usage = get_bool(o, "include_usage")?.unwrap_or(false);
                if openai_vllm && !req.stream {
                    return Err(ApiError::field(
                        "stream_options",
                        "Stream options can only be defined when `stream=True`.",
                    ));
                }
            }
            _ => return Err(type_error("stream_options", "a valid dictionary")),
        }
    }
    if let Some(n) = get_int(&obj, "n", "n")?
        && n != 1
    {
        return Err(ApiError::field(
            "n",
            format!("n={n} is not supported by the benchkeep simulator (only n=1)"),
        ));
    }
    req.seed = get_int(&obj, "seed", "seed")?.map(|s| s as u64);
    let max_tokens = positive(&obj, "max_tokens")?;
    if openai_vllm {
        // vLLM prefers max_completion_tokens when both are given, and honours the extras.
        req.max_tokens = positive(&obj, "max_completion_tokens")?.or(max_tokens);
        req.ignore_eos = get_bool(&obj, "ignore_eos")?.unwrap_or(false);
        if let Some(m) = get_int(&obj, "min_tokens", "min_tokens")? {
            if m < 0 {
                return Err(ApiError::field(
                    "min_tokens",
                    format!("min_tokens must be greater than or equal to 0, got {m}."),
                ));
            }
            req.min_tokens = m.min(i64::from(u32::MAX)) as u32;
            if let Some(max) = req.max_tokens
                && req.min_tokens > max
            {
                return Err(ApiError::field(
                    "min_tokens",
                    format!("min_tokens must be less than or equal to max_tokens={max}, got {m}."),
                ));
            }
        }
    } else {
        // Ollama's compatibility layer reads only max_tokens (-> num_predict).
        req.max_tokens = max_tokens;
    }
    Ok(req)
}

/// Characters as Python's `len` counts them.
fn chars(s: &str) -> u64 {
    s.chars().count() as u64
}

/// The generation prompt the recorded vLLM template ends with.
const GENERATION_PROMPT: &str = "assistant:";

/// The prompt tokens (words) of `messages`, and the characters of the rendered prompt
/// (see [`GenRequest::prompt_chars`]; the text parts of a content array are joined with
/// a newline, as vLLM does).
fn count_messages(messages: &[Value], native: bool) -> Result<(u32, u64), ApiError> {
    let mut total: u32 = 0;
    let mut rendered = chars(GENERATION_PROMPT);
    for (i, m) in messages.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(type_error(&format!("messages.{i}"), "a valid dictionary"));
        };
        match m.get("role") {
            Some(Value::String(role)) => rendered += chars(role) + 3, // ": " and "\n"
            None if native => {}
            None => {
                return Err(ApiError::field(
                    "messages",
                    format!("messages.{i}.role: Field required"),
                ));
            }
            Some(_) => return Err(type_error(&format!("messages.{i}.role"), "a valid string")),
        }
        match m.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                total = total.saturating_add(count_words(s));
                rendered += chars(s);
            }
            Some(Value::Array(parts)) if !native => {
                for (j, part) in parts.iter().enumerate() {
                    let text = match part {
                        Value::String(s) => Some(s),
                        Value::Object(p) => match p.get("text") {
                            Some(Value::String(s)) => Some(s),
                            _ => None,
                        },
                        _ => {
                            return Err(type_error(
                                &format!("messages.{i}.content"),
                                "a string or a list of content parts",
                            ));
                        }
                    };
                    if let Some(s) = text {
                        total = total.saturating_add(count_words(s));
                        rendered += chars(s) + u64::from(j > 0);
                    }
                }
            }
            Some(_) => {
                return Err(type_error(
                    &format!("messages.{i}.content"),
                    if native {
                        "a string"
                    } else {
                        "a string or a list of content parts"
                    },
                ));
            }
        }
    }
    Ok((total, rendered))
}

fn count_prompt(p: &Value) -> Result<u32, ApiError> {
    let as_len = |n: usize| n.min(u32::MAX as usize) as u32;
    match p {
        Value::String(s) => Ok(count_words(s)),
        Value::Array(items) if items.iter().all(Value::is_string) => match items.len() {
            1 => Ok(count_words(items[0].as_str().unwrap_or(""))),
            0 => Err(ApiError::field("prompt", "prompt must not be empty")),
            _ => Err(batch_error()),
        },
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            if items.is_empty() {
                Err(ApiError::field("prompt", "prompt must not be empty"))
            } else {
                Ok(as_len(items.len()))
            }
        }
        Value::Array(items) if items.len() == 1 && items[0].is_array() => match &items[0] {
            Value::Array(ids) if ids.iter().all(Value::is_u64) => Ok(as_len(ids.len())),
            _ => Err(type_error(
                "prompt",
                "a string, a list of strings or token ids",
            )),
        },
        Value::Array(items) if items.iter().all(Value::is_array) && items.len() > 1 => {
            Err(batch_error())
        }
        _ => Err(type_error(
            "prompt",
            "a string, a list of strings or token ids",
        )),
    }
}

fn batch_error() -> ApiError {
    ApiError::field(
        "prompt",
        "batched prompts (more than one) are not supported by the benchkeep simulator",
    )
}

fn type_error(field: &str, what: &str) -> ApiError {
    ApiError::field(field, format!("{field}: Input should be {what}"))
}

fn get_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(key, "a valid boolean")),
    }
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(type_error(key, "a valid string")),
    }
}

fn get_int(obj: &Map<String, Value>, key: &str, name: &str) -> Result<Option<i64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            if let Some(i) = v.as_i64() {
                Ok(Some(i))
            } else if let Some(u) = v.as_u64() {
                Ok(Some(i64::try_from(u).unwrap_or(i64::MAX)))
            } else if let Some(f) = v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15) {
                Ok(Some(f as i64))
            } else {
                Err(type_error(name, "a valid integer"))
            }
        }
    }
}

/// An optional integer limit that must be at least 1.
fn positive(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, ApiError> {
    match get_int(obj, key, key)? {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n.min(i64::from(u32::MAX)) as u32)),
        Some(n) => Err(ApiError::field(
            key,
            format!("{key} must be at least 1, got {n}."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(api: Api, body: &str) -> Result<GenRequest, ApiError> {
        parse(api, body.as_bytes(), Profile::Vllm)
    }

    #[test]
    fn chat_fields() {
        let r = p(
            Api::Chat,
            r#"{"model":"m","messages":[{"role":"user","content":"a b  c"},
               {"role":"user","content":[{"type":"text","text":"d e"}]}],
               "stream":true,"stream_options":{"include_usage":true},
               "max_tokens":9,"max_completion_tokens":7,"ignore_eos":true,"min_tokens":2}"#,
        )
        .unwrap();
        assert_eq!(r.prompt_tokens, 5);
        assert!(r.stream && r.include_usage && r.ignore_eos);
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.min_tokens, 2);
    }

    #[test]
    fn malformed_requests_are_400() {
        for (api, body) in [
            (Api::Chat, "{"),
            (Api::Chat, "[]"),
            (Api::Chat, ""),
            (Api::Chat, r#"{"messages":[]}"#),
            (Api::Chat, r#"{"model":"m"}"#),
            (Api::Chat, r#"{"model":"m","messages":"hi"}"#),
            (Api::Chat, r#"{"model":5,"messages":[]}"#),
            (
                Api::Chat,
                r#"{"model":"m","messages":[{"role":"user","content":1}]}"#,
            ),
            (
                Api::Chat,
                r#"{"model":"m","messages":[{"role":"u"}],"max_tokens":"x"}"#,
            ),
            (
                Api::Chat,
                r#"{"model":"m","messages":[{"role":"u"}],"max_tokens":0}"#,
            ),
            (
                Api::Chat,
                r#"{"model":"m","messages":[{"role":"u"}],"stream":"sure"}"#,
            ),
            (Api::Completion, r#"{"model":"m"}"#),
            (Api::Completion, r#"{"model":"m","prompt":{}}"#),
            (Api::Completion, r#"{"model":"m","prompt":["a","b"]}"#),
            (Api::OllamaChat, r#"{"messages":[]}"#),
            (Api::OllamaGenerate, r#"{"model":"m","prompt":3}"#),
            (Api::OllamaGenerate, r#"{"model":"m","options":[]}"#),
        ] {
            let e = p(api, body).expect_err(body);
            assert_eq!(e.status, 400, "{body}");
        }
    }

    #[test]
    fn ollama_defaults() {
        let r = parse(
            Api::OllamaGenerate,
            br#"{"model":"x","prompt":"one two","options":{"num_predict":-1}}"#,
            Profile::Ollama,
        )
        .unwrap();
        assert!(r.stream);
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.prompt_tokens, 2);
        let r = parse(Api::OllamaChat, br#"{"model":"x"}"#, Profile::Ollama).unwrap();
        assert!(r.load_only);
        // Ollama's /v1 ignores max_completion_tokens and ignore_eos.
        let r = parse(
            Api::Chat,
            br#"{"model":"x","messages":[{"role":"user","content":"a"}],"max_completion_tokens":3,"ignore_eos":true}"#,
            Profile::Ollama,
        )
        .unwrap();
        assert_eq!(r.max_tokens, None);
        assert!(!r.ignore_eos);
    }
}
