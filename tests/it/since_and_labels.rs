//! `--since` compares instants (any UTC offset, `t`/`z` in either case), a timestamp that
//! is no date counts as unknown (oldest), and label keys with dots are refused (issue 10).

use std::fs;

use crate::support::bk;
use crate::support::cmd::populated_store;
use crate::support::store::{metadata_files, read_json};

/// The populated store with its three runs' timestamps set to `stamps`; their test ids,
/// quoted as in JSON.
fn stamped(dir: &std::path::Path, stamps: [&str; 3]) -> (std::path::PathBuf, Vec<String>) {
    let store = populated_store(dir);
    let mut files = metadata_files(&store);
    files.sort();
    let mut ids = Vec::new();
    for (path, ts) in files.iter().zip(stamps) {
        let mut m = read_json(path);
        m["timestamp"] = ts.into();
        ids.push(format!("{:?}", m["test_id"].as_str().unwrap()));
        fs::write(path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    }
    (store, ids)
}

fn query(store: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = bk(store).arg("query").args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn since_compares_instants_and_unknown_times_are_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = stamped(
        dir.path(),
        [
            // 14:00Z, later than 12:00Z although it sorts first as text
            "2024-10-28T09:00:00-05:00",
            "2024-10-28T12:00:00Z",
            "not a date",
        ],
    );
    for since in [
        "2024-10-28T13:00:00Z",
        "2024-10-28t13:00:00z",
        "2024-10-28T15:00:00+02:00",
    ] {
        let (out, _) = query(&store, &["--since", since, "--json"]);
        assert!(out.contains(&ids[0]), "{since}: {out}");
        assert!(!out.contains(&ids[1]), "{since}: {out}");
        assert!(!out.contains(&ids[2]), "{since}: {out}");
    }
    let (out, err) = query(
        &store,
        &["--since", "2024-10-28T11:00:00Z", "--json", "--all"],
    );
    assert!(out.contains(&ids[0]) && out.contains(&ids[1]), "{out}");
    assert!(
        !out.contains(&ids[2]),
        "a run with no date is never newest: {out}"
    );
    assert!(err.contains("no date"), "{err}");
    // The latest run is the latest instant, never the one with no date.
    let (out, _) = query(&store, &["--json"]);
    assert!(out.contains(&ids[0]), "{out}");
}

#[test]
fn label_keys_with_dots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    for cmd in [
        &["query", "--label", "a.b=1"][..],
        &["compare", "--label", "gpu.x=1"],
    ] {
        let out = bk(&store).args(cmd).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("may not contain a dot"), "{err}");
    }
}

#[test]
fn a_folded_model_match_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let (_, err) = query(&store, &["--model", "GEMMA3-12B"]);
    assert!(err.contains("matched model \"gemma3:12b\""), "{err}");
    let (_, err) = query(&store, &["--model", "gemma3:12b"]);
    assert!(!err.contains("matched model"), "{err}");
}

#[test]
fn compare_in_a_machine_format_with_no_match_prints_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let out = bk(&store)
        .args(["compare", "--format", "json", "--platform", "nope"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No runs match"));
    let out = bk(&store)
        .args(["compare", "--format", "csv", "--platform", "nope"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
    assert!(!csv.contains("No runs"), "{csv}");
}

#[test]
fn record_refuses_an_output_inside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    fs::create_dir_all(store.join("raw")).unwrap();
    let out = bk(&store)
        .args([
            "record",
            "--platform",
            "p",
            "--model",
            "m",
            "--gpu",
            "off",
            "--output",
        ])
        .arg(store.join("raw/x.log"))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the store"));
}
