//! The head-to-head groups like for like and computes ratios to the baseline platform.

use crate::support::api::report::Derived;
use crate::support::api::report::h2h::{self, InputKey, Settings};
use crate::support::api::schema::Metadata;
use crate::support::api::store::Store;
use crate::support::report::*;

fn idx(runs: &[Metadata], id: &str) -> usize {
    runs.iter().position(|m| m.test_id == id).unwrap()
}

#[test]
fn groups_like_for_like_with_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let (store, f) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    let r = &runs.runs;

    // One group: gemma 4b on input A, ollama (baseline) vs vllm-serve.
    assert_eq!(d.h2h.groups.len(), 1, "{:#?}", d.h2h.groups);
    let g = &d.h2h.groups[0];
    assert_eq!(g.family, "gemma34b");
    assert_eq!(g.input, InputKey::Sha256(SHA_A.into()));
    assert_eq!(g.models, ["gemma3:4b", "google/gemma-3-4b-it"]);
    let platforms: Vec<&str> = g.entries.iter().map(|e| e.platform.as_str()).collect();
    assert_eq!(platforms, ["ollama", "vllm-serve"]);

    // The latest usable vllm-serve run is used (not the failed one), with both runs' spread.
    let v = &g.entries[1];
    assert_eq!(v.latest, idx(r, &f.vllm_a));
    assert_eq!(v.runs, [idx(r, &f.vllm_a_old), idx(r, &f.vllm_a)]);
    let spread = v.spread[0].unwrap();
    assert_eq!((spread.min, spread.max), (380.0, 410.0));

    // Ratios to the baseline: output tok/s 410/120, TTFT p50 85/400.
    assert!((v.ratios[0].unwrap() - 410.0 / 120.0).abs() < 1e-9);
    assert!((v.ratios[3].unwrap() - 85.0 / 400.0).abs() < 1e-9);
    assert_eq!(
        g.entries[0].ratios.iter().flatten().count(),
        0,
        "baseline has no ratio"
    );
    assert_eq!(
        g.ratio_sentences(),
        ["vllm-serve: 3.42x ollama output tok/s, req/s 1.00x, TTFT p50 0.21x, E2E p50 0.21x"]
    );

    // Everything else is not compared, each with a reason.
    let why = |id: &str| {
        d.h2h
            .unpaired
            .iter()
            .find(|u| r[u.run].test_id == id)
            .unwrap_or_else(|| panic!("{id} not listed: {:#?}", d.h2h.unpaired))
            .reason
            .clone()
    };
    let offline = why(&f.offline_b);
    assert!(
        offline.contains(
            "on this input other platforms ran another model family: ollama (gemma3:12b)"
        ),
        "{offline}"
    );
    assert!(
        offline.contains("other platforms ran this model family on another input"),
        "{offline}"
    );
    assert!(why(&f.ollama_b).contains("another model family: vllm-offline (gemma3-4b)"));
    assert!(why(&f.imported).contains("input is unknown"));
    let failed = why(&f.vllm_failed);
    assert!(
        failed.contains("no request succeeded") && failed.contains(&f.vllm_a),
        "{failed}"
    );
    assert_eq!(d.h2h.unpaired.len(), 4);
}

#[test]
fn runs_on_different_inputs_or_models_never_share_a_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    let d = Derived::build(&runs, Settings::default());
    for g in &d.h2h.groups {
        for e in &g.entries {
            for &r in &e.runs {
                let m = &runs.runs[r];
                assert_eq!(h2h::model_family(m), g.family);
                assert_eq!(h2h::input_key(m).as_ref(), Some(&g.input));
            }
        }
    }
}

#[test]
fn baseline_platform_and_label_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.ensure_layout().unwrap();
    // Different spellings of one model, and an explicit family label on another name.
    publish(
        &store,
        &Spec::new("ollama", "gemma3:4b", "2024-10-28T08:00:00Z", 100.0),
    );
    publish(
        &store,
        &Spec::new(
            "vllm-serve",
            "google/gemma-3-4b-it",
            "2024-10-28T09:00:00Z",
            300.0,
        ),
    );
    let mut custom = Spec::new("sglang", "my-finetune", "2024-10-28T10:00:00Z", 250.0);
    custom.labels = serde_json::json!({"family": "gemma3-4b"});
    publish(&store, &custom);
    // Two imported results files labelled with the same input.
    for (p, tps) in [("ollama", 50.0), ("vllm-offline", 500.0)] {
        let mut s = Spec::new(p, "qwen2.5:7b", "2024-10-29T08:00:00Z", tps);
        s.input_sha = None;
        s.labels = serde_json::json!({"input": "batch_5k"});
        publish(&store, &s);
    }
    let runs = store.load_all().unwrap();

    let d = Derived::build(&runs, Settings::default());
    assert_eq!(d.h2h.groups.len(), 2, "{:#?}", d.h2h.unpaired);
    let gemma = d
        .h2h
        .groups
        .iter()
        .find(|g| g.family == "gemma34b")
        .unwrap();
    assert_eq!(gemma.entries.len(), 3);
    assert_eq!(gemma.baseline().platform, "ollama");
    let qwen = d
        .h2h
        .groups
        .iter()
        .find(|g| g.family == "qwen257b")
        .unwrap();
    assert_eq!(qwen.input, InputKey::Label("batch_5k".into()));
    assert!((qwen.entries[1].ratios[0].unwrap() - 10.0).abs() < 1e-9);

    let d = Derived::build(
        &runs,
        Settings {
            baseline_platform: Some("vllm-serve".into()),
            ..Settings::default()
        },
    );
    let gemma = d
        .h2h
        .groups
        .iter()
        .find(|g| g.family == "gemma34b")
        .unwrap();
    assert_eq!(gemma.baseline().platform, "vllm-serve");
    assert!((gemma.entries[1].ratios[0].unwrap() - 100.0 / 300.0).abs() < 1e-9);
    let qwen = d
        .h2h
        .groups
        .iter()
        .find(|g| g.family == "qwen257b")
        .unwrap();
    assert_eq!(qwen.baseline().platform, "ollama");
    assert!(
        qwen.baseline_note
            .as_deref()
            .unwrap()
            .contains("vllm-serve has no run in this group")
    );
}
