//! `push mlflow` against a real `mlflow server` (PyPI, SQLite backend, loopback): params,
//! metrics and tags land as the search API shows them, a second push adds nothing, and no
//! credential reaches the output. Feature `external-it` (`.ci/run` installs MLflow).

use serde_json::json;

use crate::support::api::store::Store;
use crate::support::bk;
use crate::support::mlflow::{Mlflow, kv};
use crate::support::report::{Spec, publish};

#[test]
fn pushed_runs_are_found_by_mlflows_search_once_each_without_secrets() {
    let server = Mlflow::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    store.ensure_layout().unwrap();
    let mut a = Spec::new("vllm", "llama-8b", "2026-01-02T10:00:00Z", 1000.0);
    a.ttft_p50 = Some(40.0);
    a.config = json!({"max_num_seqs": 64, "gpu_memory_utilization": 0.9});
    let id_a = publish(&store, &a);
    let id_b = publish(
        &store,
        &Spec::new("ollama", "llama-8b", "2026-01-02T11:00:00Z", 300.0),
    );

    // Credentials in the URI and the environment: MLflow without auth ignores them, and
    // they must appear in no output.
    let uri = server
        .url
        .replace("http://", "http://alice:hunter2-secret@");
    let push = || {
        bk(dir.path())
            .args([
                "push",
                "mlflow",
                "--tracking-uri",
                &uri,
                "--experiment",
                "bk-test",
            ])
            .env("MLFLOW_TRACKING_TOKEN", "tok-should-never-print")
            .output()
            .unwrap()
    };
    let out = push();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("tok-should-never-print"),
        "{text}"
    );
    assert!(text.contains("2 run(s) pushed"), "{text}");

    let runs = server.runs("bk-test");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let run_a = runs
        .iter()
        .find(|r| kv(r, "tags").get("benchkeep.test_id") == Some(&json!(id_a)))
        .expect("run a by its tag");
    let params = kv(run_a, "params");
    assert_eq!(params["platform"], json!("vllm"));
    assert_eq!(params["config.max_num_seqs"], json!("64"));
    let metrics = kv(run_a, "metrics");
    assert_eq!(metrics["output_tokens_per_sec"], json!(1000.0));
    assert_eq!(metrics["ttft_p50_ms"], json!(40.0));
    let tags = kv(run_a, "tags");
    assert_eq!(tags["platform"], json!("vllm"));
    assert!(tags.contains_key("host"));
    assert_eq!(run_a["info"]["status"], json!("FINISHED"));
    assert!(
        runs.iter()
            .any(|r| kv(r, "tags").get("benchkeep.test_id") == Some(&json!(id_b)))
    );

    // MLflow's own filter grammar finds them (what a dashboard would do).
    let exp = run_a["info"]["experiment_id"].clone();
    let found = server
        .post(
            "runs/search",
            json!({"experiment_ids": [exp], "filter": "metrics.output_tokens_per_sec > 500 and params.platform = 'vllm'"}),
        )
        .unwrap();
    assert_eq!(found["runs"].as_array().map(Vec::len), Some(1), "{found}");

    // Idempotent: a second push adds nothing.
    let out = push();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(text.contains("0 run(s) pushed, 2 already there"), "{text}");
    assert_eq!(server.runs("bk-test").len(), 2);
}
