//! The vLLM 0.32 profile against its recordings.

use super::*;

#[tokio::test]
async fn vllm_generation_matches() {
    let s = vllm().await;
    for name in [
        "chat_stream_usage",
        "chat_stream_nousage",
        "chat_nostream",
        "chat_max_completion_tokens",
        "chat_min_tokens",
        "completions_nostream",
        "completions_stream_usage",
    ] {
        let (real, sim) = check(&s, "vllm", name).await;
        // The counts that follow from the request (not the prompt's, which needs the
        // real tokenizer).
        let usage = |r: &Resp| -> Option<serde_json::Value> {
            units(r, &r.body())
                .iter()
                .filter_map(|u| serde_json::from_str::<serde_json::Value>(u).ok())
                .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        };
        assert_eq!(
            usage(&sim).map(|u| u["completion_tokens"].clone()),
            usage(&real).map(|u| u["completion_tokens"].clone()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn vllm_errors_and_info_match() {
    let s = vllm().await;
    for name in [
        "unknown_model",
        "unknown_model_stream",
        "max_tokens_over_context",
        "unknown_path",
        "malformed_json",
        "missing_messages",
        "wrong_type",
        "too_long",
    ] {
        let (real, sim) = check(&s, "vllm", name).await;
        let msg = |r: &Resp| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(&r.body()).unwrap()
        };
        let (rv, sv) = (msg(&real), msg(&sim));
        assert_eq!(sv["error"]["type"], rv["error"]["type"], "{name}");
        assert_eq!(sv["error"]["param"], rv["error"]["param"], "{name}");
        assert_eq!(sv["error"]["code"], rv["error"]["code"], "{name}");
        // Byte for byte: too_long's character count (15017 = the content's 15000 plus
        // "user: ", "\n" and "assistant:") and wrong_type's two errors included.
        assert_eq!(body_str(&sim), body_str(&real), "{name}: error body");
    }
    for name in ["version", "health", "models", "tokenize", "tokenize_chat"] {
        check(&s, "vllm", name).await;
    }
}

#[tokio::test]
async fn vllm_metrics_histograms_match() {
    let s = vllm().await;
    send(s.addr(), &fixture("vllm", "chat_nostream", "req")).await;
    let real = Resp::parse(&fixture("vllm", "metrics_after", "raw"));
    let (raw, _) = send(s.addr(), &fixture("vllm", "metrics_after", "req")).await;
    let sim = Resp::parse(&raw);
    assert_eq!(sim.status, 200);
    assert_eq!(sim.header("content-type"), real.header("content-type"));
    let (rb, sb) = (body_str(&real), body_str(&sim));
    for h in [
        "vllm:time_to_first_token_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:e2e_request_latency_seconds",
    ] {
        let buckets = |b: &str| -> Vec<String> {
            b.lines()
                .filter(|l| l.starts_with(&format!("{h}_bucket{{")))
                .filter_map(|l| l.split("le=\"").nth(1))
                .map(|l| l.split('"').next().unwrap().to_string())
                .collect()
        };
        assert!(rb.contains(&format!("# TYPE {h} histogram")), "{h}");
        assert!(sb.contains(&format!("# TYPE {h} histogram")), "{h} in sim");
        assert_eq!(buckets(&sb), buckets(&rb), "{h}: buckets");
    }
}

/// `s` with every run of digits replaced by `#`.
fn digits_out(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// A request of the recorded kind with other values: its error must follow the recorded
/// message's pattern (`loc`/count/limit numbers and `input` values aside).
#[tokio::test]
async fn vllm_error_messages_follow_the_recorded_patterns() {
    let s = vllm().await;
    let post = |body: String| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let error = |r: &Resp| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&r.body()).unwrap()["error"].clone()
    };
    let real = |name: &str| Resp::parse(&fixture("vllm", name, "raw"));
    let addr = s.addr();
    let ask = |body: String| {
        let req = post(body);
        async move { Resp::parse(&send(addr, req.as_bytes()).await.0) }
    };

    // Over the character bound with two messages: 7000 + 3000 characters of content,
    // "system: " + "\n" + "user: " + "\n" + "assistant:" = 26 more.
    let sim = ask(format!(
        r#"{{"model":"tiny","messages":[{{"role":"system","content":"{}"}},{{"role":"user","content":"{}"}}],"max_tokens":4}}"#,
        "y".repeat(7000),
        "z".repeat(3000)
    ))
    .await;
    let rec = real("too_long");
    compare("too_long (10026 characters)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["type"], re["type"]);
    assert_eq!(se["param"], re["param"]);
    let msg = se["message"].as_str().unwrap();
    assert_eq!(digits_out(msg), digits_out(re["message"].as_str().unwrap()));
    assert!(
        msg.contains("contains 10026 characters (more than 6144 "),
        "{msg}"
    );
    // Under the bound the token-based checks answer as before.
    let sim = ask(format!(
        r#"{{"model":"tiny","messages":[{{"role":"user","content":"{}"}}],"max_tokens":4}}"#,
        "a ".repeat(1500)
    ))
    .await;
    assert_eq!(sim.status, 400);
    let msg = error(&sim)["message"].as_str().unwrap().to_string();
    assert!(msg.contains("However, you requested 1504 tokens"), "{msg}");

    // Three invalid fields: each listed, in the model's field order, the first as param.
    let sim = ask(
        r#"{"stream": "maybe", "max_tokens": "y", "messages": "other", "model": "tiny"}"#
            .to_string(),
    )
    .await;
    let rec = real("wrong_type");
    compare("wrong_type (3 fields)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["type"], re["type"]);
    assert_eq!(se["param"], re["param"]);
    let lines = |m: &serde_json::Value| -> Vec<String> {
        m["message"]
            .as_str()
            .unwrap()
            .split('\n')
            .map(|l| l.split("'input': ").next().unwrap().to_string())
            .collect()
    };
    let (rl, sl) = (lines(&re), lines(&se));
    assert_eq!(sl[0], "3 validation errors:");
    assert_eq!(digits_out(&sl[0]), digits_out(&rl[0]).replace("2", "#"));
    assert_eq!(sl[1..3], rl[1..3], "messages and max_tokens lines");
    assert_eq!(
        sl[3],
        "  {'type': 'bool_parsing', 'loc': 'body.stream', 'msg': 'Input should be a valid \
         boolean, unable to interpret input', "
    );
    let m = se["message"].as_str().unwrap();
    assert!(
        m.contains("'input': 'other'}") && m.contains("'input': 'maybe'}"),
        "{m}"
    );

    // Missing messages in a larger body, malformed JSON cut at another offset.
    let sim = ask(r#"{"model": "tiny", "max_tokens": 3}"#.to_string()).await;
    let rec = real("missing_messages");
    compare("missing_messages (2 keys)", &rec, &sim);
    assert_eq!(
        error(&sim)["message"],
        error(&rec)["message"]
            .as_str()
            .unwrap()
            .replace("<dict of 1 items>", "<dict of 2 items>")
    );
    let sim = ask(r#"{"model": "tiny",   "messages": ["#.to_string()).await;
    let rec = real("malformed_json");
    compare("malformed_json (offset 33)", &rec, &sim);
    let (re, se) = (error(&rec), error(&sim));
    assert_eq!(se["param"], "body.33");
    assert_eq!(
        se["message"],
        re["message"]
            .as_str()
            .unwrap()
            .replace("body.31", "body.33")
    );
}
