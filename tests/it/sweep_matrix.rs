//! `sweep --server-cmd ... --matrix NAME=V1,V2`: one sweep per combination of server
//! settings, each against a simulator benchkeep starts with the value filled in, waits for
//! and stops; a combination whose server never comes up is reported and the next one runs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::api::record::health_ok;
use crate::support::store::all_metadata;
use crate::support::{BIN, free_port};
use crate::support::{bk_std, out};

fn sweep_args(port: u16, server_cmd: &str, matrix: &str) -> Vec<String> {
    [
        "sweep",
        "--platform",
        "vllm",
        "--model",
        "sim-model",
        "--base-url",
        &format!("http://127.0.0.1:{port}"),
        "--synthetic",
        "--input-tokens",
        "8",
        "--output-tokens",
        "16",
        "--num-requests",
        "12",
        "--gpu",
        "off",
        "-q",
        "--no-early-stop",
        "--concurrency",
        "1,4",
        "--server-ready-timeout",
        "60s",
        "--server-cmd",
        server_cmd,
        "--matrix",
        matrix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn one_sweep_per_server_setting_and_the_batch_size_shows() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let cmd = format!(
        "exec {BIN} simulate --port {port} --model sim-model --max-num-seqs {{max_num_seqs}} --itl-ms 10 --prefill-base-ms 5"
    );
    let (code, stdout, stderr) =
        out(bk_std(&store).args(sweep_args(port, &cmd, "max_num_seqs=1,4")));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Server matrix matrix-vllm-sim-model-"),
        "{stdout}"
    );
    // Every server was stopped.
    assert!(!health_ok(
        &format!("http://127.0.0.1:{port}/health"),
        Duration::from_millis(300)
    ));

    let runs = all_metadata(&store);
    assert_eq!(runs.len(), 4, "2 combinations x 2 points");
    let mut by_seqs: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for m in &runs {
        let s = &m["sweep"];
        let seqs = s["settings"]["max_num_seqs"].as_str().unwrap().to_string();
        assert_eq!(m["config"]["max_num_seqs"], seqs.parse::<u64>().unwrap());
        assert!(
            s["matrix"]["id"]
                .as_str()
                .unwrap()
                .starts_with("matrix-vllm-")
        );
        by_seqs.entry(seqs).or_default().push(m);
    }
    assert_eq!(by_seqs.len(), 2);
    let sweep_ids: std::collections::BTreeSet<&str> = runs
        .iter()
        .map(|m| m["sweep"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(sweep_ids.len(), 2, "one sweep per combination");
    let at_4 = |seqs: &str| {
        by_seqs[seqs]
            .iter()
            .find(|m| m["sweep"]["value"] == 4.0)
            .unwrap()["results"]["output_tokens_per_sec"]
            .as_f64()
            .unwrap()
    };
    // Four in flight: a server batching 4 streams gives clearly more than one batching 1.
    assert!(
        at_4("4") > 1.8 * at_4("1"),
        "max_num_seqs=4: {} tok/s, =1: {} tok/s",
        at_4("4"),
        at_4("1")
    );
}

#[test]
fn a_server_that_never_comes_up_is_reported_and_the_next_combination_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let cmd = format!(
        "echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB' >&2; test {{mode}} = ok && exec {BIN} simulate --port {port} --model sim-model --no-delay"
    );
    let (code, stdout, stderr) = out(bk_std(&store).args(sweep_args(port, &cmd, "mode=big,ok")));
    assert_eq!(
        code, 1,
        "a failed combination makes the exit code 1\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("Combination 0"), "{stderr}");
    assert!(stdout.contains("FAILED: oom"), "{stdout}");
    let runs = all_metadata(&store);
    assert_eq!(runs.len(), 2, "the second combination's two points ran");
    assert!(runs.iter().all(|m| m["sweep"]["settings"]["mode"] == "ok"));
}

#[test]
fn bad_server_flags_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    // A placeholder no --matrix fills.
    let (code, _, stderr) = out(bk_std(&store).args(sweep_args(
        port,
        "exec benchkeep simulate --max-num-seqs {seqs}",
        "max_num_seqs=1,2",
    )));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("{seqs}"), "{stderr}");
    assert!(!store.join("metadata").exists() || all_metadata(&store).is_empty());
}
