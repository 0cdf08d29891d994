//! The timing model: prefill and decode formulas, the vLLM batch queue, Ollama's
//! serial slots and one-time load, jitter, and `--no-delay`. Latencies are checked with
//! a firm lower bound (the simulated clock never runs early) and a loose upper bound.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::api::sim::{Profile, SimStats};
use crate::support::sim::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Server-reported Ollama durations of a non-streamed `/api/generate`.
async fn generate(base: &str, prompt: &str, n: u32) -> Value {
    generate_with(base, "sim-model", prompt, n).await
}

async fn generate_with(base: &str, model: &str, prompt: &str, n: u32) -> Value {
    let body = json!({"model": model, "prompt": prompt, "stream": false,
                      "options": {"num_predict": n}});
    let (st, v) = post_json(&format!("{base}/api/generate"), &body).await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test]
async fn prefill_and_decode_follow_the_formulas() {
    let mut c = fast(Profile::Vllm);
    c.timing.prefill_base_ms = 3.0;
    c.timing.prefill_tok_s = 1000.0;
    c.timing.itl_ms = 2.0;
    let s = start(c).await;
    let v = generate(&s.base_url(), "one two three four five", 4).await;
    let d = |k: &str| v[k].as_u64().unwrap() as f64 / 1e6;
    // prefill = 3 ms + 5 tokens / 1000 tok/s = 8 ms; vLLM's prefill yields token 1,
    // the other 3 take one 2 ms decode step each.
    assert!((d("prompt_eval_duration") - 8.0).abs() < 0.01, "{v}");
    // (The simulated clock only ever runs late, when the process was starved.)
    assert!(
        d("eval_duration") >= 6.0 - 0.01 && d("eval_duration") < 200.0,
        "{v}"
    );
    assert!(d("total_duration") >= 14.0);

    // Client side: TTFT >= prefill, and the stream lasts at least prefill + decode.
    let url = format!("{}/chat/completions", s.openai_base_url());
    let (_, t0, evs) = stream(&url, &chat("sim-model", Some(10), true)).await;
    let first = evs
        .iter()
        .find(|e| e.data.contains("\"content\":\"") && !e.data.contains("\"content\":\"\""))
        .unwrap();
    let ttft = first.at - t0;
    assert!(ttft >= ms(3) + Duration::from_micros(6000), "{ttft:?}");
    assert!(ttft < ms(500), "{ttft:?}");
    assert!(evs.last().unwrap().at - t0 >= ms(9 + 18));
}

#[tokio::test]
async fn vllm_queues_beyond_max_num_seqs() {
    let mut c = fast(Profile::Vllm);
    c.max_num_seqs = 2;
    c.timing.prefill_base_ms = 5.0;
    c.timing.itl_ms = 10.0;
    let s = start(c).await;
    let url = format!("{}/chat/completions", s.openai_base_url());
    let t_start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (_, _, evs) = stream(&url, &chat("sim-model", Some(20), true)).await;
            evs[1].at // first content chunk
        }));
    }
    // While the first pair runs (195 ms), the other four wait.
    let mut seen: Option<(SimStats, String)> = None;
    let deadline = Instant::now() + ms(180);
    while Instant::now() < deadline {
        let st = s.stats();
        if st.running == 2 && st.waiting == 4 {
            seen = Some((st, get(&format!("{}/metrics", s.base_url())).await.1));
            break;
        }
        tokio::time::sleep(ms(1)).await;
    }
    let mut firsts = Vec::new();
    for t in tasks {
        firsts.push(t.await.unwrap() - t_start);
    }
    firsts.sort();
    // Batches of two, each prefill 5 ms + 19 decode steps of 10 ms = 195 ms: first
    // tokens at >= 5 ms, >= 200 ms, >= 395 ms after the first request arrived.
    assert!(firsts[4] >= ms(395) && firsts[5] >= ms(395), "{firsts:?}");
    assert!(firsts[2] >= ms(200) && firsts[3] >= ms(200), "{firsts:?}");
    assert!(firsts[0] < ms(150), "{firsts:?}");
    let (st, metrics) = seen.expect("saw 2 running and 4 waiting");
    assert_eq!((st.running, st.waiting), (2, 4));
    assert!(
        metrics.contains("vllm:num_requests_running{engine=\"0\",model_name=\"sim-model\"} 2.0")
    );
    assert!(
        metrics.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"sim-model\"} 4.0")
    );
    let kv = metrics
        .lines()
        .find(|l| l.starts_with("vllm:kv_cache_usage_perc{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(kv > 0.0 && kv < 1.0, "{kv}");
}

#[tokio::test]
async fn bigger_batches_mean_slower_steps_but_more_throughput() {
    let mut c = fast(Profile::Vllm);
    c.timing.itl_ms = 2.0;
    c.timing.itl_per_seq_ms = 1.0;
    let s = start(c).await;
    let base = s.base_url();
    let t = Instant::now();
    let single = generate(&base, "a", 20).await;
    let single_wall = t.elapsed();
    let single_eval = single["eval_duration"].as_u64().unwrap();
    assert!((19 * 2_000_000..19 * 2_000_000 + 200_000_000).contains(&single_eval));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move { generate(&base, "a", 20).await }));
    }
    let mut evals = Vec::new();
    for task in tasks {
        evals.push(task.await.unwrap()["eval_duration"].as_u64().unwrap());
    }
    let batch_wall = t.elapsed();
    let max_eval = *evals.iter().max().unwrap();
    assert!(max_eval as f64 > 1.5 * single_eval as f64, "{evals:?}");
    // 8x the tokens in well under 8x the time.
    assert!(
        batch_wall < single_wall * 6,
        "{batch_wall:?} vs {single_wall:?}"
    );
}

