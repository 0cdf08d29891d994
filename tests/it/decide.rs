//! `benchkeep decide`, the decision summary at the top of COMPARISON.md and index.html,
//! and the cost figures: winners per figure, the noise wording, "not like for like",
//! "loads differ", prices from the flag, a label or the config, and the exit codes.

use serde_json::{Value, json};

use crate::support::api::store::{Store, file_safe};
use crate::support::bk;
use crate::support::report::{SHA_B, Spec, demo_like_store, metadata};
use crate::support::store::read_rel;

fn decide_json(store: &std::path::Path, extra: &[&str]) -> Value {
    let out = bk(store)
        .args(["decide", "--json"])
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("decide --json is JSON")
}

fn figure<'a>(group: &'a Value, key: &str) -> &'a Value {
    group["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .unwrap_or_else(|| panic!("no figure {key} in {group}"))
}

/// Publish a fixture run with a recorded load, GPU count and labels.
fn publish(store: &Store, s: &Spec, load: Option<Value>, gpus: Option<u32>) -> String {
    let mut m = metadata(s);
    if let Some(load) = load {
        m.test.extra.insert("load".into(), load);
    }
    if let (Some(n), Some(g)) = (gpus, m.gpu.as_mut()) {
        g.count = Some(n);
    }
    let base = format!(
        "{}-{}-{}",
        file_safe(s.platform),
        file_safe(&s.model),
        &s.timestamp[..10]
    );
    store.publish_new(&base, &mut m).expect("publish");
    m.test_id
}

fn conc(n: u32) -> Option<Value> {
    Some(json!({"mode": "concurrency", "concurrency": n}))
}

#[test]
fn decide_names_the_winner_per_figure_and_the_caveats() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, fx) = demo_like_store(dir.path());
    let d = decide_json(dir.path(), &[]);
    let groups = d["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{d}");
    let g = &groups[0];
    assert_eq!(g["family"], "gemma34b");
    for (key, winner) in [
        ("output_tokens_per_sec", "vllm-serve"),
        ("ttft_p50_ms", "vllm-serve"),
        ("ttft_p99_ms", "vllm-serve"),
        ("tpot_p50_ms", "vllm-serve"),
        ("e2e_p50_ms", "vllm-serve"),
        ("success_percent", "vllm-serve"),
        ("peak_vram_gb", "ollama"),
        ("output_tokens_per_joule", "vllm-serve"),
    ] {
        assert_eq!(figure(g, key)["winner"], winner, "{key}");
    }
    let out = figure(g, "output_tokens_per_sec");
    assert!((out["factor"].as_f64().unwrap() - 410.0 / 120.0).abs() < 1e-9);
    // vllm-serve has two usable runs (380 and 410), ollama one (120): no overlap.
    assert_eq!(out["noise"], "beyond_spread");
    assert!(
        out["sentence"]
            .as_str()
            .unwrap()
            .contains("3.42x higher; beyond the runs' spread (2 runs and 1 run)"),
        "{out}"
    );
    assert_eq!(
        figure(g, "throughput_requests_per_sec")["winner"],
        Value::Null
    );
    let caveats = g["caveats"].to_string();
    assert!(
        caveats.contains(&format!("{} is partial", fx.ollama_a)),
        "{caveats}"
    );
    assert!(caveats.contains("2 of 102 requests failed"), "{caveats}");
    assert!(caveats.contains(&fx.vllm_failed), "{caveats}");
    let nl = d["not_like_for_like"].to_string();
    for id in [&fx.ollama_b, &fx.offline_b, &fx.imported] {
        assert!(nl.contains(id.as_str()), "{id} missing from {nl}");
    }
    assert!(
        !nl.contains(&fx.vllm_failed),
        "a newer failed run is a caveat: {nl}"
    );
    assert_eq!(d["sweeps"], "no sweep data");

    // The text form: plain sentences.
    let text = bk(dir.path()).arg("decide").assert().success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
    assert!(
        text.contains("vllm-serve wins 7 of 9 figures against ollama"),
        "{text}"
    );
    assert!(text.contains("Not like for like: ollama"), "{text}");
    assert!(text.contains("Sweeps: no sweep data."), "{text}");
}

#[test]
fn decide_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    demo_like_store(dir.path());
    let d = decide_json(dir.path(), &["--gpu-hourly-usd", "2.50"]);
    for k in ["groups", "not_like_for_like", "sweeps", "cost_formula"] {
        assert!(d.get(k).is_some(), "{k} in {d}");
    }
    let g = &d["groups"][0];
    for k in [
        "title",
        "family",
        "input",
        "platforms",
        "figures",
        "headline",
        "cost",
        "caveats",
    ] {
        assert!(g.get(k).is_some(), "{k} in {g}");
    }
    let p = &g["platforms"][0];
    for k in ["platform", "test_id", "runs", "status", "load", "cost"] {
        assert!(p.get(k).is_some(), "{k} in {p}");
    }
    let f = &g["figures"][0];
    for k in [
        "key",
        "label",
        "better",
        "winner",
        "runner_up",
        "winner_value",
        "runner_up_value",
        "factor",
        "noise",
        "noise_text",
        "sentence",
    ] {
        assert!(f.get(k).is_some(), "{k} in {f}");
    }
    assert_eq!(p["cost"]["price_source"], "flag");
}

