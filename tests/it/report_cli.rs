//! The binary: `report`, `compare --baseline` (deltas, flags, exit codes, no colour when
//! piped) and `export`.

use predicates::prelude::*;

use crate::support::api::report::deltas;
use crate::support::bk;
use crate::support::report::*;

#[test]
fn report_writes_every_derived_file() {
    let dir = tempfile::tempdir().unwrap();
    demo_like_store(dir.path());
    bk(dir.path())
        .arg("report")
        .assert()
        .success()
        .stdout(predicate::str::contains("reports/index.html"))
        .stdout(predicate::str::contains("1 like-for-like group(s)"));
    for f in [
        "reports/index.html",
        "reports/COMPARISON.md",
        "analysis/summary.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let charts = std::fs::read_dir(dir.path().join("reports/charts"))
        .unwrap()
        .count();
    assert!(charts >= 4, "{charts}");
    // The baseline platform flag changes the ratios.
    bk(dir.path())
        .args(["report", "--baseline-platform", "vllm-serve"])
        .assert()
        .success();
    let md = std::fs::read_to_string(dir.path().join("reports/COMPARISON.md")).unwrap();
    assert!(
        md.contains("- **ollama**: 0.29x vllm-serve output tok/s"),
        "{md}"
    );
    // So does the environment, also for `compare` (which rebuilds COMPARISON.md).
    bk(dir.path())
        .arg("compare")
        .env("BENCHKEEP_BASELINE_PLATFORM", "vllm-serve")
        .assert()
        .success();
    let md2 = std::fs::read_to_string(dir.path().join("reports/COMPARISON.md")).unwrap();
    assert_eq!(md, md2);
}

#[test]
fn compare_table_ends_with_the_head_to_head() {
    let dir = tempfile::tempdir().unwrap();
    demo_like_store(dir.path());
    bk(dir.path())
        .arg("compare")
        .assert()
        .success()
        .stdout(predicate::str::contains("Head-to-head"))
        .stdout(predicate::str::contains(
            "vllm-serve: 3.42x ollama output tok/s, req/s 1.00x, TTFT p50 0.21x, E2E p50 0.21x",
        ));
}

#[test]
fn compare_baseline_flags_and_gates_regressions() {
    // These runs have no per-request logs: judged by the threshold alone (the
    // significance-aware path is tests/it/gate_cli.rs).
    let dir = tempfile::tempdir().unwrap();
    let (_, f) = demo_like_store(dir.path());
    // vllm_a (410 tok/s, TTFT 85) against vllm_a_old (380, 95): better, no regression.
    // No colour although NO_COLOR is unset: stdout is a pipe.
    bk(dir.path())
        .env_remove("NO_COLOR")
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.vllm_a_old,
            &f.vllm_a,
            "--fail-on-regression",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("output tok/s"))
        .stdout(predicate::str::contains("+7.9%  improved"))
        .stdout(predicate::str::contains("No regression beyond 5%"))
        .stdout(predicate::str::contains("\x1b[").not());
    // The other way round: regressions, exit 1 with --fail-on-regression only.
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.vllm_a,
            &f.vllm_a_old,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("-7.3%  REGRESSION"));
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.vllm_a,
            &f.vllm_a_old,
            "--fail-on-regression",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--fail-on-regression"));
    // A wide threshold lets it pass.
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.vllm_a,
            &f.vllm_a_old,
            "--fail-on-regression",
            "--threshold",
            "50",
        ])
        .assert()
        .success();
    // Without run ids: the later runs of the same platform, family and input.
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.vllm_a_old,
            "--format",
            "json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "\"test_id\": \"{}\"",
            f.vllm_a
        )))
        .stdout(predicate::str::contains(format!(
            "\"test_id\": \"{}\"",
            f.vllm_failed
        )));
    // Comparing across platforms says it is not like for like.
    bk(dir.path())
        .args([
            "compare",
            "--threshold-only",
            "--baseline",
            &f.ollama_a,
            "--platform",
            "vllm-offline",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "not like for like: input sha256:b2b2b2b2b2b2 vs sha256:a1a1a1a1a1a1",
        ));
}

#[test]
fn compare_flag_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, f) = demo_like_store(dir.path());
    bk(dir.path())
        .args(["compare", "--threshold", "5"])
        .assert()
        .code(2);
    bk(dir.path())
        .args(["compare", "--fail-on-regression"])
        .assert()
        .code(2);
    bk(dir.path())
        .args(["compare", "--baseline", &f.vllm_a, "--threshold=-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--threshold"));
    bk(dir.path())
        .args(["compare", "--baseline", "no-such-run"])
        .assert()
        .code(3);
    bk(dir.path())
        .args(["compare", "--baseline", "vllm-serve-google"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("matches 2 runs"));
    // The latest vllm-serve run has no later partner.
    bk(dir.path())
        .args(["compare", "--baseline", &f.vllm_failed])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("name the runs to compare"));
}

#[test]
fn deltas_are_coloured_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, f) = demo_like_store(dir.path());
    let runs = store.load_all().unwrap();
    let get = |id: &str| runs.runs.iter().find(|m| m.test_id == id).unwrap().clone();
    let (base, run) = (get(&f.vllm_a), get(&f.vllm_a_old));
    let rows = vec![deltas::compare(&base, &run, 5.0)];
    let plain = deltas::render_text(&base, &rows, 5.0, false);
    let color = deltas::render_text(&base, &rows, 5.0, true);
    assert!(!plain.contains('\x1b'));
    assert!(color.contains("\x1b[31m") && color.contains("\x1b[0m"));
    let regressions: Vec<&str> = rows[0]
        .regressions()
        .map(|d| deltas::TRACKED[d.metric].key)
        .collect();
    assert_eq!(
        regressions,
        [
            "output_tokens_per_sec",
            "ttft_p50_ms",
            "ttft_p99_ms",
            "tpot_p50_ms",
            "e2e_p50_ms",
            "e2e_p99_ms"
        ]
    );
}

#[test]
fn export_csv_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    demo_like_store(dir.path());
    let out = bk(dir.path())
        .args(["export", "--platform", "ollama"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("test_id,timestamp,platform,model,status,"));
    let file = dir.path().join("runs.jsonl");
    bk(dir.path())
        .args(["export", "--format", "jsonl", "--out"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("Exported 7 run(s)"));
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["results.output_tokens_per_sec"].is_number(), "{line}");
        assert!(
            v.as_object().unwrap().values().all(|x| !x.is_object()),
            "flat: {line}"
        );
    }
    bk(dir.path())
        .args(["export", "--format", "jsonl", "--out", "-"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"test_id\""));
    bk(dir.path())
        .args(["export", "--format", "xml"])
        .assert()
        .code(2);
}