#[tokio::test]
async fn ollama_serializes_at_num_parallel_1() {
    let mut c = fast(Profile::Ollama);
    c.num_parallel = 1;
    c.timing.prefill_base_ms = 5.0;
    c.timing.itl_ms = 10.0;
    let s = start(c).await;
    let url = format!("{}/api/chat", s.base_url());
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
                      "options": {"num_predict": 5}});
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (url, body) = (url.clone(), body.clone());
        tasks.push(tokio::spawn(async move { stream(&url, &body).await.2 }));
    }
    let (mut max_running, mut max_waiting) = (0, 0);
    while tasks.iter().any(|t| !t.is_finished()) {
        let st = s.stats();
        max_running = max_running.max(st.running);
        max_waiting = max_waiting.max(st.waiting);
        tokio::time::sleep(ms(1)).await;
    }
    let wall = t0.elapsed();
    let mut totals = Vec::new();
    for t in tasks {
        let evs = t.await.unwrap();
        let last = evs.last().unwrap().json();
        assert_eq!(last["eval_count"], 5);
        totals.push(last["total_duration"].as_u64().unwrap());
    }
    totals.sort();
    // Service time: prefill 5 ms + 5 decode steps of 10 ms (Ollama: the first token
    // needs a decode step) = 55 ms; one after the other.
    assert!(wall >= ms(165), "{wall:?}");
    assert_eq!(max_running, 1);
    assert_eq!(max_waiting, 2);
    assert!(totals[2] >= 2 * 55_000_000, "{totals:?}");

    // Three slots: all at once.
    let mut c = fast(Profile::Ollama);
    c.num_parallel = 3;
    c.timing.prefill_base_ms = 5.0;
    c.timing.itl_ms = 10.0;
    let s = start(c).await;
    let url = format!("{}/api/chat", s.base_url());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (url, body) = (url.clone(), body.clone());
        tasks.push(tokio::spawn(async move { stream(&url, &body).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed();
    assert!(wall >= ms(55) && wall < ms(140), "{wall:?}");
}

#[tokio::test]
async fn ollama_loads_once() {
    let mut c = fast(Profile::Ollama);
    c.timing.load_ms = 40.0;
    let s = start(c).await;
    let url = format!("{}/api/chat", s.base_url());
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
                      "stream": false, "options": {"num_predict": 2}});
    let t0 = Instant::now();
    let (_, first) = post_json(&url, &body).await;
    assert!(t0.elapsed() >= ms(40));
    let load = first["load_duration"].as_u64().unwrap();
    assert!(load >= 40_000_000, "{first}");
    let total = first["total_duration"].as_u64().unwrap();
    assert!(
        total
            >= load
                + first["prompt_eval_duration"].as_u64().unwrap()
                + first["eval_duration"].as_u64().unwrap()
    );
    let t1 = Instant::now();
    let (_, second) = post_json(&url, &body).await;
    // Real Ollama reports a small load_duration even when loaded already.
    assert!(
        second["load_duration"].as_u64().unwrap() < 40_000_000,
        "{second}"
    );
    assert!(t1.elapsed() < ms(40) + ms(200));
}

#[tokio::test]
async fn jitter_spreads_within_bounds() {
    let mut c = fast(Profile::Vllm);
    c.timing.itl_ms = 2.0;
    c.timing.jitter = 0.5;
    let s = start(c).await;
    let v = generate(&s.base_url(), "a", 11).await;
    let eval = v["eval_duration"].as_u64().unwrap() as f64 / 1e6;
    assert!((10.0..=230.0).contains(&eval), "{eval}");
    assert!(
        (eval - 20.0).abs() > 1e-6,
        "jitter changed something: {eval}"
    );
}

#[tokio::test]
async fn no_delay_is_instant() {
    let mut c = fast(Profile::Ollama);
    c.timing.no_delay = true;
    c.timing.load_ms = 5_000.0;
    c.max_model_len = 100_000;
    let s = start(c).await;
    let t0 = Instant::now();
    let url = format!("{}/chat/completions", s.openai_base_url());
    let (_, _, evs) = stream(&url, &chat("llama3.2", Some(20_000), true)).await;
    // Real Ollama sends fewer chat chunks than tokens: every third token rides with the
    // next (6666 of 20000), then the finish chunk and `[DONE]`.
    assert_eq!(evs.len(), 20_000 - 6_666 + 1 + 1);
    assert!(t0.elapsed() < ms(3000));
    let v = generate_with(&s.base_url(), "llama3.2", "a b", 3).await;
    // Real Ollama reports a small load_duration even when loaded already.
    assert!(v["load_duration"].as_u64().unwrap() < 5_000_000_000);
    assert!(v["eval_duration"].as_u64().unwrap() > 0);
    assert!(v["prompt_eval_duration"].as_u64().unwrap() > 0);
    assert_eq!(s.stats().running, 0);
}