#[test]
fn loads_differ_and_the_runs_spread_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.ensure_layout().unwrap();
    let mut o1 = Spec::new("ollama", "qwen2.5:7b", "2024-11-01T08:00:00Z", 100.0);
    o1.ttft_p50 = Some(300.0);
    let mut o2 = Spec::new("ollama", "qwen2.5:7b", "2024-11-02T08:00:00Z", 110.0);
    o2.ttft_p50 = Some(100.0);
    let mut v1 = Spec::new(
        "vllm",
        "Qwen/Qwen2.5-7B-Instruct",
        "2024-11-01T09:00:00Z",
        900.0,
    );
    v1.ttft_p50 = Some(200.0);
    let mut v2 = Spec::new(
        "vllm",
        "Qwen/Qwen2.5-7B-Instruct",
        "2024-11-02T09:00:00Z",
        950.0,
    );
    v2.ttft_p50 = Some(90.0);
    for s in [&o1, &o2] {
        publish(&store, s, conc(4), None);
    }
    for s in [&v1, &v2] {
        publish(&store, s, conc(4), None);
    }
    let d = decide_json(dir.path(), &[]);
    let g = &d["groups"][0];
    let out = figure(g, "output_tokens_per_sec");
    assert_eq!(out["winner"], "vllm");
    assert!(
        out["noise_text"] == "beyond the runs' spread (2 and 2 runs)",
        "{out}"
    );
    // TTFT p50: vllm 90..200 against ollama 100..300 overlap.
    let ttft = figure(g, "ttft_p50_ms");
    assert_eq!(ttft["winner"], "vllm");
    assert_eq!(ttft["noise"], "within_spread");
    assert!(!g["caveats"].to_string().contains("LOADS DIFFER"), "{g}");

    // Runs at different loads are not paired at all (issue 14): no group, and the
    // not-compared list says why.
    let dir3 = tempfile::tempdir().unwrap();
    let store3 = Store::new(dir3.path());
    store3.ensure_layout().unwrap();
    publish(&store3, &o1, conc(4), None);
    publish(&store3, &v1, conc(32), None);
    let out = bk(dir3.path()).args(["decide", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at another load"), "{err}");

    // The same loads: no caveat; a run on another input is not like for like.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::new(dir2.path());
    store2.ensure_layout().unwrap();
    publish(&store2, &o1, conc(8), None);
    publish(&store2, &v1, conc(8), None);
    let mut other = Spec::new(
        "vllm",
        "Qwen/Qwen2.5-7B-Instruct",
        "2024-11-03T09:00:00Z",
        1.0,
    );
    other.input_sha = Some(SHA_B);
    publish(&store2, &other, conc(8), None);
    let d = decide_json(dir2.path(), &[]);
    let g = &d["groups"][0];
    assert!(!g["caveats"].to_string().contains("LOADS DIFFER"), "{g}");
    assert_eq!(figure(g, "output_tokens_per_sec")["noise"], "single_run");
    let nl = d["not_like_for_like"].to_string();
    assert!(nl.contains("Not like for like: vllm"), "{nl}");
}

#[test]
fn cost_from_the_flag_a_label_or_the_config_and_the_gpu_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.ensure_layout().unwrap();
    // 1000 output tok/s on 2 GPUs at $2.50 (a label): 2.5 * 2 / 3600 / 1000 * 1e6 = 1.3889.
    let mut v = Spec::new("vllm", "gemma3-4b", "2024-11-01T09:00:00Z", 1000.0);
    v.vram_used_gb = Some(10.0);
    v.labels = json!({"gpu_hourly_usd": "2.50"});
    publish(&store, &v, conc(8), Some(2));
    // 500 output tok/s, GPU count unknown (1), $3 in the config.
    let mut o = Spec::new("ollama", "gemma3:4b", "2024-11-01T08:00:00Z", 500.0);
    o.config = json!({"gpu_hourly_usd": 3.0});
    publish(&store, &o, conc(8), None);

    let d = decide_json(dir.path(), &[]);
    let ps = d["groups"][0]["platforms"].as_array().unwrap().clone();
    let cost = |p: &str| ps.iter().find(|x| x["platform"] == p).unwrap()["cost"].clone();
    let vc = cost("vllm");
    assert_eq!(vc["price_source"], "label");
    assert_eq!(vc["gpus"], 2);
    let per_m = vc["usd_per_1m_output_tokens"].as_f64().unwrap();
    assert!(
        (per_m - 2.5 * 2.0 / 3600.0 / 1000.0 * 1e6).abs() < 1e-9,
        "{vc}"
    );
    // 100 successes in 100 s: 1 req/s -> 2.5 * 2 / 3600 / 1 * 1000.
    let per_k = vc["usd_per_1000_requests"].as_f64().unwrap();
    assert!((per_k - 2.5 * 2.0 / 3600.0 * 1000.0).abs() < 1e-9, "{vc}");
    // Energy: 50,000 J for 100,000 output tokens = 500,000 J per 1M.
    assert!((vc["joules_per_1m_output_tokens"].as_f64().unwrap() - 500_000.0).abs() < 1e-6);
    let oc = cost("ollama");
    assert_eq!(oc["price_source"], "config");
    assert_eq!(oc["gpus_recorded"], false);
    assert!(
        (oc["usd_per_1m_output_tokens"].as_f64().unwrap() - 3.0 / 3600.0 / 500.0 * 1e6).abs()
            < 1e-9
    );
    let text = d["groups"][0]["cost"].to_string();
    assert!(text.contains("$1.39 per 1M output tokens"), "{text}");

    // The flag wins over labels and config.
    let d = decide_json(dir.path(), &["--gpu-hourly-usd", "2.50"]);
    let ps = d["groups"][0]["platforms"].as_array().unwrap().clone();
    for p in &ps {
        assert_eq!(p["cost"]["price_source"], "flag");
        assert_eq!(p["cost"]["gpu_hourly_usd"], 2.5);
    }
    let o = ps.iter().find(|x| x["platform"] == "ollama").unwrap();
    // 2.5 / 3600 / 500 * 1e6 = 1.3889 ($1.39).
    assert!((o["cost"]["usd_per_1m_output_tokens"].as_f64().unwrap() - 1.388_888_9).abs() < 1e-6);

    // The report states the formula and the figures.
    bk(dir.path())
        .args(["report", "--gpu-hourly-usd", "2.5"])
        .assert()
        .success();
    let md = String::from_utf8(read_rel(dir.path(), "reports/COMPARISON.md")).unwrap();
    assert!(md.contains("Cost formula: cost per 1M output tokens = price per GPU hour x GPUs / 3600 / output tok/s x 1,000,000"), "{md}");
    assert!(md.contains("per 1M output tokens"), "{md}");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // Nothing in the store: 3, with the reason.
    let a = bk(&store).arg("decide").assert().code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("nothing is comparable: no run matches"),
        "{err}"
    );
    // One platform only: 3, naming the run and why.
    let (_s, fx) = demo_like_store(&store);
    let a = bk(&store)
        .args(["decide", "--platform", "ollama"])
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("no two platforms ran the same input"), "{err}");
    assert!(err.contains(&fx.ollama_a), "{err}");
    // --json still prints the (empty) summary for scripts.
    let a = bk(&store)
        .args(["decide", "--json", "--platform", "ollama"])
        .assert()
        .code(3);
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["groups"], json!([]));
    // A bad price: 2, on decide and report.
    for bad in ["0", "-2.5", "nan", "inf", "two"] {
        bk(&store)
            .args(["decide", "--gpu-hourly-usd", bad])
            .assert()
            .code(2);
        bk(&store)
            .args(["report", "--gpu-hourly-usd", bad])
            .assert()
            .code(2);
    }
}

