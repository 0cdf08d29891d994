//! Every simulator endpoint, in both profiles: response shapes, token accounting,
//! error shapes, malformed requests, body limits and determinism under a seed.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::support::api::sim::{Profile, SimConfig};
use crate::support::sim::*;

#[tokio::test]
async fn vllm_chat_stream_has_vllm_shape() {
    let s = start(fast(Profile::Vllm)).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let mut body = chat("sim-model", Some(7), true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, _, evs) = stream(&url, &body).await;
    assert_eq!(status, 200);
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1].iter().map(Ev::json).collect();
    // Role-only first chunk, no text.
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let content: Vec<&Value> = chunks.iter().filter(|c| chunk_text(c).is_some()).collect();
    assert_eq!(content.len(), 7);
    // finish_reason only on the last content chunk.
    for c in &content[..6] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
        assert!(c.get("usage").is_none());
    }
    assert_eq!(content[6]["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    assert_eq!(usage["usage"]["prompt_tokens"], 6);
    assert_eq!(usage["usage"]["total_tokens"], 13);
    let ids: Vec<&Value> = chunks.iter().map(|c| &c["id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    assert!(ids[0].as_str().unwrap().starts_with("chatcmpl-"));

    // Without include_usage: no usage chunk.
    let (_, _, evs) = stream(&url, &chat("sim-model", Some(3), true)).await;
    assert_eq!(evs.len(), 1 + 3 + 1);
    assert!(evs.iter().all(|e| !e.data.contains("\"usage\"")));
}

#[tokio::test]
async fn vllm_non_stream_and_completions() {
    let s = start(fast(Profile::Vllm)).await;
    let base = s.openai_base_url();
    let (st, v) = post_json(
        &format!("{base}/chat/completions"),
        &chat("sim-model", Some(5), false),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["object"], "chat.completion");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 5);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let body = json!({"model": "sim-model", "prompt": "one two three", "max_tokens": 4});
    let (st, v) = post_json(&format!("{base}/completions"), &body).await;
    assert_eq!(st, 200);
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        4
    );

    let body = json!({"model": "sim-model", "prompt": [1, 2, 3, 4], "max_tokens": 3,
                      "stream": true, "stream_options": {"include_usage": true}});
    let (_, _, evs) = stream(&format!("{base}/completions"), &body).await;
    let chunks: Vec<Value> = evs[..evs.len() - 1].iter().map(Ev::json).collect();
    assert_eq!(chunks.len(), 3 + 1, "no role chunk for completions");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[3]["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn vllm_token_limits_and_extras() {
    let mut c = fast(Profile::Vllm);
    c.natural_eos = true;
    c.output_len.mean = 3;
    c.output_len.spread = 0.0;
    let s = start(c).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let n = |v: &Value| v["usage"]["completion_tokens"].as_u64().unwrap();
    // EOS after 3 tokens comes before max_tokens=20.
    let (_, v) = post_json(&url, &chat("sim-model", Some(20), false)).await;
    assert_eq!(
        (n(&v), v["choices"][0]["finish_reason"].clone()),
        (3, json!("stop"))
    );
    // ignore_eos forces exactly max_tokens.
    let mut b = chat("sim-model", Some(20), false);
    b["ignore_eos"] = json!(true);
    assert_eq!(n(&post_json(&url, &b).await.1), 20);
    // min_tokens holds the EOS back.
    let mut b = chat("sim-model", Some(20), false);
    b["min_tokens"] = json!(9);
    assert_eq!(n(&post_json(&url, &b).await.1), 9);
    // max_completion_tokens wins over max_tokens.
    let mut b = chat("sim-model", Some(20), false);
    b["max_completion_tokens"] = json!(2);
    assert_eq!(n(&post_json(&url, &b).await.1), 2);
    // No limit: the distribution.
    assert_eq!(
        n(&post_json(&url, &chat("sim-model", None, false)).await.1),
        3
    );
}

#[tokio::test]
async fn vllm_info_endpoints() {
    let s = start(fast(Profile::Vllm)).await;
    let base = s.base_url();
    let (st, body) = get(&format!("{base}/health")).await;
    assert_eq!((st, body.as_str()), (200, ""));
    let (_, v) = get(&format!("{base}/version")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&v).unwrap()["version"],
        "0.32.0+sim"
    );
    let (_, v) = get(&format!("{base}/v1/models")).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["data"][0]["id"], "sim-model");
    assert_eq!(v["data"][0]["max_model_len"], 8192);
    let (st, m) = get(&format!("{base}/metrics")).await;
    assert_eq!(st, 200);
    for name in [
        "vllm:num_requests_running{",
        "vllm:num_requests_waiting{",
        "vllm:kv_cache_usage_perc{",
        "vllm:cache_config_info{",
        "num_gpu_blocks=\"8192\"",
        "enable_prefix_caching=",
        "cache_dtype=",
        "vllm:prompt_tokens_total{",
        "vllm:generation_tokens_total{",
        "benchkeep_sim_faults_total{kind=\"stall\"}",
    ] {
        assert!(m.contains(name), "{name} missing");
    }
    // Counters follow the traffic.
    let url = format!("{base}/v1/chat/completions");
    post_json(&url, &chat("sim-model", Some(4), false)).await;
    let (_, m) = get(&format!("{base}/metrics")).await;
    assert!(m.contains("vllm:generation_tokens_total{engine=\"0\",model_name=\"sim-model\"} 4.0"));
    assert!(m.contains("finished_reason=\"length\"} 1.0"));
    assert_eq!(s.stats().generation_tokens, 4);
    // Unknown route / wrong method.
    assert_eq!(get(&format!("{base}/nope")).await.0, 404);
    assert_eq!(get(&format!("{base}/v1/chat/completions")).await.0, 405);
}

