//! Sweep analysis from the store: `analysis/sweeps/<id>.json` derived from stored points
//! (knee, achieved/offered, attainment intervals, max goodput), `query --sweep` on it,
//! the schema it follows, and that a sweep's file goes when its points go.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::bk;
use crate::support::store::read_json;
use crate::support::sweepstore::{Point, publish_sweep, saturating, two_platform_store};

fn doc(store: &std::path::Path, id: &str) -> Value {
    read_json(&store.join(format!("analysis/sweeps/{id}.json")))
}

#[test]
fn compare_derives_each_sweeps_conclusions() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    two_platform_store(store);
    bk(store).arg("compare").assert().success();
    let v = doc(store, "sweep-vllm-1");
    assert_eq!(v["schema"], "benchkeep.sweep/1");
    assert_eq!(v["axis"], "concurrency");
    assert_eq!(v["points"].as_array().unwrap().len(), 8);
    assert_eq!(v["derived_from"].as_array().unwrap().len(), 8);
    assert_eq!(v["knee"]["status"], "ok", "{}", v["knee"]);
    assert!(
        v["knee"]["method"]
            .as_str()
            .unwrap()
            .contains("two-segment")
    );
    let knee = v["knee"]["knee"].as_f64().unwrap();
    assert!((12.0..=20.0).contains(&knee), "{knee}");
    assert_eq!(v["knee"]["saturation_load"], 16.0);
    assert_eq!(v["max_goodput"]["status"], "no_slo");
    // Per-user tok/s is 1000 / mean TPOT (20 ms).
    assert_eq!(v["points"][0]["per_user_tokens_per_sec"], 50.0);
    // Ollama saturates at 2 users, the second load: the first break the rules try is the
    // third load (each segment needs 3 points), so the knee lands between 2 and 4.
    let o = doc(store, "sweep-ollama-1");
    let k = o["knee"]["knee"].as_f64().unwrap();
    assert!((2.0..=4.0).contains(&k), "{}", o["knee"]);
    assert_eq!(o["knee"]["saturation_load"], 4.0, "{}", o["knee"]);

    // query answers with a number.
    bk(store)
        .args([
            "query",
            "--sweep",
            "sweep-vllm",
            "--metric",
            "knee.saturation_load",
        ])
        .assert()
        .success()
        .stdout("16.0\n");
    bk(store)
        .args([
            "query",
            "--sweep",
            "sweep-vllm-1",
            "--metric",
            "knee_concurrency",
            "--json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"sweep_id\": \"sweep-vllm-1\""));
    // Wrong axis: a usage error naming the right figure.
    bk(store)
        .args([
            "query",
            "--sweep",
            "sweep-vllm-1",
            "--metric",
            "max_goodput_rate",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("max_goodput_concurrency"));
    // Unknown sweep: not found, with the ones there are.
    bk(store)
        .args(["query", "--sweep", "nope"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("sweep-ollama-1, sweep-vllm-1"));
    // Ambiguous prefix.
    bk(store)
        .args(["query", "--sweep", "sweep-"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("several sweeps"));
    // The table and conclusions.
    bk(store)
        .args(["query", "--sweep", "sweep-ollama-1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Per-user tok/s"))
        .stdout(predicate::str::contains(
            "saturated from 4 users, 140 tok/s",
        ));
}

#[test]
fn linear_sweep_reports_no_knee_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let s = crate::support::api::store::Store::new(store);
    s.ensure_layout().unwrap();
    let pts: Vec<Point> = (1..=6)
        .map(|c| Point::new(c as f64, 50.0 * c as f64, 100.0))
        .collect();
    publish_sweep(&s, "sweep-lin", "vllm", "concurrency", &pts, None);
    bk(store)
        .args(["query", "--sweep", "sweep-lin", "--metric", "knee.reason"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("linear"));
}

#[test]
fn max_goodput_from_stored_probes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let s = crate::support::api::store::Store::new(store);
    s.ensure_layout().unwrap();
    let mut pts = saturating(16.0, 100.0, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
    // Attainment out of 1000: clear passes up to 8, 16 straddles 95%, 32 fails.
    for (p, good) in pts.iter_mut().zip([1000, 999, 995, 990, 950, 400]) {
        p.good = Some(good);
    }
    publish_sweep(&s, "sweep-g", "vllm", "concurrency", &pts, Some(1000.0));
    bk(store)
        .args([
            "query",
            "--sweep",
            "sweep-g",
            "--metric",
            "max_goodput_concurrency",
        ])
        .assert()
        .success()
        .stdout("8.0\n");
    bk(store).arg("compare").assert().success();
    let v = doc(store, "sweep-g");
    let g = &v["max_goodput"];
    assert_eq!(g["status"], "found");
    assert_eq!(g["unresolved"], serde_json::json!([16.0]));
    assert_eq!(g["failing"], serde_json::json!([32.0]));
    assert_eq!(g["target"], 0.95);
    assert_eq!(g["goodput_requests_per_sec"], 9.9);
    let p16 = &v["points"][4];
    assert_eq!(p16["attainment"], 0.95);
    assert!(p16["attainment_low"].as_f64().unwrap() < 0.95);
    assert!(p16["attainment_high"].as_f64().unwrap() > 0.95);
}

#[test]
fn rate_sweeps_show_achieved_over_offered() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let s = crate::support::api::store::Store::new(store);
    s.ensure_layout().unwrap();
    // 1000 successes in 100 s: 10 req/s achieved at every offered rate.
    let pts: Vec<Point> = [5.0, 10.0, 20.0]
        .iter()
        .map(|&r| Point::new(r, 1000.0, 200.0))
        .collect();
    publish_sweep(&s, "sweep-r", "vllm", "rate", &pts, None);
    bk(store).arg("compare").assert().success();
    let v = doc(store, "sweep-r");
    let ratios: Vec<f64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["achieved_ratio"].as_f64().unwrap())
        .collect();
    assert_eq!(ratios, [2.0, 1.0, 0.5]);
    assert_eq!(v["knee"]["status"], "no_knee");
    assert!(v["knee"]["reason"].as_str().unwrap().contains("too few"));
}

#[test]
fn the_sweep_file_follows_the_schema_and_goes_with_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    two_platform_store(store);
    bk(store).arg("compare").assert().success();
    let schema: Value = read_json(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/sweep.schema.json"),
    );
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    for id in ["sweep-vllm-1", "sweep-ollama-1"] {
        let v = doc(store, id);
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{id}: {errors:?}");
    }
    // A broken document fails.
    let mut bad = doc(store, "sweep-vllm-1");
    bad["knee"]["status"] = "maybe".into();
    assert!(!validator.is_valid(&bad));

    // The points of one sweep removed: its conclusions go, the other's stay.
    for e in std::fs::read_dir(store.join("metadata")).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("ollama") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    bk(store).arg("compare").assert().success();
    assert!(!store.join("analysis/sweeps/sweep-ollama-1.json").exists());
    assert!(store.join("analysis/sweeps/sweep-vllm-1.json").is_file());
}
