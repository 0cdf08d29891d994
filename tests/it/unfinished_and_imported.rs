//! A run that is not finished is never scored (compare), and what the store accepted
//! `verify` accepts (imported logs with a cut last line or a restarting `seq`).

use std::fs;

use crate::support::api::schema::Status;
use crate::support::api::store::Store;
use crate::support::report::{Spec, metadata, write_raw_log};
use crate::support::{bk, bk_std, out};

#[test]
fn compare_refuses_a_running_run_and_never_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let store = Store::new(&root);
    store.ensure_layout().unwrap();
    let mut base = metadata(&Spec::new("vllm", "m", "2026-01-01T00:00:00Z", 10.0));
    store.publish_new("base", &mut base).unwrap();
    write_raw_log(&store, &base.test_id, 5, 50.0, 0, "");
    let mut running = metadata(&Spec::new("vllm", "m", "2026-01-02T00:00:00Z", 10.0));
    running.status = Status::Running;
    store.publish_new("running", &mut running).unwrap();
    write_raw_log(&store, &running.test_id, 5, 50.0, 0, "");

    for args in [
        vec![
            "compare",
            "--baseline",
            &base.test_id,
            &running.test_id,
            "--fail-on-regression",
        ],
        vec!["compare", "--baseline", &running.test_id, &base.test_id],
    ] {
        let (code, stdout, err) = out(bk_std(&root).args(&args));
        assert_eq!(code, 2, "{args:?}: {stdout}{err}");
        assert!(err.contains("not finished"), "{err}");
        assert!(!stdout.contains("-100"), "{stdout}");
    }
    // Selected by a filter, it is left out with a note, never shown as zeros.
    let (code, stdout, err) =
        out(bk_std(&root).args(["compare", "--baseline", &base.test_id, "--platform", "vllm"]));
    assert_eq!(code, 3, "{stdout}{err}");
    assert!(err.contains("not finished"), "{err}");
}

#[test]
fn verify_accepts_the_imported_logs_analyze_accepted() {
    let line = |seq: u64| {
        format!(
            "{}\n",
            serde_json::json!({"seq": seq, "ok": true, "prompt_tokens": 10, "completion_tokens": 5,
                "ttft_ms": 20.0, "e2e_ms": 80.0, "scheduled_s": seq as f64, "end_s": seq as f64 + 0.1})
        )
    };
    let cut = format!("{}{}{{\"seq\":3,\"ok\":tr", line(1), line(2));
    let joined = format!("{}{}{}{}", line(1), line(2), line(1), line(2));
    for (name, text) in [("cut", cut), ("joined", joined)] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join(format!("{name}.jsonl"));
        fs::write(&input, text).unwrap();
        let store = dir.path().join("s");
        let o = bk(&store)
            .args([
                "analyze",
                "--platform",
                "p",
                "--model",
                "m",
                "--total-time",
                "5",
                "--input",
            ])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (code, vout, _) = out(bk_std(&store).arg("verify"));
        assert_eq!(
            code, 0,
            "{name}: what analyze accepted, verify accepts:\n{vout}"
        );
    }
}
