//! The Ollama 0.24 profile against its recordings.

use super::*;

#[tokio::test]
async fn ollama_native_generation_matches() {
    let s = ollama().await;
    for name in [
        "chat_stream",
        "chat_nostream",
        "generate_stream",
        "generate_nostream",
        "generate_default_stream",
        "generate_keepalive0",
        "generate_load_only",
    ] {
        let (_, sim) = check(&s, "ollama", name).await;
        let body = body_str(&sim);
        if name != "generate_load_only" {
            // load_duration is in every final object, warm or not.
            assert!(body.contains("\"load_duration\":"), "{name}: {body}");
        }
    }
    // /api/chat sends fewer chunks than tokens; /api/generate one per token.
    let (_, sim) = check(&s, "ollama", "chat_stream").await;
    let lines = units(&sim, &sim.body()).len() - 1;
    assert!(lines < 16, "{lines} chat chunks for 16 tokens");
    let (_, sim) = check(&s, "ollama", "generate_stream").await;
    assert_eq!(units(&sim, &sim.body()).len() - 1, 16);
}

#[tokio::test]
async fn ollama_compat_layer_matches() {
    let s = ollama().await;
    for name in [
        "v1_chat_stream",
        "v1_chat_stream_nousage",
        "v1_chat_nostream",
        "v1_completions_stream",
        "v1_models",
        "v1_model_tiny",
    ] {
        let (_, sim) = check(&s, "ollama", name).await;
        let body = body_str(&sim);
        if name.contains("stream") && !name.contains("nostream") {
            assert!(!body.contains(
                "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null"
            ));
            assert!(body.contains("\"system_fingerprint\":\"fp_ollama\""));
            assert!(body.contains("\"id\":\"c"), "{body}");
        }
    }
}

#[tokio::test]
async fn ollama_errors_match_exactly() {
    let s = ollama().await;
    for name in [
        "unknown_model_chat",
        "unknown_model_chat_nostream",
        "unknown_model_generate",
        "unknown_model_show",
        "unknown_model_v1_chat",
        "unknown_model_v1_chat_stream",
        "malformed_chat",
        "malformed_generate",
        "malformed_v1_chat",
        "empty_body_chat",
        "missing_model_field_chat",
        "unknown_path",
    ] {
        let (real, sim) = check(&s, "ollama", name).await;
        assert_eq!(body_str(&sim), body_str(&real), "{name}: error body");
    }
}

#[tokio::test]
async fn ollama_info_endpoints_match() {
    let s = ollama().await;
    for name in ["root_get", "root_head", "version", "tags", "show"] {
        check(&s, "ollama", name).await;
    }
    let (_, sim) = check(&s, "ollama", "ps_after_unload").await;
    assert_eq!(body_str(&sim), "{\"models\":[]}");
    send(s.addr(), &fixture("ollama", "generate_nostream", "req")).await;
    check(&s, "ollama", "ps_loaded").await;
    let (_, sim) = check(&s, "ollama", "show").await;
    assert!(body_str(&sim).contains("\"tokenizer.ggml.merges\":null"));
}

#[tokio::test]
async fn ollama_queued_request_waits_for_its_headers() {
    // OLLAMA_NUM_PARALLEL=1: the second request gets no status line until its first
    // chunk, so its first byte comes after the first request's whole stream.
    let mut c = SimConfig::for_profile(Profile::Ollama);
    c.model = "tiny".into();
    c.timing.prefill_base_ms = 1.0;
    c.timing.itl_ms = 2.0;
    c.timing.itl_per_seq_ms = 0.0;
    c.timing.load_ms = 0.0;
    c.num_parallel = 1;
    let s = sim::start(c).await.unwrap();
    let (addr, r1, r2) = (
        s.addr(),
        fixture("ollama", "concurrent_1", "req"),
        fixture("ollama", "concurrent_2", "req"),
    );
    let first = tokio::spawn(async move { send(addr, &r1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (raw2, ttfb2) = send(addr, &r2).await;
    let (raw1, _) = first.await.unwrap();
    let (real1, real2) = (
        Resp::parse(&fixture("ollama", "concurrent_1", "raw")),
        Resp::parse(&fixture("ollama", "concurrent_2", "raw")),
    );
    let (sim1, sim2) = (Resp::parse(&raw1), Resp::parse(&raw2));
    compare("concurrent_1", &real1, &sim1);
    compare("concurrent_2", &real2, &sim2);
    // 200 tokens at 2 ms: the first stream takes ~400 ms, minus the 50 ms head start.
    assert!(ttfb2 >= Duration::from_millis(300), "{ttfb2:?}");
    let last = |r: &Resp| -> serde_json::Value {
        serde_json::from_str(units(r, &r.body()).last().unwrap()).unwrap()
    };
    let (v1, v2) = (last(&sim1), last(&sim2));
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    // total_duration includes the queue wait, eval_duration does not.
    assert!(
        n(&v2, "total_duration") >= n(&v2, "eval_duration") + 300_000_000,
        "{v2}"
    );
    assert!(
        n(&v2, "total_duration") > n(&v1, "total_duration"),
        "{v1} {v2}"
    );
}

// ---------------------------------------------------------------- vLLM
