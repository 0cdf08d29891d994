//! The server's own view of a run (issue 14, item 4) against the simulator: vLLM's
//! `/metrics` before/after difference reconciled with the simulator's configured prefill
//! and queue time, the client-side remainder small and positive, the running/waiting
//! series file known to `verify`, Ollama's durations, a server without vLLM metrics, the
//! switch to turn scraping off, and the sweep's `server_queue_growth` stop.

use crate::support::api::sim::Profile;
use crate::support::server_view::{num, run_sv, series, view};
use crate::support::sim::{start_blocking, timed};
use crate::support::store::{all_files, raw_names};
use crate::support::sweeps::{points, sweep_synthetic};
use crate::support::{bk_std, out};

/// One request at a time: the server's queue is empty and its prefill is exactly the
/// configured 40 ms step; its TTFT is queue + prefill, and the client's TTFT is that plus
/// a small, positive remainder (HTTP, the loopback, the client).
#[test]
fn vllm_means_match_the_configured_prefill_and_an_empty_queue() {
    let sim = start_blocking(timed(Profile::Vllm, 40.0, 2.0));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (_, _, m) = run_sv(&store, &sim.base_url(), "8", "1", "5", &[]);
    let v = view(&m);
    assert_eq!(v["source"], "vllm_metrics", "{v:#}");
    assert_eq!(v["requests"], 8, "exactly this run's requests: {v:#}");
    assert!(v.get("other_traffic").is_none(), "{v:#}");
    let prefill = num(&m, "mean_ms.prefill");
    assert!((prefill - 40.0).abs() < 0.5, "prefill {prefill}");
    let queue = num(&m, "mean_ms.queue");
    assert!((0.0..5.0).contains(&queue), "queue {queue}");
    let ttft = num(&m, "mean_ms.ttft");
    assert!((ttft - (queue + prefill)).abs() < 0.5, "{v:#}");
    assert_eq!(v["generation_tokens"], 40);
    assert_eq!(v["preemptions"], 0);
    // Where the time went: the parts add up, the remainder is the client's side.
    let b = &v["breakdown"];
    let client = num(&m, "breakdown.client_ttft_ms");
    let rem = num(&m, "breakdown.remainder_ms");
    assert!(
        (client - (queue + prefill + rem)).abs() < 0.01,
        "parts do not add up: {b:#}"
    );
    assert!(rem > 0.0 && rem < 200.0, "remainder {rem}: {b:#}");
    assert_eq!(
        m["results"]["latency_ms"]["ttft"]["mean"].as_f64().unwrap(),
        client
    );
    // Percentiles from buckets are marked as such: 40 ms lies in vLLM's (0.04, 0.06] TTFT
    // bucket.
    let p = &v["percentiles_from_buckets"]["ttft"];
    assert_eq!(p["from_buckets"], true, "{v:#}");
    assert!((40.0..=60.0).contains(&p["p50"].as_f64().unwrap()), "{p}");
}

/// One sequence in the batch and four clients: three wait. The server's mean queue time
/// is most of the client's TTFT, its series shows the waiting requests, `verify` knows
/// the series file, `show` says where the time went, and no credential reaches a file.
#[test]
fn a_full_batch_shows_as_server_queue_and_waiting_series() {
    let mut c = timed(Profile::Vllm, 20.0, 2.0);
    c.max_num_seqs = 1;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (_, _, m) = run_sv(
        &store,
        &sim.base_url(),
        "24",
        "4",
        "10",
        &["--header", "Authorization: Bearer sv-sekrit-123"],
    );
    let v = view(&m);
    assert_eq!(v["requests"], 24, "{v:#}");
    // A request holds the batch for 20 + 9 x 2 = 38 ms and up to three are ahead of a
    // newcomer (fewer while a loaded client turns around): the queue outweighs the prefill.
    let queue = num(&m, "mean_ms.queue");
    assert!(queue > 30.0, "queue {queue}: {v:#}");
    let prefill = num(&m, "mean_ms.prefill");
    assert!((prefill - 20.0).abs() < 0.5, "prefill {prefill}");
    let rem = num(&m, "breakdown.remainder_ms");
    assert!(rem > 0.0 && rem < queue, "remainder {rem}, queue {queue}");
    let s = &v["series"];
    assert!(s["samples"].as_u64().unwrap() >= 3, "{s:#}");
    assert_eq!(s["running_max"], 1.0, "{s:#}");
    assert!(s["waiting_max"].as_f64().unwrap() >= 2.0, "{s:#}");
    let lines = series(&store, &m);
    assert_eq!(lines.len() as u64, s["samples"].as_u64().unwrap());
    assert!(lines.iter().all(|l| l["t_s"].as_f64().unwrap() > 0.0));
    assert!(lines.iter().any(|l| l["waiting"].as_f64().unwrap() >= 2.0));
    for f in all_files(&store) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("sv-sekrit-123"),
            "{f:?}"
        );
    }
    let (code, o, e) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "verify: {o}{e}");
    let id = m["test_id"].as_str().unwrap();
    let (code, o, e) = out(bk_std(&store).args(["show", id]));
    assert_eq!(code, 0, "{e}");
    assert!(o.contains("Server view (vllm_metrics, 24 requests)"), "{o}");
    assert!(o.contains("Where the client's TTFT went"), "{o}");
}

