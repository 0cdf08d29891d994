//! A figure the file does not have is unknown, not 0: `vllm bench throughput` counts prompt
//! and output tokens together, so its runs' output tok/s is named in `results.unknown`,
//! written as 0 (the field is a number) and read as unknown (NaN) by every command: `show`
//! and `compare` never print it as a 0 measurement, and the head-to-head leaves the run
//! out of that figure (no value, no ratio).

use serde_json::Value;

use crate::support::import::{import, import_fixture, runs_of};
use crate::support::{bk_std, out};

#[test]
fn vllm_throughput_output_tok_s_is_unknown_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (code, o, e) = import(
        &store,
        &["--label", "input=chat"],
        &[import_fixture("vllm_throughput")],
    );
    assert_eq!(code, 0, "{o}{e}");
    let m = &runs_of(&store, "vllm-bench-throughput")[0];
    assert_eq!(
        m["results"]["unknown"],
        serde_json::json!(["output_tokens_per_sec", "avg_completion_tokens"])
    );
    // On disk a number (the file reads back), and the total tok/s is the tool's.
    assert_eq!(m["results"]["output_tokens_per_sec"], 0.0);
    assert_eq!(m["results"]["throughput_tokens_per_sec"], 102400.0);
    let id = m["test_id"].as_str().unwrap();
    let (code, shown, _) = out(bk_std(&store).args(["show", id]));
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("output        NaN tok/s"), "{shown}");
    assert!(!shown.contains("output        0.00"), "{shown}");
    let (code, csv, _) = out(bk_std(&store).args(["compare", "--format", "csv"]));
    assert_eq!(code, 0, "{csv}");
    let row = csv.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(row.contains(",102400,NaN,"), "{row}");
    // The head-to-head: a run with a known output tok/s on the same input beside it. The
    // throughput run (the baseline, vllm) has no output tok/s value, and no ratio is made.
    let serve = import_fixture("vllm_real/serve.json");
    let (code, o, e) = import(
        &store,
        &[
            "--platform",
            "ollama",
            "--model",
            "org/tiny",
            "--label",
            "input=chat",
        ],
        &[serve],
    );
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = out(bk_std(&store).args(["report"]));
    assert_eq!(code, 0, "{o}{e}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(store.join("analysis/summary.json")).unwrap())
            .unwrap();
    let groups = summary["head_to_head"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{summary:#}");
    let none = |v: &Value| v.is_null();
    let mut seen = 0;
    for p in groups[0]["platforms"].as_array().unwrap() {
        let fig = &p["figures"]["output_tokens_per_sec"];
        assert!(none(&p["ratios"]["output_tokens_per_sec"]), "{p:#}");
        match p["platform"].as_str().unwrap() {
            "vllm" => assert!(none(fig), "{p:#}"),
            _ => assert!(fig.as_f64().is_some_and(|x| x > 0.0), "{p:#}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}
