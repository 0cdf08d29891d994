//! Snapshots of the derived files of a fixed store: COMPARISON.md, the HTML page (charts
//! reduced to their texts), the chart files COMPARISON.md links, summary.json's
//! head-to-head, and export.

use crate::support::api::derive::{self, Settings};
use crate::support::api::report;
use crate::support::report::*;

#[test]
fn comparison_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    derive::refresh_with(&store, &runs, &Settings::default()).unwrap();
    let md = std::fs::read_to_string(dir.path().join(report::COMPARISON_PATH)).unwrap();
    // Every chart it links exists.
    for link in md.split("](charts/").skip(1) {
        let file = link.split(')').next().unwrap();
        assert!(
            dir.path().join("reports/charts").join(file).is_file(),
            "{file}"
        );
    }
    insta::assert_snapshot!("comparison_md", mask_version(&md));
}

#[test]
fn html_report() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    let written = derive::write_report(&store, &runs, &Settings::default()).unwrap();
    assert!(written.warnings.is_empty(), "{:?}", written.warnings);
    let html = std::fs::read_to_string(dir.path().join(report::HTML_PATH)).unwrap();
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    ));
    // Charts: the group's bars, its latency CDF, a trend, and the GPU series.
    for needle in [
        "aria-label=\"gemma34b on sha256:a1a1a1a1a1a1",
        "Latency CDF: gemma34b",
        "Trend: gemma34b",
        "GPU: vllm-serve",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let mut charts: Vec<String> = std::fs::read_dir(dir.path().join("reports/charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    insta::assert_snapshot!("chart_files", charts.join("\n"));
    insta::assert_snapshot!("index_html", mask_version(&mask_svgs(&html)));
}

#[test]
fn derived_files_are_pure_and_stale_charts_go() {
    let dir = tempfile::tempdir().unwrap();
    let (store, f) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    derive::write_report(&store, &runs, &Settings::default()).unwrap();
    let read = |p: &str| std::fs::read(dir.path().join(p)).unwrap();
    let (html, md, summary) = (
        read(report::HTML_PATH),
        read(report::COMPARISON_PATH),
        read(report::SUMMARY_PATH),
    );
    // Deleting derived files loses nothing: they come back byte for byte.
    std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    std::fs::remove_file(dir.path().join(report::SUMMARY_PATH)).unwrap();
    derive::write_report(&store, &runs, &Settings::default()).unwrap();
    assert_eq!(read(report::HTML_PATH), html);
    assert_eq!(read(report::COMPARISON_PATH), md);
    assert_eq!(read(report::SUMMARY_PATH), summary);

    // Once the ollama run on input A is gone, that group and its charts go too.
    std::fs::remove_file(store.metadata_path(&f.ollama_a)).unwrap();
    let runs = store.load_all().unwrap();
    derive::write_report(&store, &runs, &Settings::default()).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path().join("reports/charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("h2h-")), "{names:?}");
}

#[test]
fn summary_head_to_head() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    derive::refresh_with(&store, &runs, &Settings::default()).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(report::SUMMARY_PATH)).unwrap())
            .unwrap();
    insta::assert_snapshot!(
        "summary_head_to_head",
        serde_json::to_string_pretty(&v["head_to_head"]).unwrap()
    );
    assert_eq!(v["run_count"], 7);
}

#[test]
fn export_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, f) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    let one: Vec<_> = runs
        .runs
        .iter()
        .filter(|m| m.test_id == f.vllm_a)
        .cloned()
        .collect();
    insta::assert_snapshot!("export_csv", report::export::csv(&one));
    insta::assert_snapshot!("export_jsonl", report::export::jsonl(&one));
    let all = report::export::csv(&runs.runs);
    assert_eq!(all.lines().count(), 8);
    let header = all.lines().next().unwrap();
    assert!(
        header.starts_with("test_id,timestamp,platform,model,status,"),
        "{header}"
    );
    assert!(
        header.contains("results.latency_ms.ttft.p50") && header.contains("config.max_model_len")
    );
}
