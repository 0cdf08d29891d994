//! Whole bodies: the non-streamed responses of every wire format, and Ollama's final
//! `done: true` object (also the last line of its streams), split from `render.rs`.

use std::time::Duration;

use super::engine::Timings;
use super::render::{Ctx, Wire, js};

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Ollama's warm `load_duration`: 1-3 ms, at most half the prompt evaluation it is
/// taken from (so `total >= load + prompt_eval + eval` still holds).
fn warm_load(prefill: u64) -> u64 {
    let nominal = 1_000_000 + super::rng::mix64(prefill) % 2_000_000;
    nominal.min(prefill / 2).max(1)
}

/// Ollama's final object (`done: true`): `done_reason` right after `done`, then (generate
/// only) `context`, then the durations. `load_duration` is always there (Ollama reports
/// its scheduler's time even when the model was loaded); zero counts are omitted like
/// Go's `omitempty`.
pub(crate) fn ollama_final(c: &Ctx, text: &str, t: &Timings, ts: &str) -> String {
    let mut v = ollama_head(c.wire, &c.model, text, ts);
    v.push_str(r#","done":true,"done_reason":""#);
    v.push_str(c.finish.as_str());
    v.push('"');
    if c.wire == Wire::OllamaGenerate {
        v.push_str(r#","context":["#);
        let n = u64::from(c.prompt_tokens) + u64::from(c.completion_tokens);
        for i in 0..n.max(1) {
            if i > 0 {
                v.push(',');
            }
            v.push_str(&(super::rng::mix64(i) % 1000).to_string());
        }
        v.push(']');
    }
    let mut load = ns(t.load);
    let mut prefill = ns(t.prefill);
    if load == 0 && c.warm_load {
        load = warm_load(prefill);
        prefill = prefill.saturating_sub(load).max(1);
    }
    for (k, n) in [
        ("total_duration", ns(t.total)),
        ("load_duration", load.max(1)),
        ("prompt_eval_count", u64::from(c.prompt_tokens)),
        ("prompt_eval_duration", prefill),
        ("eval_count", u64::from(c.completion_tokens)),
        ("eval_duration", ns(t.decode)),
    ] {
        if n > 0 {
            v.push_str(&format!(r#","{k}":{n}"#));
        }
    }
    v.push('}');
    v
}

/// `{"model":..,"created_at":..,"message":{..}` (chat) or `..,"response":..` (generate),
/// without the closing brace.
fn ollama_head(wire: Wire, model: &str, text: &str, ts: &str) -> String {
    let (model, text, ts) = (js(model), js(text), js(ts));
    if wire == Wire::OllamaChat {
        format!(
            r#"{{"model":{model},"created_at":{ts},"message":{{"role":"assistant","content":{text}}}"#
        )
    } else {
        format!(r#"{{"model":{model},"created_at":{ts},"response":{text}"#)
    }
}

/// Ollama's answer to a request that only loads the model (`done_reason: "load"`).
pub(crate) fn ollama_load(wire: Wire, model: &str, ts: &str) -> String {
    ollama_head(wire, model, "", ts) + r#","done":true,"done_reason":"load"}"#
}

/// A whole (non-streamed) response.
pub(crate) fn full(c: &Ctx, text: &str, t: &Timings, ts: &str) -> String {
    let (id, model, created) = (js(&c.id), js(&c.model), c.created);
    let (p, n) = (c.prompt_tokens, c.completion_tokens);
    let total = u64::from(p) + u64::from(n);
    let finish = c.finish.as_str();
    let content = js(text);
    let fp = js(&c.fingerprint);
    match c.wire {
        Wire::VllmChat => format!(
            r#"{{"id":{id},"object":"chat.completion","created":{created},"model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null,"annotations":null,"audio":null,"function_call":null,"reasoning":null}},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null,"routed_experts":null}}],"service_tier":null,"system_fingerprint":{fp},"usage":{{"prompt_tokens":{p},"total_tokens":{total},"completion_tokens":{n},"prompt_tokens_details":null,"completion_tokens_details":null}},"prompt_logprobs":null,"prompt_token_ids":null,"prompt_text":null,"kv_transfer_params":null,"ec_transfer_params":null,"metrics":null}}"#
        ),
        Wire::VllmCompletion => format!(
            r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"choices":[{{"index":0,"text":{content},"logprobs":null,"finish_reason":"{finish}","stop_reason":null,"token_ids":null,"prompt_logprobs":null,"prompt_token_ids":null,"routed_experts":null}}],"service_tier":null,"system_fingerprint":{fp},"usage":{{"prompt_tokens":{p},"total_tokens":{total},"completion_tokens":{n},"prompt_tokens_details":null,"completion_tokens_details":null}},"kv_transfer_params":null,"ec_transfer_params":null,"metrics":null}}"#
        ),
        // Ollama's `/v1` middleware encodes with a trailing newline.
        Wire::CompatChat => {
            format!(
                r#"{{"id":{id},"object":"chat.completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{total}}}}}"#
            ) + "\n"
        }
        Wire::CompatCompletion => {
            format!(
                r#"{{"id":{id},"object":"text_completion","created":{created},"model":{model},"system_fingerprint":"fp_ollama","choices":[{{"text":{content},"index":0,"finish_reason":"{finish}"}}],"usage":{{"prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{total}}}}}"#
            ) + "\n"
        }
        Wire::OllamaChat | Wire::OllamaGenerate => ollama_final(c, text, t, ts),
    }
}
