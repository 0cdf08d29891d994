//! Request bodies: one canonical request, rendered for each API.
//!
//! The rendering is deterministic (serde structs in a fixed field order, JSON objects with
//! sorted keys), so the same input gives byte-identical requests on every run and every
//! platform that speaks the same API; only `model` differs between servers.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use super::Api;

/// What the user asks the model: a conversation or a plain prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// OpenAI-style `messages` (an array of `{role, content}`).
    Messages(Value),
    /// A plain text prompt.
    Text(String),
}

impl Prompt {
    /// The conversation, for chat APIs (a plain prompt becomes one user message).
    pub fn messages(&self) -> Value {
        match self {
            Prompt::Messages(m) => m.clone(),
            Prompt::Text(t) => json!([{"role": "user", "content": t}]),
        }
    }

    /// The prompt text, for completion APIs: message contents joined by blank lines
    /// (text parts of multi-part contents only).
    pub fn text(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Messages(m) => {
                let mut parts: Vec<&str> = Vec::new();
                for msg in m.as_array().into_iter().flatten() {
                    match msg.get("content") {
                        Some(Value::String(s)) => parts.push(s),
                        Some(Value::Array(items)) => parts.extend(
                            items
                                .iter()
                                .filter_map(|p| p.get("text").and_then(Value::as_str)),
                        ),
                        _ => {}
                    }
                }
                parts.join("\n\n")
            }
        }
    }
}

/// Sampling settings carried over from the input file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sampling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Value>,
}

/// One request, independent of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub prompt: Prompt,
    /// Output token limit.
    pub max_tokens: Option<u64>,
    /// Ask the server for exactly `max_tokens` tokens where it can (vLLM `ignore_eos` +
    /// `min_tokens`; Ollama has only `num_predict`, an upper limit).
    pub exact: bool,
    pub sampling: Sampling,
    /// Every other field of the input's body, sent as given (`n`, `tools`,
    /// `response_format`, `logprobs`, Ollama's `options` and `format`, ...). The fields the
    /// run controls are never in it (see [`RUN_CONTROLLED`]); a field the rendering sets
    /// wins over one of these.
    pub extra: serde_json::Map<String, Value>,
}

/// Fields of an input body that the rendering sets itself: the model and streaming are the
/// run's; the prompt, the token limit and the sampling settings are read from the input
/// (and rendered for the API), `max_tokens` replaced by `--max-tokens`.
pub const RUN_CONTROLLED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "messages",
    "prompt",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
];

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct OpenAiBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(flatten)]
    sampling: &'a Sampling,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_eos: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_tokens: Option<u64>,
}

#[derive(Serialize)]
struct OllamaOptions<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u64>,
    #[serde(flatten)]
    sampling: &'a Sampling,
}

#[derive(Serialize)]
struct OllamaBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<OllamaOptions<'a>>,
}

/// Render `req` as the JSON body of `api`.
pub fn render(api: Api, model: &str, stream: bool, req: &GenRequest) -> Bytes {
    let bytes = match api {
        Api::OpenAiChat | Api::OpenAiCompletions => {
            let chat = api == Api::OpenAiChat;
            let exact = req.exact && req.max_tokens.is_some();
            serde_json::to_vec(&OpenAiBody {
                model,
                messages: chat.then(|| req.prompt.messages()),
                prompt: (!chat).then(|| req.prompt.text()),
                max_tokens: req.max_tokens,
                sampling: &req.sampling,
                stream,
                stream_options: stream.then_some(StreamOptions {
                    include_usage: true,
                }),
                ignore_eos: exact.then_some(true),
                min_tokens: if exact { req.max_tokens } else { None },
            })
        }
        Api::OllamaChat | Api::OllamaGenerate => {
            let chat = api == Api::OllamaChat;
            let has_options = req.max_tokens.is_some() || req.sampling != Sampling::default();
            serde_json::to_vec(&OllamaBody {
                model,
                messages: chat.then(|| req.prompt.messages()),
                prompt: (!chat).then(|| req.prompt.text()),
                stream,
                options: has_options.then_some(OllamaOptions {
                    num_predict: req.max_tokens,
                    sampling: &req.sampling,
                }),
            })
        }
    };
    let bytes = bytes.expect("request bodies serialize");
    if req.extra.is_empty() {
        return Bytes::from(bytes);
    }
    // The input's other fields, as given; what the rendering set wins. Ollama's `options`
    // are merged key by key (its `num_predict` and sampling keys win).
    let mut body: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes).expect("a rendered body is an object");
    for (k, v) in &req.extra {
        match (body.get_mut(k), v) {
            (None, _) => {
                body.insert(k.clone(), v.clone());
            }
            (Some(Value::Object(ours)), Value::Object(theirs)) if k == "options" => {
                for (ok, ov) in theirs {
                    ours.entry(ok.clone()).or_insert_with(|| ov.clone());
                }
            }
            (Some(_), _) => {}
        }
    }
    Bytes::from(serde_json::to_vec(&body).expect("request bodies serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> GenRequest {
        GenRequest {
            prompt: Prompt::Messages(json!([{"role": "user", "content": "Hi"}])),
            max_tokens: Some(8),
            exact: true,
            sampling: Sampling {
                temperature: Some(0.0),
                ..Default::default()
            },
            extra: Default::default(),
        }
    }

    #[test]
    fn input_fields_are_sent_as_given() {
        let mut r = req();
        r.exact = false;
        let extra = json!({"n": 2, "tools": [{"type": "function"}], "logprobs": true,
            "options": {"num_ctx": 4096, "num_predict": 99}});
        r.extra = extra.as_object().unwrap().clone();
        let b: Value = serde_json::from_slice(&render(Api::OpenAiChat, "m", true, &r)).unwrap();
        assert_eq!(b["n"], 2);
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["logprobs"], true);
        assert_eq!(b["model"], "m");
        assert_eq!(b["stream"], true);
        assert_eq!(b["max_tokens"], 8);
        let b: Value = serde_json::from_slice(&render(Api::OllamaChat, "m", false, &r)).unwrap();
        assert_eq!(b["options"]["num_ctx"], 4096);
        assert_eq!(b["options"]["num_predict"], 8, "the run's limit wins");
        assert_eq!(b["stream"], false);
    }

    #[test]
    fn openai_chat_streamed_exact() {
        let b = render(Api::OpenAiChat, "m", true, &req());
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"model":"m","messages":[{"content":"Hi","role":"user"}],"max_tokens":8,"temperature":0.0,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"min_tokens":8}"#
        );
    }

    #[test]
    fn other_apis() {
        let b = render(Api::OpenAiCompletions, "m", false, &req());
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"model":"m","prompt":"Hi","max_tokens":8,"temperature":0.0,"stream":false,"ignore_eos":true,"min_tokens":8}"#
        );
        let b = render(Api::OllamaChat, "m", true, &req());
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"model":"m","messages":[{"content":"Hi","role":"user"}],"stream":true,"options":{"num_predict":8,"temperature":0.0}}"#
        );
        let mut r = req();
        r.prompt = Prompt::Text("Why?".into());
        r.max_tokens = None;
        r.sampling = Sampling::default();
        let b = render(Api::OllamaGenerate, "m", false, &r);
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"model":"m","prompt":"Why?","stream":false}"#
        );
    }

    #[test]
    fn prompt_conversions() {
        let m = Prompt::Messages(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Name"}, {"type": "image_url"}]}
        ]));
        assert_eq!(m.text(), "Be brief.\n\nName");
        assert_eq!(
            Prompt::Text("x".into()).messages(),
            json!([{"role": "user", "content": "x"}])
        );
    }
}
