//! A newcomer following docs/guide.md against two simulators standing in for vLLM and
//! Ollama ends with a head-to-head and a decision summary (the sweep step is skipped until
//! `sweep` lands, issue 11).

use std::path::Path;

use crate::support::bk;
use crate::support::mdtest::run_session;

#[test]
fn following_the_guide_ends_with_a_head_to_head_and_a_decision() {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md");
    let (failures, dir) = run_session(&guide);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let store = dir.path().join("benchmarks");

    // Both servers' runs are in the store and pair head to head.
    let md = std::fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains("vllm-serve") && md.contains("ollama"), "{md}");
    let out = bk(&store)
        .args(["compare", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gemma34b"), "no head-to-head group: {text}");

    // The report page and the decision summary.
    assert!(store.join("reports/index.html").is_file());
    let out = bk(&store).args(["decide", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("vllm-serve") && text.contains("ollama") && text.contains("winner"),
        "{text}"
    );
}