#[tokio::test]
async fn ollama_compat_layer_shape() {
    let s = start(fast(Profile::Ollama)).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let mut body = chat("llama3.2", Some(4), true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, _, evs) = stream(&url, &body).await;
    assert_eq!(evs.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1].iter().map(Ev::json).collect();
    // Real Ollama sends fewer chat chunks than tokens: token 3 rides with token 4.
    assert_eq!(chunks.len(), 3 + 1 + 1);
    assert!(
        chunks
            .iter()
            .all(|c| c["system_fingerprint"] == "fp_ollama")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunk_text(&chunks[0]).is_some(),
        "role comes with the first text"
    );
    // Real Ollama 0.24.0 (tests/fixtures/transcripts): every delta repeats the role,
    // and the finish chunk's delta is `{"role":"assistant","content":""}`.
    assert_eq!(chunks[1]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks[3]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 4);
    assert_eq!(chunks[0]["model"], "llama3.2");

    let (st, v) = post_json(&url, &chat("llama3.2:latest", Some(3), false)).await;
    assert_eq!(st, 200);
    assert_eq!(v["system_fingerprint"], "fp_ollama");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    let (_, m) = get(&format!("{}/v1/models", s.base_url())).await;
    let m: Value = serde_json::from_str(&m).unwrap();
    assert_eq!(m["data"][0]["id"], "llama3.2:latest");
    assert_eq!(m["data"][0]["owned_by"], "library");
    let (st, _) = get(&format!("{}/v1/models/llama3.2", s.base_url())).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn ollama_native_endpoints() {
    let mut c = fast(Profile::Ollama);
    c.timing.load_ms = 5.0;
    let s = start(c).await;
    let base = s.base_url();
    let (st, body) = get(&format!("{base}/")).await;
    assert_eq!((st, body.as_str()), (200, "Ollama is running"));
    let (_, ps) = get(&format!("{base}/api/ps")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&ps).unwrap()["models"],
        json!([])
    );

    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "a b c"}],
                      "options": {"num_predict": 6}});
    let (st, _, evs) = stream(&format!("{base}/api/chat"), &body).await;
    assert_eq!(st, 200);
    let lines: Vec<Value> = evs.iter().map(Ev::json).collect();
    // Real Ollama sends fewer chat chunks than tokens: token 3 rides with token 4.
    assert_eq!(lines.len(), 6);
    assert!(lines[..5].iter().all(|l| l["done"] == false
        && l["message"]["role"] == "assistant"
        && !l["message"]["content"].as_str().unwrap().is_empty()));
    let last = &lines[5];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 6);
    assert_eq!(last["prompt_eval_count"], 3);
    let d = |k: &str| last[k].as_u64().unwrap_or(0);
    assert!(d("load_duration") >= 5_000_000);
    assert!(
        d("total_duration") >= d("load_duration") + d("prompt_eval_duration") + d("eval_duration")
    );
    assert!(d("eval_duration") > 0 && d("prompt_eval_duration") > 0);

    let body = json!({"model": "llama3.2:latest", "prompt": "x y", "stream": false,
                      "options": {"num_predict": 2}});
    let (st, v) = post_json(&format!("{base}/api/generate"), &body).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["response"].as_str().unwrap().split_whitespace().count(),
        2
    );
    assert_eq!(v["eval_count"], 2);
    // Real Ollama reports a small load_duration even when loaded already.
    assert!(
        v["load_duration"].as_u64().unwrap() < 5_000_000,
        "loaded already: {v}"
    );

    // Empty prompt only loads.
    let (_, v) = post_json(
        &format!("{base}/api/generate"),
        &json!({"model": "llama3.2", "prompt": "", "stream": false}),
    )
    .await;
    assert_eq!(v["done_reason"], "load");

    let (_, v) = get(&format!("{base}/api/version")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&v).unwrap()["version"],
        "0.33.0+sim"
    );
    let (_, v) = get(&format!("{base}/api/tags")).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["models"][0]["name"], "llama3.2:latest");
    assert_eq!(v["models"][0]["details"]["quantization_level"], "Q4_K_M");
    let (_, v) = get(&format!("{base}/api/ps")).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["models"][0]["context_length"], 4096);
    let (st, v) = post_json(&format!("{base}/api/show"), &json!({"model": "llama3.2"})).await;
    assert_eq!(st, 200);
    assert_eq!(v["model_info"]["general.architecture"], "llama");
    let (st, v) = post_json(&format!("{base}/api/show"), &json!({"model": "nope"})).await;
    assert_eq!(st, 404);
    assert!(v["error"].is_string());
    // The vLLM /metrics families belong to the vLLM profile only.
    let (_, m) = get(&format!("{base}/metrics")).await;
    assert!(!m.contains("vllm:") && m.contains("benchkeep_sim_requests_total"));
}

