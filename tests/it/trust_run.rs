//! The definitions behind `run`'s figures (issue 14): goodput's undetermined requests and
//! its denominator, SLOs a run cannot measure, the slot wait of `--rate` with a
//! `--concurrency` cap kept apart from the latencies from the send, and the count of
//! successful requests without usage.

use crate::support::api::sim::Profile;
use crate::support::bk;
use crate::support::cmd::{analyze_cmd, refs, run_in_process, synthetic_args};
use crate::support::sim::{start, timed};
use crate::support::store::{raw_path, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_answers_are_undetermined_for_a_tpot_slo_not_failing() {
    let sim = start(timed(Profile::Vllm, 1.0, 1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "10", "1");
    args.extend(["--slo".into(), "ttft=10s,tpot=50ms,e2e=10s".into()]);
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let r = &o.metadata.results;
    assert_eq!(r.success_count, 10);
    for rec in records(&raw_path(dir.path(), &o.metadata)) {
        assert_eq!(
            rec.completion_tokens,
            Some(1),
            "the simulator sends 1 token"
        );
    }
    let g = r.goodput.as_ref().unwrap();
    assert_eq!(
        g.good_requests, 0,
        "no request met every SLO: none has a TPOT"
    );
    assert_eq!(g.undetermined_requests, Some(10));
    assert_eq!(g.undetermined_by_metric.get("tpot"), Some(&10));
    assert_eq!(g.denominator_requests, Some(0));
    assert_eq!(r.requests_without_usage, Some(0));
    let shown = bk(dir.path())
        .args(["show", &o.metadata.test_id])
        .assert()
        .success();
    let shown = String::from_utf8_lossy(&shown.get_output().stdout).to_string();
    assert!(
        shown.contains("(0 good, 0.0% of 0 judged, 10 undetermined)"),
        "{shown}"
    );
}

#[test]
fn slos_a_no_stream_run_cannot_measure_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for slo in ["ttft=1s", "tpot=50ms,e2e=2s"] {
        let o = bk(dir.path())
            .args([
                "run",
                "--platform",
                "vllm",
                "--base-url",
                "http://127.0.0.1:9",
                "--model",
                "m",
                "--synthetic",
                "--input-tokens",
                "4",
                "--output-tokens",
                "4",
                "--no-stream",
                "--slo",
                slo,
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{slo}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--no-stream") && err.contains("e2e"), "{err}");
    }
    assert!(
        !dir.path().join("metadata").exists()
            || std::fs::read_dir(dir.path().join("metadata"))
                .unwrap()
                .next()
                .is_none(),
        "nothing is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_rate_reports_the_slot_wait_and_latencies_from_the_send() {
    // Each request takes at least 30 ms; one arrives every 20 ms; one slot: the queue grows.
    let sim = start(timed(Profile::Vllm, 30.0, 1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "8", "2");
    args.extend(
        [
            "--rate",
            "50",
            "--arrival",
            "constant",
            "--concurrency",
            "1",
        ]
        .map(String::from),
    );
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let recs = records(&raw_path(dir.path(), &o.metadata));
    assert_eq!(recs.len(), 8);
    for r in &recs {
        let wait = r
            .slot_wait_ms
            .expect("every request of a capped rate has a slot wait");
        let late = (r.sent_s.unwrap() - r.scheduled_s.unwrap()) * 1000.0;
        assert!(
            wait <= late + 0.01,
            "the wait is part of the time to the send: {wait} {late}"
        );
        assert!(r.ttft_from_send_ms().unwrap() >= 30.0);
    }
    // The last request arrives at 140 ms and cannot start before 8 x 30 ms of work.
    let max_wait = recs
        .iter()
        .filter_map(|r| r.slot_wait_ms)
        .fold(0.0, f64::max);
    assert!(max_wait >= 50.0, "max slot wait {max_wait}");
    let l = o.metadata.results.latency_ms.as_ref().unwrap();
    let (ttft, from_send) = (l.ttft.as_ref().unwrap(), l.ttft_from_send.as_ref().unwrap());
    assert!(from_send.p50 >= 30.0 && from_send.p50 < 5_000.0);
    assert!(
        ttft.max >= from_send.max + 50.0 - 1e-6,
        "{ttft:?} {from_send:?}"
    );
    assert!(l.e2e_from_send.as_ref().unwrap().p50 <= l.e2e.as_ref().unwrap().p50);
    assert_eq!(l.slot_wait.as_ref().unwrap().count, 8);
    assert!(
        l.lag.as_ref().unwrap().p50 < l.slot_wait.as_ref().unwrap().max,
        "Lag leaves the slot wait out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncapped_run_keeps_one_view() {
    let sim = start(timed(Profile::Vllm, 1.0, 1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = synthetic_args(&sim.base_url(), "vllm", "sim-model", "4", "2");
    let o = run_in_process(dir.path(), &refs(&args)).await.unwrap();
    let l = o.metadata.results.latency_ms.as_ref().unwrap();
    assert!(l.slot_wait.is_none() && l.ttft_from_send.is_none() && l.e2e_from_send.is_none());
}

#[test]
fn show_says_how_many_requests_had_no_usage_and_how_goodput_was_judged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = dir.path().join("records.jsonl");
    // benchkeep's own record format: one answer with usage, one without.
    std::fs::write(
        &input,
        "{\"seq\":1,\"ok\":true,\"prompt_tokens\":5,\"completion_tokens\":7,\"ttft_ms\":10.0,\"e2e_ms\":70.0}\n\
         {\"seq\":2,\"ok\":true,\"ttft_ms\":10.0,\"e2e_ms\":70.0}\n",
    )
    .unwrap();
    let out = analyze_cmd(&store, "vllm", "m")
        .args(["--total-time", "1", "--input"])
        .arg(&input)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("1 successful request(s) had no token usage"),
        "{text}"
    );
    let meta = crate::support::store::only_metadata(&store);
    assert_eq!(meta["results"]["requests_without_usage"], 1);
    let id = meta["test_id"].as_str().unwrap();
    let shown = bk(&store).args(["show", id]).assert().success();
    let shown = String::from_utf8_lossy(&shown.get_output().stdout).to_string();
    assert!(shown.contains("had no token usage"), "{shown}");
}
