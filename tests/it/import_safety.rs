//! `benchkeep import` is safe: re-importing adds nothing, `--dry-run` writes nothing, a
//! broken or unknown file is listed and the others go on (exit 2 when one failed), no
//! secret in a fixture reaches the store, and what is written matches the schema.

use std::path::Path;

use jsonschema::Validator;
use serde_json::Value;

use crate::support::import::{import, import_fixture, runs_of};
use crate::support::store::all_metadata;

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != ".lock") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn reimport_adds_nothing_and_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    let all = import_fixture("");
    let (code, out, _) = import(&s, &["--dry-run"], std::slice::from_ref(&all));
    assert_eq!(code, 2, "the broken fixture fails: {out}");
    assert!(
        out.contains("would import") && out.contains("dry run: nothing written"),
        "{out}"
    );
    assert!(!s.exists(), "--dry-run wrote the store");
    let (code, first, _) = import(&s, &[], std::slice::from_ref(&all));
    assert_eq!(code, 2, "{first}");
    assert!(
        first.contains("FAILED") && first.contains("broken.json"),
        "{first}"
    );
    assert!(
        first.contains("skipped") && first.contains("notes.txt: not a result file"),
        "{first}"
    );
    let before = files_under(&s.join("metadata"));
    let raw_before = files_under(&s.join("raw"));
    assert!(!before.is_empty());
    let (_, again, _) = import(&s, &[], std::slice::from_ref(&all));
    assert!(again.contains("Imported 0 runs from 0 files"), "{again}");
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(files_under(&s.join("metadata")), before);
    assert_eq!(files_under(&s.join("raw")), raw_before);
    // Dry run against the filled store says what is skipped and why.
    let (_, dry, _) = import(&s, &["--dry-run"], &[import_fixture("llmperf")]);
    assert!(dry.contains("already imported (run llmperf-"), "{dry}");
}

#[test]
fn no_secret_reaches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    let paths = [
        import_fixture("genai_perf"),
        import_fixture("guidellm_secret"),
    ];
    let (code, out, err) = import(&s, &[], &paths);
    assert_eq!(code, 0, "{out}\n{err}");
    for secret in ["gp-secret-123456", "sk-fixture-not-real-0123456789"] {
        let fixture_has_it = paths.iter().any(|p| {
            files_under(p)
                .iter()
                .any(|(_, b)| String::from_utf8_lossy(b).contains(secret))
        });
        assert!(
            fixture_has_it,
            "the fixture no longer holds {secret}: the test proves nothing"
        );
        for (name, bytes) in files_under(&s) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{secret} in {name}"
            );
        }
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    let g = &runs_of(&s, "genai-perf")[0];
    assert_eq!(
        g["source"]["redacted"],
        serde_json::json!(["/input_config/header"])
    );
    assert_ne!(g["source"]["sha256"], g["source"]["stored_sha256"]);
    assert_eq!(g["test"]["raw_sha256"], g["source"]["stored_sha256"]);
    let gl = &runs_of(&s, "guidellm")[0];
    let red = gl["source"]["redacted"].as_array().unwrap();
    assert!(
        red.iter().any(|p| p == "/config/spec/backend/api_key"),
        "{red:?}"
    );
    // `benchkeep verify` finds the stored copies whole.
    let (code, vout, verr) = crate::support::out(crate::support::bk_std(&s).arg("verify"));
    assert_eq!(code, 0, "{vout}\n{verr}");
}

#[test]
fn imported_metadata_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    import(&s, &[], &[import_fixture("")]);
    let schema: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/metadata.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let v: Validator = jsonschema::draft202012::options().build(&schema).unwrap();
    let source_keys = schema["properties"]["source"]["properties"]
        .as_object()
        .unwrap();
    let test_keys = schema["$defs"]["test"]["properties"].as_object().unwrap();
    let metas = all_metadata(&s);
    assert!(metas.len() >= 10);
    for m in &metas {
        let errors: Vec<String> = v.iter_errors(m).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", m["test_id"]);
        for k in m["source"].as_object().unwrap().keys() {
            assert!(source_keys.contains_key(k), "source.{k} is not documented");
        }
        for k in m["test"].as_object().unwrap().keys() {
            assert!(test_keys.contains_key(k), "test.{k} is not documented");
        }
    }
}

#[test]
fn a_label_overrides_the_input_identity_and_workloads_pair_across_tools() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    import(
        &s,
        &[],
        &[
            import_fixture("llmperf"),
            import_fixture("inference_benchmarker"),
        ],
    );
    let a = &runs_of(&s, "llmperf")[0];
    let b = &runs_of(&s, "inference-benchmarker")[1];
    // Both recorded 64 prompt / 32 output tokens: the same input identity.
    assert_eq!(a["test"]["input_sha256"], b["test"]["input_sha256"]);
    let s2 = dir.path().join("store2");
    import(
        &s2,
        &["--label", "input=chat-64", "--platform", "vllm"],
        &[import_fixture("llmperf")],
    );
    let c = &runs_of(&s2, "llmperf")[0];
    assert_eq!(c["labels"]["input"], "chat-64");
    assert_eq!(c["platform"], "vllm");
}
