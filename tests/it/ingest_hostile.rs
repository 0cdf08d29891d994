//! Hostile input to `analyze`: lines that are not objects of the forced format, negative
//! token counts, absurd `--total-time` values, and inputs that are streams (issue 10).

use std::path::Path;

use crate::support::cmd::analyze_cmd;
use crate::support::store::{all_files, only_metadata};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn arrays_are_no_records_of_a_forced_format() {
    let dir = tempfile::tempdir().unwrap();
    for (format, good) in [
        (
            "ollama",
            r#"{"model":"m","created_at":"t","done":true,"eval_count":3,"prompt_eval_count":2}"#,
        ),
        (
            "vllm-offline",
            r#"{"request_id":"1","num_output_tokens":3,"num_prompt_tokens":2}"#,
        ),
    ] {
        let store = dir.path().join(format);
        let input = write(
            dir.path(),
            &format!("{format}.jsonl"),
            &format!("{good}\n[1,2,3]\n[]\n"),
        );
        let a = analyze_cmd(&store, "p", "m")
            .arg("--input")
            .arg(&input)
            .args(["--format", format, "--total-time", "10"])
            .assert()
            .success();
        let err = stderr(&a);
        assert!(err.contains(":2: not a record"), "{format}: {err}");
        assert!(err.contains(":3: not a record"), "{format}: {err}");
        let m = only_metadata(&store);
        assert_eq!(m["results"]["success_count"], 1, "{format}: {m}");
        assert_eq!(m["results"]["unparseable_lines"], 2, "{format}: {m}");
    }
}

#[test]
fn negative_token_counts_are_warned_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = write(
        dir.path(),
        "neg.jsonl",
        concat!(
            r#"{"model":"m","created_at":"t","done":true,"eval_count":3,"prompt_eval_count":2}"#,
            "\n",
            r#"{"model":"m","created_at":"t","done":true,"eval_count":-5,"prompt_eval_count":2}"#,
            "\n",
        ),
    );
    let a = analyze_cmd(&store, "p", "m")
        .arg("--input")
        .arg(&input)
        .args(["--format", "ollama", "--total-time", "10"])
        .assert()
        .success();
    let err = stderr(&a);
    assert!(err.contains("negative token count"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let m = only_metadata(&store);
    assert_eq!(m["results"]["invalid_token_counts"], 1, "{m}");
    assert_eq!(m["results"]["success_count"], 2, "{m}");
}

#[test]
fn absurd_total_times_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let input = write(
        dir.path(),
        "ok.jsonl",
        concat!(
            r#"{"model":"m","created_at":"t","done":true,"eval_count":3,"prompt_eval_count":2}"#,
            "\n"
        ),
    );
    for (flag, v) in [
        ("--total-time", "1e308"),
        ("--total-time", "1e-300"),
        ("--model-load-time", "1e308"),
        ("--vram-total-gb", "1e300"),
    ] {
        let mut c = analyze_cmd(&store, "p", "m");
        c.arg("--input").arg(&input).args([flag, v]);
        if flag != "--total-time" {
            c.args(["--total-time", "10"]);
        }
        let a = c.assert().code(2);
        assert!(stderr(&a).contains(flag), "{flag} {v}: {}", stderr(&a));
    }
    assert!(
        !store.join("metadata").exists() || all_files(&store.join("metadata")).is_empty(),
        "nothing may be written"
    );
}

#[test]
fn a_fifo_input_is_refused_with_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let fifo = dir.path().join("results.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let a = analyze_cmd(&store, "p", "m")
        .arg("--input")
        .arg(&fifo)
        .args(["--total-time", "10"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2);
    let err = stderr(&a);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(err.contains("cat results > results.jsonl"), "{err}");
}

#[test]
fn metadata_with_a_non_finite_figure_is_never_serialized() {
    use benchkeep::schema::{Metadata, SourceKind};
    let mut m = Metadata::new(SourceKind::Analyze, "ollama", "p", "m", chrono::Utc::now());
    assert!(benchkeep::store::to_json(&m).is_ok());
    m.results.total_time_seconds = f64::INFINITY;
    let e = benchkeep::store::to_json(&m).unwrap_err();
    assert!(format!("{e:#}").contains("not a finite number"), "{e:#}");
    m.results.total_time_seconds = 1.0;
    m.results.throughput_tokens_per_sec = f64::NAN;
    assert!(benchkeep::store::to_json(&m).is_err());
}
