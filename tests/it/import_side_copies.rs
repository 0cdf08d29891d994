//! Per-request files read beside a summary (AIPerf's `profile_export.jsonl`, llmperf's
//! `*_individual_responses.json`) are kept in `raw/` too, redacted like the summary (JSON
//! Lines: per line), and the metadata names the copy and both sha256s.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::import::{import, import_fixture};
use crate::support::store::all_metadata;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn import_ok(store: &Path, path: &Path) {
    let (code, stdout, stderr) = import(store, &[], &[path.to_path_buf()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// The one run's notes, and the bytes of the copy they name.
fn copy_of(store: &Path) -> (Value, Vec<u8>) {
    let runs = all_metadata(store);
    assert_eq!(runs.len(), 1);
    let notes = runs[0]["source"]["notes"].clone();
    let rel = notes["per_request_copy"].as_str().unwrap();
    assert!(rel.starts_with("raw/"), "{rel}");
    let bytes = std::fs::read(store.join(rel)).unwrap();
    (notes, bytes)
}

#[test]
fn aiperf_and_llmperf_per_request_files_are_kept() {
    for (dir, side) in [
        ("aiperf", "profile_export.jsonl"),
        ("llmperf", "org-tiny_64_32_individual_responses.json"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        import_ok(&store, &import_fixture(dir));
        let original = std::fs::read(import_fixture(&format!("{dir}/{side}"))).unwrap();
        let (notes, copy) = copy_of(&store);
        // Nothing secret in these files: the copy is the file, byte for byte.
        assert_eq!(copy, original, "{dir}");
        assert_eq!(notes["per_request_sha256"], sha(&original));
        assert_eq!(notes["per_request_stored_sha256"], sha(&copy));
        assert!(notes.get("per_request_redacted").is_none());
        // A second import adds nothing and removes nothing.
        let (code, stdout, _) = import(&store, &[], &[import_fixture(dir)]);
        assert_eq!(code, 0);
        assert!(stdout.contains("already imported"), "{stdout}");
        assert_eq!(copy_of(&store).1, original);
        // `verify` counts the copy as the run's own, and misses it when it is gone.
        let verify = || crate::support::out(crate::support::bk_std(&store).arg("verify"));
        let (code, vout, verr) = verify();
        assert_eq!(code, 0, "{vout}\n{verr}");
        let rel = copy_of(&store).0["per_request_copy"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::remove_file(store.join(&rel)).unwrap();
        let (code, vout, verr) = verify();
        assert_ne!(code, 0);
        let text = format!("{vout}{verr}");
        assert!(text.contains(&rel) && text.contains("missing"), "{text}");
    }
}

#[test]
fn a_secret_in_a_per_request_line_never_reaches_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("in");
    std::fs::create_dir(&src).unwrap();
    for name in ["profile_export_aiperf.json", "profile_export.jsonl"] {
        std::fs::copy(import_fixture(&format!("aiperf/{name}")), src.join(name)).unwrap();
    }
    let jsonl = src.join("profile_export.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut second: Value = serde_json::from_str(&lines[1]).unwrap();
    second["headers"] = serde_json::json!({"Authorization": "Bearer sk-sideSECRETsideSECRET99"});
    lines[1] = serde_json::to_string(&second).unwrap();
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let store = tmp.path().join("store");
    import_ok(&store, &src);
    let (notes, copy) = copy_of(&store);
    let copy_text = String::from_utf8(copy.clone()).unwrap();
    assert!(!copy_text.contains("sideSECRET"), "secret kept in raw/");
    assert_eq!(copy_text.lines().count(), lines.len());
    assert_eq!(notes["per_request_redacted"][0], "line 2: /headers");
    assert_eq!(notes["per_request_stored_sha256"], sha(&copy));
    assert_eq!(
        notes["per_request_sha256"],
        sha(&std::fs::read(&jsonl).unwrap())
    );
    for entry in walk(&store) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("sideSECRET"),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
