//! `benchkeep archive` / `restore`: runs leave the reports and come back byte for byte,
//! nothing is deleted or overwritten, a running run stays, and a move cut off by a crash is
//! found by `verify` and finished by `archive` (or undone by `restore`).

use std::fs;
use std::path::Path;

use crate::support::cmd::populated_store;
use crate::support::{bk, bk_std, out};

fn ids(store: &Path, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.join(sub))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn first_ollama(store: &Path) -> String {
    ids(store, "metadata")
        .into_iter()
        .find(|n| n.starts_with("ollama"))
        .unwrap()
        .trim_end_matches(".json")
        .to_string()
}

#[test]
fn archive_then_restore_moves_every_file_and_changes_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let id = first_ollama(&store);
    let meta_before = fs::read(store.join(format!("metadata/{id}.json"))).unwrap();
    let raw_before = fs::read(store.join(format!("raw/{id}.jsonl"))).unwrap();

    bk(&store).args(["archive", &id]).assert().success();
    assert!(!store.join(format!("metadata/{id}.json")).exists());
    assert!(!store.join(format!("raw/{id}.jsonl")).exists());
    assert_eq!(
        fs::read(store.join(format!("archive/metadata/{id}.json"))).unwrap(),
        meta_before
    );
    assert_eq!(
        fs::read(store.join(format!("archive/raw/{id}.jsonl"))).unwrap(),
        raw_before
    );
    // Out of the reports, out of compare; show says where it went; verify is happy.
    let md = fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(!md.contains(&id), "{md}");
    let (code, o, _) = out(bk_std(&store).args(["compare", "--format", "csv"]));
    assert_eq!(code, 0);
    assert!(!o.contains(&id), "{o}");
    let (code, _, e) = out(bk_std(&store).args(["show", &id]));
    assert_eq!(code, 3);
    assert!(
        e.contains("is archived") && e.contains(&format!("benchkeep restore {id}")),
        "{e}"
    );
    let (code, o, _) = out(bk_std(&store).arg("verify"));
    assert_eq!(code, 0, "{o}");
    let (_, o, _) = out(bk_std(&store).args(["archive", "--list"]));
    assert!(o.starts_with(&id), "{o}");

    bk(&store).args(["restore", &id]).assert().success();
    assert_eq!(
        fs::read(store.join(format!("metadata/{id}.json"))).unwrap(),
        meta_before
    );
    assert_eq!(
        fs::read(store.join(format!("raw/{id}.jsonl"))).unwrap(),
        raw_before
    );
    assert!(ids(&store, "archive/metadata").is_empty());
    let md = fs::read_to_string(store.join("reports/COMPARISON.md")).unwrap();
    assert!(md.contains(&id), "{md}");
    // A second restore finds nothing: exit 3.
    let (code, _, _) = out(bk_std(&store).args(["restore", &id]));
    assert_eq!(code, 3);
}

#[test]
fn never_overwrites_and_never_archives_a_running_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let id = first_ollama(&store);
    // A different file already has the archived name: refused, both files intact.
    fs::create_dir_all(store.join("archive/raw")).unwrap();
    fs::write(
        store.join(format!("archive/raw/{id}.jsonl")),
        b"someone else's\n",
    )
    .unwrap();
    let (code, _, e) = out(bk_std(&store).args(["archive", &id]));
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("never overwrites"), "{e}");
    assert_eq!(
        fs::read(store.join(format!("archive/raw/{id}.jsonl"))).unwrap(),
        b"someone else's\n"
    );
    assert!(store.join(format!("raw/{id}.jsonl")).is_file());
    assert!(store.join(format!("metadata/{id}.json")).is_file());
    fs::remove_file(store.join(format!("archive/raw/{id}.jsonl"))).unwrap();

    // A running run stays where it is.
    let path = store.join(format!("metadata/{id}.json"));
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    v["status"] = "running".into();
    fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, _, e) = out(bk_std(&store).args(["archive", &id]));
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("still running"), "{e}");
    assert!(path.is_file());
}

#[test]
fn a_crash_mid_archive_is_found_by_verify_and_finished_by_archive() {
    for step in ["archive-linked", "archive-raw-moved"] {
        let dir = tempfile::tempdir().unwrap();
        let store = populated_store(dir.path());
        let id = first_ollama(&store);
        let raw_before = fs::read(store.join(format!("raw/{id}.jsonl"))).unwrap();
        let (code, _, _) = out(bk_std(&store)
            .args(["archive", &id])
            .env("BENCHKEEP_CRASH_AT", step));
        assert_ne!(code, 0, "{step}: the crash hook fired");
        let (code, o, _) = out(bk_std(&store).arg("verify"));
        assert_eq!(code, 1, "{step}: {o}");
        assert!(
            o.contains(&format!("benchkeep archive {id}")),
            "{step}: {o}"
        );
        // Finishing it works from the cut-off state, and loses nothing.
        bk(&store).args(["archive", &id]).assert().success();
        assert_eq!(
            fs::read(store.join(format!("archive/raw/{id}.jsonl"))).unwrap(),
            raw_before
        );
        let (code, o, _) = out(bk_std(&store).arg("verify"));
        assert_eq!(code, 0, "{step}: {o}");
    }
}
