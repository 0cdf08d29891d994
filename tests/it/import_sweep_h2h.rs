//! An imported GuideLLM sweep and a benchkeep sweep of the same workload meet on one
//! head-to-head curve chart: the sweep analysis and the report work on imported sweeps.

use crate::support::api::sim::Profile;
use crate::support::sim::{fast, start_blocking};
use crate::support::store::all_metadata;
use crate::support::{bk_std, fixture, out};

#[test]
fn a_guidellm_sweep_and_a_benchkeep_sweep_share_one_curve_chart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // GuideLLM's sweep (synchronous, throughput, a constant rate), run against the vLLM
    // simulator serving `tiny`.
    let (code, stdout, stderr) = out(bk_std(&store).args([
        "import",
        "--platform",
        "vllm-serve",
        "--label",
        "input=chat-64-32",
        fixture("import/guidellm/benchmarks.json").to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let imported = all_metadata(&store);
    assert!(imported.len() >= 3, "{stdout}");
    assert!(
        imported
            .iter()
            .all(|m| m["sweep"]["axis"] == "rate" && m["sweep"]["id"] == imported[0]["sweep"]["id"])
    );

    // benchkeep's own rate sweep of the same model on an Ollama-like server.
    let mut config = fast(Profile::Ollama);
    config.model = "tiny".into();
    let sim = start_blocking(config);
    let (code, stdout, stderr) = out(bk_std(&store).args([
        "sweep",
        "--platform",
        "ollama",
        "--model",
        "tiny",
        "--base-url",
        &sim.base_url(),
        "--synthetic",
        "--input-tokens",
        "64",
        "--output-tokens",
        "32",
        "--num-requests",
        "12",
        "--gpu",
        "off",
        "-q",
        "--no-early-stop",
        "--label",
        "input=chat-64-32",
        "--rate",
        "2,4,8",
    ]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // One like-for-like group: one chart, both platforms' lines on it.
    let (code, _, stderr) = out(bk_std(&store).args(["report"]));
    assert_eq!(code, 0, "{stderr}");
    let charts: Vec<_> = std::fs::read_dir(store.join("reports/charts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("sweep-") && n.ends_with(".svg")
        })
        .collect();
    assert_eq!(charts.len(), 1, "{charts:?}");
    let svg = std::fs::read_to_string(&charts[0]).unwrap();
    assert!(
        svg.contains("vllm-serve") && svg.contains("ollama"),
        "both lines"
    );
    let md = std::fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains("guidellm") || md.contains("vllm-serve"), "{md}");
}