#[test]
fn the_decision_comes_first_in_comparison_md_and_index_html() {
    let dir = tempfile::tempdir().unwrap();
    demo_like_store(dir.path());
    bk(dir.path()).arg("report").assert().success();
    let md = String::from_utf8(read_rel(dir.path(), "reports/COMPARISON.md")).unwrap();
    let (d, t, h) = (
        md.find("## Decision summary").unwrap(),
        md.find("## All runs").unwrap(),
        md.find("## Head-to-head").unwrap(),
    );
    assert!(d < t && t < h, "{md}");
    let html = String::from_utf8(read_rel(dir.path(), "reports/index.html")).unwrap();
    let (d, h) = (
        html.find("<section id=\"decision\">").unwrap(),
        html.find("<section id=\"head-to-head\">").unwrap(),
    );
    assert!(d < h);
    assert!(html.contains("vllm-serve wins 7 of 9 figures against ollama"));
}

/// The real thing: `benchkeep demo` (vLLM-like and Ollama-like simulators, one workload).
#[test]
fn decide_on_a_demo_store() {
    let dir = tempfile::tempdir().unwrap();
    bk(dir.path())
        .args(["demo", "--requests", "6", "--concurrency", "3", "--quiet"])
        .assert()
        .success();
    let d = decide_json(dir.path(), &["--gpu-hourly-usd", "2.50"]);
    let g = &d["groups"][0];
    assert_eq!(figure(g, "output_tokens_per_sec")["winner"], "vllm-serve");
    assert_eq!(figure(g, "ttft_p50_ms")["winner"], "vllm-serve");
    assert!(!g["caveats"].to_string().contains("LOADS DIFFER"), "{g}");
    let cost = g["cost"].to_string();
    assert!(
        cost.contains("Cheapest per output token: vllm-serve"),
        "{cost}"
    );
}
