//! A newcomer following docs/guide.md against two simulators standing in for vLLM and
//! Ollama ends with a head-to-head, a sweep chart with both platforms' curves, and a
//! decision summary.

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

    // The report page, with the sweep section and its chart (both platforms' curves).
    let html = std::fs::read_to_string(store.join("reports/index.html")).unwrap();
    assert!(html.contains("id=\"sweeps\""), "no sweep section");
    let charts: Vec<String> = std::fs::read_dir(store.join("reports/charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sweep-") && n.ends_with(".svg"))
        .collect();
    assert_eq!(
        charts.len(),
        1,
        "one sweep chart for the one group: {charts:?}"
    );
    let svg = std::fs::read_to_string(store.join("reports/charts").join(&charts[0])).unwrap();
    assert!(
        svg.contains("vllm-serve") && svg.contains("ollama"),
        "both curves"
    );
    let sweeps = std::fs::read_dir(store.join("analysis/sweeps"))
        .unwrap()
        .count();
    assert_eq!(sweeps, 2, "one derived record per sweep");
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
