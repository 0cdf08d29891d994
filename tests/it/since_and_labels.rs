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