#[tokio::test]
async fn unknown_models_get_each_servers_404() {
    let v = start(fast(Profile::Vllm)).await;
    let (st, e) = post_json(
        &format!("{}/chat/completions", v.openai_base_url()),
        &chat("other", Some(2), false),
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(e["error"]["type"], "NotFoundError");
    assert_eq!(e["error"]["code"], 404);
    // The native API accepts `name` and `name:latest`.
    let native = format!("{}/api/generate", v.base_url());
    let ok = json!({"model": "sim-model:latest", "prompt": "a", "stream": false,
                    "options": {"num_predict": 1}});
    assert_eq!(post_json(&native, &ok).await.0, 200);
    let (st, e) = post_json(&native, &json!({"model": "llama9", "prompt": "a"})).await;
    assert_eq!(st, 404);
    assert_eq!(e["error"], "model 'llama9' not found");

    let o = start(fast(Profile::Ollama)).await;
    let (st, e) = post_json(
        &format!("{}/chat/completions", o.openai_base_url()),
        &chat("other", Some(2), false),
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(e["error"]["type"], "not_found_error");
    assert_eq!(e["error"]["code"], Value::Null);
}

#[tokio::test]
async fn context_limit_is_vllms_400() {
    let mut c = fast(Profile::Vllm);
    c.max_model_len = 10;
    let s = start(c).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let (st, e) = post_json(&url, &chat("sim-model", Some(8), true)).await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["type"], "BadRequestError");
    assert_eq!(e["error"]["code"], 400);
    assert_eq!(e["error"]["param"], Value::Null);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("maximum context length is 10 tokens")
            && msg.contains("(6 in the messages, 8 in the completion)"),
        "{msg}"
    );
    let (st, e) = post_json(&url, &chat("sim-model", Some(11), false)).await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["param"], "max_tokens");
    // Without max_tokens the output fills what is left of the context.
    let (st, v) = post_json(&url, &chat("sim-model", None, false)).await;
    assert_eq!(st, 200);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
}

