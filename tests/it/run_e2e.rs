//! `run` against the built-in simulator on 127.0.0.1 (port 0), in-process: both API
//! families streamed and not, timing against the configured latencies (firm lower bounds,
//! loose upper bounds), every fault mode as its error kind, open-loop rates.

use crate::support::api::digest::hex;
use crate::support::api::schema::{ErrorKind, Status};
use crate::support::api::sim::{Profile, SimConfig};
use crate::support::cmd::{refs, run_in_process, synthetic_args};
use crate::support::hostile::{Hostile, hostile};
use crate::support::sim::{fast_exact, start, timed};
use crate::support::store::{raw_path, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_streamed_timing_matches_the_simulator() {
    let (prefill, itl, out) = (30.0, 10.0, 12u64);
    let sim = start(timed(Profile::Vllm, prefill, itl)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "3", &out.to_string());
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let m = &o.metadata;
    assert_eq!(m.status, Status::Completed);
    assert!(!o.interrupted && o.store_error.is_none());
    let r = &m.results;
    assert_eq!((r.success_count, r.failure_count), (3, 0));
    assert_eq!(r.total_completion_tokens, 3 * out, "tokens come from usage");
    let server = m.server.as_ref().unwrap();
    assert_eq!(server.api, "openai-chat");
    assert_eq!(server.max_model_len, Some(8192));
    assert!(server.version.as_deref().unwrap().starts_with("0.32"));
    let cache = &server.details["cache_config"];
    for k in [
        "gpu_memory_utilization",
        "enable_prefix_caching",
        "block_size",
        "cache_dtype",
    ] {
        assert!(cache.get(k).is_some(), "cache_config lacks {k}: {cache}");
    }
    assert_eq!(m.test.input_sha256.as_ref().unwrap().len(), 64);
    assert_eq!(m.pid, None);

    let recs = records(&raw_path(dir.path(), m));
    assert_eq!(recs.len(), 3);
    for rec in &recs {
        assert!(rec.ok, "{rec:?}");
        assert_eq!(rec.completion_tokens, Some(out));
        assert_eq!(
            rec.chunks,
            Some(out),
            "one content chunk per token; the role chunk is not one"
        );
        assert_eq!(rec.itl_ms.len() as u64, out - 1);
        let ttft = rec.ttft_ms.unwrap();
        let e2e = rec.e2e_ms.unwrap();
        // Firm: the prefill step yields the first token; decoding takes (n-1) steps.
        assert!(ttft >= prefill, "ttft {ttft} < prefill {prefill}");
        assert!(e2e >= prefill + (out - 1) as f64 * itl, "e2e {e2e}");
        // Loose: nothing near the bound is asserted, only that it is not absurd.
        assert!(ttft < prefill + 2000.0, "ttft {ttft}");
        assert!(rec.lag_ms().unwrap() >= 0.0);
    }
    let l = r.latency_ms.as_ref().unwrap();
    let itl_mean = l.itl.as_ref().unwrap().mean;
    assert!(
        itl_mean >= itl * 0.5 && itl_mean < itl * 20.0,
        "itl {itl_mean}"
    );
    let tpot = l.tpot.as_ref().unwrap().mean;
    assert!(tpot >= itl * 0.5 && tpot < itl * 20.0, "tpot {tpot}");
    assert!(r.total_time_seconds > 0.0);
    // derived files were written
    assert!(dir.path().join("reports/COMPARISON.md").is_file());
    assert!(dir.path().join("analysis/summary.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_streamed_and_whole() {
    for profile in [Profile::Vllm, Profile::Ollama] {
        let sim = start(fast_exact(profile)).await;
        let model = if profile == Profile::Vllm {
            "sim-model"
        } else {
            "llama3.2"
        };
        for api in [
            "openai-chat",
            "openai-completions",
            "ollama-chat",
            "ollama-generate",
        ] {
            for stream in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let mut args = synthetic_args(&sim.base_url(), "p", model, "2", "5");
                args.extend(["--api".to_string(), api.to_string(), "--save-text".into()]);
                if !stream {
                    args.push("--no-stream".into());
                }
                let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
                let what = format!("{profile:?} {api} stream={stream}");
                assert_eq!(o.metadata.status, Status::Completed, "{what}");
                let recs = records(&raw_path(dir.path(), &o.metadata));
                assert_eq!(recs.len(), 2, "{what}");
                for rec in recs {
                    assert!(rec.ok, "{what}: {rec:?}");
                    assert_eq!(rec.completion_tokens, Some(5), "{what}");
                    assert!(rec.prompt_tokens.unwrap() >= 16, "{what}");
                    assert!(!rec.text.as_deref().unwrap_or("").is_empty(), "{what}");
                    assert_eq!(rec.ttft_ms.is_some(), stream, "{what}");
                    if api.starts_with("ollama") {
                        assert!(
                            rec.server.eval_duration_ns.is_some(),
                            "{what}: Ollama durations kept"
                        );
                    }
                }
                if profile == Profile::Ollama && api.starts_with("ollama") {
                    let d = &o.metadata.server.as_ref().unwrap().details;
                    assert!(d.contains_key("quantization_level"), "{what}: {d:?}");
                    assert!(d.contains_key("parameter_size"), "{what}");
                    assert!(
                        d.contains_key("size_vram"),
                        "{what}: /api/ps read after the run"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_native_timing() {
    let (prefill, itl, out) = (20.0, 10.0, 8u64);
    let sim = start(timed(Profile::Ollama, prefill, itl)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = synthetic_args(&sim.base_url(), "ollama", "llama3.2", "2", &out.to_string());
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    assert_eq!(
        o.metadata.server.as_ref().unwrap().api,
        "ollama-chat",
        "default for ollama"
    );
    for rec in records(&raw_path(dir.path(), &o.metadata)) {
        // Ollama: the first token needs one decode step after the prompt evaluation.
        assert!(rec.ttft_ms.unwrap() >= prefill + itl, "{rec:?}");
        assert!(rec.e2e_ms.unwrap() >= prefill + out as f64 * itl, "{rec:?}");
        assert_eq!(rec.completion_tokens, Some(out));
    }
    let st = o.metadata.results.server_timings.unwrap();
    assert_eq!(st.requests, 2);
}

/// Each fault mode yields its error kind, and the run still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_modes_become_error_kinds() {
    type Setup = fn(&mut SimConfig);
    let cases: Vec<(&str, Setup, &[&str], ErrorKind)> = vec![
        (
            "error-rate",
            |c| c.faults.error_rate = 1.0,
            &[],
            ErrorKind::HttpStatus,
        ),
        (
            "stream-error-rate",
            |c| c.faults.stream_error_rate = 1.0,
            &[],
            ErrorKind::StreamError,
        ),
        (
            "drop-rate",
            |c| c.faults.drop_rate = 1.0,
            &[],
            ErrorKind::CutShort,
        ),
        (
            "garbage-rate",
            |c| c.faults.garbage_rate = 1.0,
            &[],
            ErrorKind::InvalidJson,
        ),
        (
            "stall-after",
            |c| c.faults.stall_after = Some(2),
            &["--idle-timeout", "300ms"],
            ErrorKind::IdleTimeout,
        ),
        (
            "endless-line",
            |c| c.faults.endless_line = true,
            &["--max-line-bytes", "65536"],
            ErrorKind::TooLarge,
        ),
    ];
    for (profile, model, api) in [
        (Profile::Vllm, "sim-model", "openai-chat"),
        (Profile::Ollama, "llama3.2", "ollama-chat"),
    ] {
        for (name, setup, extra, kind) in &cases {
            let mut c = fast_exact(profile);
            setup(&mut c);
            let sim = start(c).await;
            let dir = tempfile::tempdir().unwrap();
            let mut args = synthetic_args(&sim.base_url(), "p", model, "3", "8");
            args.extend([
                "--api".to_string(),
                api.to_string(),
                "--concurrency".into(),
                "3".into(),
            ]);
            args.extend(extra.iter().map(|s| s.to_string()));
            let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
            let what = format!("{api} {name}");
            let m = &o.metadata;
            assert_eq!(m.status, Status::Failed, "{what}: every request failed");
            assert_eq!(m.results.failure_count, 3, "{what}");
            assert_eq!(
                m.results.errors_by_kind.get(kind.as_str()),
                Some(&3),
                "{what}: {:?}",
                m.results.errors_by_kind
            );
            for rec in records(&raw_path(dir.path(), m)) {
                assert_eq!(rec.error_kind, Some(*kind), "{what}: {rec:?}");
                assert!(!rec.error.as_deref().unwrap_or("").is_empty(), "{what}");
                if *kind == ErrorKind::HttpStatus {
                    assert_eq!(rec.http_status, Some(500));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn some_failures_make_a_partial_run_and_whole_request_timeout() {
    let mut c = fast_exact(Profile::Vllm);
    c.faults.error_rate = 0.5;
    c.seed = 3;
    let sim = start(c).await;
    let dir = tempfile::tempdir().unwrap();
    let args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "20", "4");
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let r = &o.metadata.results;
    assert_eq!(r.success_count + r.failure_count, 20);
    assert!(r.success_count > 0 && r.failure_count > 0, "{r:?}");
    assert_eq!(o.metadata.status, Status::Partial);

    // --timeout bounds the whole request, even while bytes keep coming
    let sim = start(timed(Profile::Vllm, 1.0, 50.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "1", "40");
    args.extend(["--timeout".into(), "300ms".into()]);
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    assert_eq!(o.metadata.results.errors_by_kind.get("timeout"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_rate_keeps_its_schedule() {
    let sim = start(fast_exact(Profile::Vllm)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "10", "2");
    args.extend([
        "--rate".into(),
        "50".into(),
        "--arrival".into(),
        "constant".into(),
        "--slo".into(),
        "ttft=10s".into(),
    ]);
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let mut sched: Vec<f64> = records(&raw_path(dir.path(), &o.metadata))
        .iter()
        .map(|r| r.scheduled_s.unwrap())
        .collect();
    sched.sort_by(f64::total_cmp);
    for (i, s) in sched.iter().enumerate() {
        assert!(
            (s - i as f64 * 0.02).abs() < 1e-6,
            "request {i} scheduled at {s}"
        );
    }
    let g = o.metadata.results.goodput.as_ref().unwrap();
    assert_eq!(g.good_requests, 10);
    assert_eq!(o.metadata.test.extra["load"]["mode"], "rate");
    assert_eq!(o.metadata.test.extra["slo_ms"]["ttft"], 10_000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_file_lines_repeat_and_warmup_is_not_counted() {
    let sim = start(fast_exact(Profile::Vllm)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"custom_id": "request-0", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "x", "messages": [{"role": "user", "content": "Name three primes."}], "max_tokens": 3}}"#,
            "\n",
            r#"{"prompt": "Say hi", "max_tokens": 2}"#,
            "\n"
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let base = sim.base_url();
    let input_s = input.display().to_string();
    let args = [
        "--platform",
        "vllm",
        "--base-url",
        &base,
        "--model",
        "sim-model",
        "--input",
        &input_s,
        "--num-requests",
        "5",
        "--warmup",
        "2",
        "--concurrency",
        "2",
    ];
    let o = run_in_process(&store, &args).await.unwrap();
    let m = &o.metadata;
    assert_eq!(m.results.success_count, 5);
    assert_eq!(m.test.input_file.as_deref(), Some(input_s.as_str()));
    assert_eq!(
        sim.stats().completed,
        7,
        "2 warm-up + 5 measured requests were sent"
    );
    let recs = records(&raw_path(&store, m));
    let mut ids: Vec<String> = recs.iter().map(|r| r.id.clone().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "3", "request-0", "request-0", "request-0"]);
    let tokens: u64 = recs.iter().map(|r| r.completion_tokens.unwrap()).sum();
    assert_eq!(tokens, 3 * 3 + 2 * 2, "each line's max_tokens is honoured");
    // the id is {platform}-{model}-{planned requests}-{date}
    assert!(m.test_id.starts_with("vllm-sim-model-5-"), "{}", m.test_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_runs_are_open_ended() {
    let sim = start(fast_exact(Profile::Vllm)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let args = [
        "--platform",
        "vllm",
        "--base-url",
        &base,
        "--model",
        "sim-model",
        "--synthetic",
        "--input-tokens",
        "4",
        "--output-tokens",
        "4",
        "--duration",
        "300ms",
        "--concurrency",
        "2",
    ];
    let o = run_in_process(dir.path(), &args).await.unwrap();
    let m = &o.metadata;
    assert_eq!(m.status, Status::Completed);
    assert!(m.results.success_count > 2, "{}", m.results.success_count);
    assert!(m.test_id.starts_with("vllm-sim-model-0-"), "{}", m.test_id);
    assert_eq!(m.test.num_requests, m.results.success_count);
    let last_sched = records(&raw_path(dir.path(), m))
        .iter()
        .map(|r| r.scheduled_s.unwrap())
        .fold(0.0, f64::max);
    assert!(
        last_sched < 0.3,
        "nothing is sent after --duration: {last_sched}"
    );
}

/// Hostile servers (RELIABILITY.md): each request fails with a named reason, memory stays
/// bounded by the caps, and the run goes on to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_fail_requests_with_a_named_reason() {
    let cases: [(Hostile, &[&str], ErrorKind); 5] = [
        (
            Hostile::EndlessEvents,
            &["--timeout", "300ms"],
            ErrorKind::Timeout,
        ),
        (
            Hostile::EndlessEvent,
            &["--max-line-bytes", "65536"],
            ErrorKind::TooLarge,
        ),
        (Hostile::BadUtf8, &[], ErrorKind::InvalidJson),
        (Hostile::HugeBody, &["--no-stream"], ErrorKind::TooLarge),
        (Hostile::JsonInsteadOfStream, &[], ErrorKind::NotAStream),
    ];
    for (mode, extra, kind) in cases {
        let addr = hostile(mode).await;
        let dir = tempfile::tempdir().unwrap();
        let mut args = synthetic_args(&format!("http://{addr}"), "x", "m", "2", "4");
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
        let r = &o.metadata.results;
        assert_eq!(
            r.errors_by_kind.get(kind.as_str()),
            Some(&2),
            "{mode:?}: {r:?}"
        );
        assert_eq!(o.metadata.status, Status::Failed, "{mode:?}");
    }
}

/// `test.input_sha256` pairs runs that sent the same requests: `--max-tokens` changes it
/// (synthetic and file inputs); a file without it keeps the file's own sha256, as `record`
/// stores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_sha256_changes_with_max_tokens() {
    use sha2::Digest;
    let sim = start(fast_exact(Profile::Vllm)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let sha_of = |extra: &[&str], n: usize| {
        let mut args = synthetic_args(&base, "vllm", "sim-model", "2", "8");
        args.extend(extra.iter().map(|s| s.to_string()));
        let store = dir.path().join(format!("s{n}"));
        async move {
            let o = run_in_process(&store, &refs(&args)).await.unwrap();
            assert_eq!(o.metadata.status, Status::Completed);
            o.metadata.test.input_sha256.unwrap()
        }
    };
    let plain = sha_of(&[], 0).await;
    let capped = sha_of(&["--max-tokens", "64"], 1).await;
    assert_ne!(plain, capped, "--max-tokens 64 sends other requests");
    assert_eq!(plain, sha_of(&[], 2).await, "deterministic");

    let input = dir.path().join("batch.jsonl");
    let text = concat!(
        r#"{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}}"#,
        "\n",
        r#"{"prompt": "Say hi", "max_tokens": 2}"#,
        "\n"
    );
    std::fs::write(&input, text).unwrap();
    let input_s = input.display().to_string();
    let file_sha = |extra: &'static [&'static str], n: usize| {
        let args: Vec<String> = [
            "--platform",
            "vllm",
            "--base-url",
            &base,
            "--model",
            "sim-model",
            "--input",
            &input_s,
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        let store = dir.path().join(format!("f{n}"));
        async move {
            let o = run_in_process(&store, &refs(&args)).await.unwrap();
            o.metadata.test.input_sha256.unwrap()
        }
    };
    let own = hex(&sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(file_sha(&[], 0).await, own, "the file's own sha256");
    let with = file_sha(&["--max-tokens", "4"], 1).await;
    assert_ne!(with, own);
    assert_ne!(with, file_sha(&["--max-tokens", "5"], 2).await);
}
