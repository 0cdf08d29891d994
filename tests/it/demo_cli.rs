//! `benchkeep demo`: two in-process simulators, the same workload through the real `run`
//! path, and the comparison printed; the store honours `--store`.

use crate::support::bk_std;

#[test]
fn demo_runs_both_servers_and_prints_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bench");
    let o = bk_std(&store)
        .args(["demo", "--requests", "4", "--concurrency", "2", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("Success %") && stdout.contains("Throughput (tok/s)"),
        "{stdout}"
    );
    for platform in ["vllm", "ollama"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(platform) && l.contains("completed")),
            "{stdout}"
        );
    }
    let metas = std::fs::read_dir(store.join("metadata")).unwrap().count();
    assert_eq!(metas, 2);
    assert!(store.join("reports/COMPARISON.md").is_file());
    let summary = std::fs::read_to_string(store.join("analysis/summary.json")).unwrap();
    assert!(
        summary.contains("\"demo\""),
        "runs are labelled source=demo"
    );
}