#[tokio::test]
async fn malformed_requests_get_400_in_each_shape() {
    let s = start(fast(Profile::Vllm)).await;
    let base = s.base_url();
    for (path, body) in [
        ("/v1/chat/completions", "{not json"),
        ("/v1/chat/completions", "[1,2]"),
        ("/v1/chat/completions", ""),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
        ),
        ("/v1/chat/completions", r#"{"model":"sim-model"}"#),
        (
            "/v1/chat/completions",
            r#"{"model":"sim-model","messages":{}}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"sim-model","messages":[5]}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"sim-model","messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"sim-model","messages":[{"role":"user","content":"x"}],"stream":"sure"}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"sim-model","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
        ),
        ("/v1/completions", r#"{"model":"sim-model"}"#),
        ("/v1/completions", r#"{"model":"sim-model","prompt":true}"#),
        ("/v1/completions", "\u{0}\u{1}\u{ff}"),
    ] {
        let (st, text) = post(&format!("{base}{path}"), body).await;
        assert_eq!(st, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        // pydantic's validation errors are "Bad Request" on real vLLM.
        let ty = v["error"]["type"].as_str().unwrap_or("");
        assert!(
            matches!(ty, "BadRequestError" | "Bad Request"),
            "{body}: {ty}"
        );
        assert_eq!(v["error"]["code"], 400);
        assert!(v["error"]["message"].is_string());
    }
    for (path, body) in [
        ("/api/chat", "{"),
        ("/api/chat", r#"{"messages":[]}"#),
        ("/api/chat", r#"{"model":"sim-model","messages":"x"}"#),
        ("/api/generate", r#"{"model":"sim-model","prompt":["a"]}"#),
        (
            "/api/generate",
            r#"{"model":"sim-model","prompt":"a","options":{"num_predict":"x"}}"#,
        ),
        ("/api/generate", ""),
    ] {
        let (st, text) = post(&format!("{base}{path}"), body).await;
        assert_eq!(st, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].is_string(), "{text}");
    }
    assert_eq!(s.stats().rejected, 19);
    // The server is still fine.
    let (st, _) = post(
        &format!("{base}/v1/chat/completions"),
        &chat("sim-model", Some(1), false).to_string(),
    )
    .await;
    assert_eq!(st, 200);
}

#[test]
fn oversized_bodies_get_413() {
    let mut c = fast(Profile::Vllm);
    c.max_body_bytes = 2048;
    let s = start_blocking(c);
    // Declared too large: answered before the body is read.
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 99999999\r\n\r\n{{\"model\""
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = conn.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("RequestEntityTooLargeError"), "{head}");
    // Chunked and too large: cut at the limit.
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    let chunk = "x".repeat(4000);
    write!(
        conn,
        "POST /api/chat HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = conn.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.contains("{\"error\":\"request body is larger"),
        "{head}"
    );
}

/// Texts and lengths of `n` sequential requests without max_tokens.
async fn outputs(seed: u64, n: usize) -> Vec<String> {
    let mut c = SimConfig::default();
    c.timing.no_delay = true;
    c.seed = seed;
    let s = start(c).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let mut out = Vec::new();
    for _ in 0..n {
        let (_, v) = post_json(&url, &chat("sim-model", None, false)).await;
        out.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    out
}

#[tokio::test]
async fn same_seed_same_outputs() {
    let a = outputs(42, 4).await;
    let b = outputs(42, 4).await;
    let c = outputs(43, 4).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let lens: Vec<usize> = a.iter().map(|t| t.split_whitespace().count()).collect();
    assert!(lens.iter().any(|l| *l != lens[0]), "lengths vary: {lens:?}");
    // A request-level seed pins the output regardless of arrival order.
    let mut cfg = SimConfig::default();
    cfg.timing.no_delay = true;
    let s = start(cfg).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let mut body = chat("sim-model", None, false);
    body["seed"] = json!(7);
    let first = post_json(&url, &body).await.1["choices"][0]["message"]["content"].clone();
    post_json(&url, &chat("sim-model", None, false)).await;
    let again = post_json(&url, &body).await.1["choices"][0]["message"]["content"].clone();
    assert_eq!(first, again);
}

#[test]
fn blocking_server_for_sync_callers() {
    let mut c = SimConfig::default();
    c.timing.no_delay = true;
    let s = start_blocking(c);
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    write!(
        conn,
        "GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let addr = s.addr();
    drop(s);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "closed after drop"
    );
}