/// Ollama's durations: queue (with the one-time load), prompt eval and eval, against the
/// client's TTFT.
#[test]
fn ollama_durations_give_the_breakdown() {
    let mut c = timed(Profile::Ollama, 30.0, 2.0);
    c.timing.load_ms = 100.0;
    c.num_parallel = 1;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut cmd = crate::support::cmd::run_synthetic(
        &store,
        "ollama",
        "llama3.2:latest",
        &sim.base_url(),
        "16",
        "5",
    );
    // No calibration probes: they would load the model before the run (the next test), and
    // this test needs the 100 ms load to fall on the run's first request.
    cmd.args([
        "--num-requests",
        "4",
        "--gpu",
        "off",
        "-q",
        "--calibrate",
        "off",
    ]);
    let (code, o, e) = out(&mut cmd);
    assert_eq!(code, 0, "{o}{e}");
    let m = crate::support::store::only_metadata(&store);
    let v = view(&m);
    assert_eq!(v["source"], "ollama_durations", "{v:#}");
    assert_eq!(v["requests"], 4);
    // The 30 ms step, less the small `load_duration` Ollama reports for a loaded model.
    let prefill = num(&m, "mean_ms.prefill");
    assert!(prefill > 20.0 && prefill <= 30.5, "prefill {prefill}");
    // The 100 ms load falls on the first request: 25 ms of queue on average, at least.
    assert!(num(&m, "mean_ms.queue") >= 24.0, "{v:#}");
    let rem = num(&m, "breakdown.remainder_ms");
    assert!(rem > 0.0 && rem < 200.0, "remainder {rem}: {v:#}");
    assert!(
        !raw_names(&store)
            .iter()
            .any(|n| n.ends_with(".server.jsonl"))
    );
}

/// With calibration on (the default), the probes are the first requests Ollama sees: the
/// 100 ms model load falls on a probe and is kept as `prompt_calibration.server_load_ms`,
/// and the run's own queue no longer carries it.
#[test]
fn calibration_probes_keep_the_model_load_they_paid() {
    let mut c = timed(Profile::Ollama, 30.0, 2.0);
    c.timing.load_ms = 100.0;
    c.num_parallel = 1;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut cmd = crate::support::cmd::run_synthetic(
        &store,
        "ollama",
        "llama3.2:latest",
        &sim.base_url(),
        "16",
        "5",
    );
    cmd.args(["--num-requests", "4", "--gpu", "off", "-q"]);
    let (code, o, e) = out(&mut cmd);
    assert_eq!(code, 0, "{o}{e}");
    let m = crate::support::store::only_metadata(&store);
    let cal = &m["test"]["prompt_calibration"];
    assert_eq!(cal["method"], "probe_usage", "{cal:#}");
    let load = cal["server_load_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("{cal:#}"));
    assert!(
        (100.0..1000.0).contains(&load),
        "the load a probe paid: {load}"
    );
    // The run's four requests: the 30 ms step, no 100 ms load among them (25 ms a request).
    let queue = num(&m, "mean_ms.queue");
    assert!(queue < 20.0, "queue {queue}: {:#}", view(&m));
}

/// An OpenAI-compatible server without vLLM's metrics (here Ollama's /v1): noted once as
/// unavailable, the run is unaffected. `--no-server-metrics` scrapes nothing at all.
#[test]
fn no_vllm_metrics_is_a_note_and_scraping_can_be_turned_off() {
    let mut c = timed(Profile::Ollama, 1.0, 1.0);
    c.model = "sim-model".into();
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("a");
    let (_, _, m) = run_sv(
        &store,
        &sim.base_url(),
        "4",
        "1",
        "3",
        &["--api", "openai-chat"],
    );
    assert_eq!(m["status"], "completed");
    let v = view(&m);
    assert_eq!(v["source"], "unavailable", "{v:#}");
    assert!(
        v["note"].as_str().unwrap().contains("no vllm: metrics"),
        "{v:#}"
    );
    assert!(
        !raw_names(&store)
            .iter()
            .any(|n| n.ends_with(".server.jsonl"))
    );

    let vllm = start_blocking(timed(Profile::Vllm, 1.0, 1.0));
    let store = dir.path().join("b");
    let (_, _, m) = run_sv(
        &store,
        &vllm.base_url(),
        "4",
        "1",
        "3",
        &["--no-server-metrics"],
    );
    assert!(m["results"].get("server_view").is_none(), "{m:#}");
    assert_eq!(raw_names(&store).len(), 1, "{:?}", raw_names(&store));
}

/// A rate sweep past what two sequences in the batch can serve: the server's waiting
/// requests grow within the point, and the sweep stops with `server_queue_growth`.
#[test]
fn sweep_stops_when_the_servers_queue_grows() {
    let mut c = timed(Profile::Vllm, 2.0, 5.0);
    c.max_num_seqs = 2;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(
        sweep_synthetic(&store, "vllm", &sim.base_url(), "20").args([
            "--num-requests",
            "60",
            "--rate",
            "2,80",
            "--arrival",
            "constant",
            "--server-metrics-interval",
            "100ms",
        ]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let p = points(&store);
    assert_eq!(p.len(), 2, "{o}{e}");
    assert!(p[0]["sweep"].get("stop").is_none(), "{:#}", p[0]);
    let stop = &p[1]["sweep"]["stop"];
    assert_eq!(stop["rule"], "server_queue_growth", "{:#}", p[1]);
    assert!(
        stop["detail"]
            .as_str()
            .unwrap()
            .contains("waiting requests grew"),
        "{stop}"
    );
    let s = &p[1]["results"]["server_view"]["series"];
    assert!(
        s["waiting_last_quarter"].as_f64().unwrap()
            > 2.0 * s["waiting_first_quarter"].as_f64().unwrap(),
        "{s:#}"
    );
}
