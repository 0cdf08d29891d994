//! `benchkeep sweep` against the simulator: throughput rising then flattening on a vLLM
//! profile, an Ollama server with one slot saturating at once, `--auto`, and the
//! max-goodput search whose answer passes the SLO when rerun.

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::cmd::run_synthetic;
use crate::support::sim::{start_blocking, timed};
use crate::support::store::all_metadata;
use crate::support::sweeps::{assert_schema, out_tps, points, sweep_synthetic};
use crate::support::{bk_std, out};

/// vLLM with 4 sequences in the batch: output tok/s doubles with the concurrency up to 4,
/// then stays flat; the early-stop rule stops once more load brings no more throughput
/// (at 8 or 16: a closed loop of 8 also hides the client's turnaround) and says why.
#[test]
fn vllm_throughput_rises_then_flattens() {
    let mut c = timed(Profile::Vllm, 2.0, 5.0);
    c.max_num_seqs = 4;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(
        sweep_synthetic(&store, "vllm", &sim.base_url(), "10").args([
            "--num-requests",
            "24",
            "--concurrency",
            "1..16x2",
            "--no-early-stop",
        ]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let p = points(&store);
    let values: Vec<f64> = p
        .iter()
        .map(|m| m["sweep"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![1.0, 2.0, 4.0, 8.0, 16.0]);
    let id = p[0]["sweep"]["id"].as_str().unwrap();
    assert!(id.starts_with("sweep-vllm-sim-model-"), "{id}");
    for (i, m) in p.iter().enumerate() {
        assert_eq!(m["sweep"]["id"], id);
        assert_eq!(m["sweep"]["index"], i);
        assert_eq!(m["sweep"]["axis"], "concurrency");
        assert_eq!(m["status"], "completed");
        assert_eq!(m["test"]["load"]["concurrency"], values[i] as u64);
        assert!(m["sweep"]["plan_sha256"].as_str().unwrap().len() == 64);
    }
    let x: Vec<f64> = p.iter().map(out_tps).collect();
    assert!(x[1] > 1.3 * x[0] && x[2] > 1.3 * x[1], "no rise: {x:?}");
    assert!(
        x[3] < 1.3 * x[2] && x[4] < 1.3 * x[2],
        "no flattening: {x:?}"
    );
    assert!(o.contains(id) && o.contains("out tok/s"), "{o}");

    // The analysis from the store puts the knee within one step of where max_num_seqs 4
    // saturates the server (between 2 and 8 users).
    let (code, knee, e) =
        out(bk_std(&store).args(["query", "--sweep", id, "--metric", "knee.knee"]));
    assert_eq!(code, 0, "{e}");
    let knee: f64 = knee.trim().parse().unwrap_or_else(|_| panic!("{knee}"));
    assert!(
        (2.0..=8.0).contains(&knee),
        "knee at {knee} users; throughput {x:?}"
    );

    // With the early-stop rules: stopped once more load brings no more throughput.
    let store2 = dir.path().join("s2");
    let (code, o, e) = out(
        sweep_synthetic(&store2, "vllm", &sim.base_url(), "10").args([
            "--num-requests",
            "24",
            "--concurrency",
            "1,2,4,8,16,32",
        ]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let p = points(&store2);
    let last = p.len() - 1;
    // Saturation at max_num_seqs 4 is found within one step of it: on a loaded machine the
    // client's own turnaround can flatten the step from 2 to 4 (stop after point 2) or hide
    // the flattening until 16 (stop after point 4).
    assert!((2..=4).contains(&last), "{e}");
    let stop = &p[last]["sweep"]["stop"];
    assert_eq!(stop["rule"], "flat_throughput", "{:#}", p[last]);
    let at = stop["saturated_at"].as_f64().unwrap();
    assert!(at == 2.0 || at == 4.0 || at == 8.0, "{stop}");
    assert!(p[..last].iter().all(|m| m["sweep"].get("stop").is_none()));
    assert!(
        e.contains(&format!("Stopped early after point {last}")),
        "{e}"
    );
    assert!(o.contains("stopped: flat_throughput"), "{o}");
}

/// Ollama serving one request at a time saturates at concurrency 1-2: the sweep stops at
/// the first point that brings no more throughput (2, or 4 when two in flight hide the
/// client's turnaround between requests), and records where it saturated.
#[test]
fn ollama_with_one_slot_saturates_at_once() {
    let mut c = timed(Profile::Ollama, 2.0, 3.0);
    c.num_parallel = 1;
    c.model = "sim-model".into();
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(
        sweep_synthetic(&store, "ollama", &sim.base_url(), "10").args([
            "--num-requests",
            "16",
            "--concurrency",
            "1,2,4,8",
            "--json",
        ]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let p = points(&store);
    let last = p.len() - 1;
    assert!(last == 1 || last == 2, "{e}");
    let stop = &p[last]["sweep"]["stop"];
    assert_eq!(stop["rule"], "flat_throughput");
    assert!(stop["saturated_at"].as_f64().unwrap() <= 2.0, "{stop}");
    let j: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(j["stopped"]["index"], last);
    assert_eq!(j["points"].as_array().unwrap().len(), p.len());
    assert_eq!(j["points"][last]["test_id"], p[last]["test_id"]);
}

/// `--auto`: synchronous, throughput with at least 3 waves of its batch, then evenly
/// spaced rates up to the throughput step's rate.
#[test]
fn auto_runs_synchronous_throughput_then_rates() {
    let mut c = timed(Profile::Vllm, 2.0, 3.0);
    c.max_num_seqs = 8;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(sweep_synthetic(&store, "vllm", &sim.base_url(), "8").args([
        "--num-requests",
        "12",
        "--auto",
        "--auto-points",
        "3",
        "--max-concurrency",
        "8",
        "--no-early-stop",
        "--arrival",
        "constant",
    ]));
    assert_eq!(code, 0, "{o}{e}");
    let p = points(&store);
    assert_eq!(p.len(), 5, "{e}");
    assert_eq!(p[0]["sweep"]["role"], "synchronous");
    assert_eq!(p[0]["test"]["load"]["concurrency"], 1);
    assert_eq!(p[1]["sweep"]["role"], "throughput");
    assert_eq!(p[1]["test"]["load"]["concurrency"], 8);
    assert_eq!(p[1]["test"]["num_requests"], 24, "3 waves of 8");
    let sync = p[0]["results"]["throughput_requests_per_sec"]
        .as_f64()
        .unwrap();
    let thr = p[1]["results"]["throughput_requests_per_sec"]
        .as_f64()
        .unwrap();
    for (k, m) in p[2..].iter().enumerate() {
        let want = sync + (thr - sync) * (k + 1) as f64 / 3.0;
        let rate = m["sweep"]["value"].as_f64().unwrap();
        assert!((rate - want).abs() < 1e-3, "{rate} vs {want}");
        assert_eq!(m["sweep"]["axis"], "rate");
        assert_eq!(m["test"]["load"]["rate"], rate);
        assert_eq!(m["test"]["load"]["arrival"], "constant");
    }
}

/// The max-goodput search on a one-slot server whose TTFT grows by one service time per
/// request queued: doubling then bisection converges within the tolerance, every probe is
/// stored with its attainment and interval, and the answer passes the SLO when rerun.
#[test]
fn max_goodput_search_converges_and_its_answer_passes() {
    let mut c = timed(Profile::Ollama, 5.0, 5.0);
    c.num_parallel = 1;
    c.model = "sim-model".into();
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(
        sweep_synthetic(&store, "ollama", &sim.base_url(), "10").args([
            "--num-requests",
            "30",
            "--slo",
            "ttft=150ms",
            "--target",
            "80%",
            "--json",
        ]),
    );
    assert_eq!(code, 0, "{o}{e}");
    let j: Value = serde_json::from_str(&o).unwrap();
    let g = &j["goodput"];
    assert_eq!(g["reason"], "converged", "{j:#}");
    let best = g["best_concurrency"].as_u64().unwrap();
    let fail = g["lowest_failing_concurrency"].as_u64().unwrap();
    assert!(fail > best && (fail - best) as f64 <= (0.1 * best as f64).max(1.0));
    let p = points(&store);
    assert_eq!(p.len(), j["points"].as_array().unwrap().len());
    assert!(p.len() >= 3);
    assert_eq!(p[0]["sweep"]["value"], 1.0);
    for m in &p {
        assert_schema(m);
        let gp = &m["sweep"]["goodput"];
        assert_eq!(m["sweep"]["role"], "goodput");
        let (a, lo, hi) = (
            gp["attainment"].as_f64().unwrap(),
            gp["low"].as_f64().unwrap(),
            gp["high"].as_f64().unwrap(),
        );
        assert!(lo <= a && a <= hi, "{gp}");
        assert!(
            ["pass", "fail", "straddles", "unresolved"].contains(&gp["verdict"].as_str().unwrap())
        );
    }
    // The answer, rerun as a plain run, meets the SLO for at least the target's share.
    let store2 = dir.path().join("rerun");
    let (code, o, e) =
        out(
            run_synthetic(&store2, "ollama", "sim-model", &sim.base_url(), "8", "10")
                .args([
                    "--num-requests",
                    "30",
                    "--gpu",
                    "off",
                    "-q",
                    "--slo",
                    "ttft=150ms",
                ])
                .args(["--concurrency", &best.to_string()]),
        );
    assert_eq!(code, 0, "{o}{e}");
    let m = &all_metadata(&store2)[0];
    let pct = m["results"]["goodput"]["percent"].as_f64().unwrap();
    assert!(pct >= 80.0, "rerun at {best}: {pct}% good");
}

/// Plain text: every probe and the answer.
#[test]
fn goodput_table_names_every_probe_and_the_answer() {
    let mut c = timed(Profile::Vllm, 2.0, 2.0);
    c.max_num_seqs = 2;
    let sim = start_blocking(c);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = out(bk_std(&store)
        .args(["sweep", "--platform", "vllm", "--model", "sim-model"])
        .args([
            "--base-url",
            &sim.base_url(),
            "--synthetic",
            "--input-tokens",
            "4",
        ])
        .args([
            "--output-tokens",
            "4",
            "--num-requests",
            "20",
            "--gpu",
            "off",
            "-q",
        ])
        .args(["--slo", "e2e_p90=10s", "--max-concurrency", "4"]));
    assert_eq!(code, 0, "{o}{e}");
    // Nothing fails a 10 s end-to-end limit: doubling reaches the cap.
    assert!(
        o.contains("Max goodput under the SLO (target 90.0%): concurrency 4"),
        "{o}"
    );
    assert!(o.contains("max_concurrency_reached"), "{o}");
    let rows = o.lines().filter(|l| l.contains(" goodput  c=")).count();
    assert_eq!(rows, points(&store).len(), "{o}");
}
