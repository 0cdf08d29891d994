//! The derived catalog `analysis/catalog.jsonl`: built by the first `query`/`compare`,
//! kept in step with `metadata/` (a new run, a replaced file, a removed file), never the
//! only copy (deleted or corrupt: rebuilt), answers exactly what reading every metadata
//! file answers (`--no-catalog`), and checked by `verify`.

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::bk;
use crate::support::catalog::{catalog_ids, catalog_path, catalog_rows};
use crate::support::cmd::{analyze, populated_store};
use crate::support::fixture;
use crate::support::store::{metadata_files, read_json};

fn stdout(store: &std::path::Path, args: &[&str]) -> String {
    let out = bk(store).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every answer through the catalog equals the answer from every metadata file.
fn assert_same_as_without_catalog(store: &std::path::Path) {
    for args in [
        &["query", "--all", "--json"][..],
        &["query", "--platform", "ollama"],
        &["query", "--all", "--metric", "total_time_seconds"],
        &[
            "query",
            "--model",
            "gemma3-4b",
            "--metric",
            "config.max_model_len",
        ],
        &["compare", "--format", "csv"],
        &["compare", "--format", "markdown", "--sort", "throughput"],
        &["compare"],
    ] {
        let mut old = args.to_vec();
        old.push("--no-catalog");
        assert_eq!(stdout(store, args), stdout(store, &old), "{args:?}");
    }
}

#[test]
fn the_catalog_is_built_kept_in_step_and_answers_as_the_metadata_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // Producers do not build it; the first reader does.
    assert!(!catalog_path(&store).exists());
    assert_same_as_without_catalog(&store);
    let rows = catalog_rows(&store);
    assert_eq!(rows.len(), 3);
    let mut ids = catalog_ids(&store);
    ids.sort();
    let mut files: Vec<String> = metadata_files(&store)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(ids, files);
    for r in &rows {
        assert_eq!(r["catalog"], 1);
        assert_eq!(
            r["file"].as_str().unwrap(),
            format!("{}.json", r["run"]["test_id"].as_str().unwrap())
        );
        assert!(r["stat"]["size"].as_u64().unwrap() > 0);
        assert!(r["run"]["results"]["throughput_tokens_per_sec"].is_number());
    }

    // A new run: the producer keeps the existing catalog in step (one more row).
    analyze(
        &store,
        "vllm-offline",
        "gemma3-4b",
        &fixture("foundation/chat_ok_and_error.jsonl"),
    )
    .success();
    assert_eq!(catalog_rows(&store).len(), 4);
    assert_same_as_without_catalog(&store);

    // A metadata file replaced behind benchkeep's back (a new figure): its row is read
    // again, the others are not.
    let path = &metadata_files(&store)[0];
    let mut m = read_json(path);
    m["results"]["throughput_tokens_per_sec"] = serde_json::json!(123456.5);
    let tmp = path.with_extension("edit");
    fs::write(&tmp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    fs::rename(&tmp, path).unwrap();
    let id = m["test_id"].as_str().unwrap();
    let all = stdout(
        &store,
        &["query", "--all", "--metric", "throughput_tokens_per_sec"],
    );
    assert!(all.contains(&format!("{id}\t123456.5")), "{all}");
    assert_same_as_without_catalog(&store);

    // A removed file: its row goes.
    fs::remove_file(path).unwrap();
    let all = stdout(&store, &["query", "--all", "--json"]);
    assert!(!all.contains(id), "{all}");
    assert_eq!(catalog_rows(&store).len(), 3);
    assert!(!catalog_ids(&store).iter().any(|x| x == id));
}

#[test]
fn a_deleted_or_corrupt_catalog_is_rebuilt_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let before = stdout(&store, &["query", "--all", "--json"]);
    let good = fs::read(catalog_path(&store)).unwrap();

    fs::remove_file(catalog_path(&store)).unwrap();
    assert_eq!(stdout(&store, &["query", "--all", "--json"]), before);
    assert_eq!(fs::read(catalog_path(&store)).unwrap(), good);

    // A cut last line (a crash of another tool, a full disk): rebuilt with a warning.
    fs::write(catalog_path(&store), &good[..good.len() - 20]).unwrap();
    bk(&store)
        .args(["query", "--all", "--json"])
        .assert()
        .success()
        .stdout(before.clone())
        .stderr(predicate::str::contains(
            "catalog.jsonl is unusable (line 3",
        ))
        .stderr(predicate::str::contains("nothing is lost"));
    assert_eq!(fs::read(catalog_path(&store)).unwrap(), good);

    // A row of another catalog version is not trusted either.
    let text = String::from_utf8(good.clone()).unwrap();
    fs::write(
        catalog_path(&store),
        text.replacen("\"catalog\":1", "\"catalog\":99", 1),
    )
    .unwrap();
    bk(&store)
        .args(["compare", "--format", "csv"])
        .assert()
        .success()
        .stderr(predicate::str::contains("catalog version 99"));
    assert_eq!(fs::read(catalog_path(&store)).unwrap(), good);
}

#[test]
fn parts_a_row_leaves_out_are_read_from_the_metadata_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // A free-form key at the top of the one vllm-offline run's metadata (as `record`
    // writes `command`), written in place.
    let path = metadata_files(&store)
        .into_iter()
        .find(|p| read_json(p)["platform"] == "vllm-offline")
        .unwrap();
    let mut m = read_json(&path);
    m["custom_block"] = serde_json::json!({"answer": 42});
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let id = m["test_id"].as_str().unwrap().to_string();
    stdout(&store, &["compare"]);
    let row = catalog_rows(&store)
        .into_iter()
        .find(|r| r["run"]["test_id"] == id.as_str())
        .unwrap();
    assert!(row["run"].get("custom_block").is_none(), "trimmed: {row}");
    assert!(row["run"]["config"]["max_model_len"].is_number(), "{row}");
    let one = [
        "query",
        "--platform",
        "vllm-offline",
        "--metric",
        "custom_block.answer",
    ];
    assert_eq!(stdout(&store, &one), "42\n");
    let all = stdout(
        &store,
        &["query", "--all", "--metric", "custom_block.answer"],
    );
    assert!(all.contains(&format!("{id}\t42")), "{all}");
    // The other runs lack it: null, as without the catalog.
    let mut old = vec!["query", "--all", "--metric", "custom_block.answer"];
    assert_eq!(
        all.lines().filter(|l| l.ends_with("\tnull")).count(),
        2,
        "{all}"
    );
    old.push("--no-catalog");
    assert_eq!(all, stdout(&store, &old));
}

#[test]
fn unreadable_metadata_is_skipped_with_a_warning_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    fs::write(store.join("metadata/broken-run.json"), b"{ not json").unwrap();
    for _ in 0..2 {
        bk(&store)
            .args(["query", "--all", "--json"])
            .assert()
            .success()
            .stderr(predicate::str::contains("skipped"))
            .stderr(predicate::str::contains("broken-run.json"));
    }
    let broken: Vec<Value> = catalog_rows(&store)
        .into_iter()
        .filter(|r| r["file"] == "broken-run.json")
        .collect();
    assert_eq!(broken.len(), 1);
    assert!(
        broken[0]["skipped"]
            .as_str()
            .unwrap()
            .contains("not benchkeep metadata")
    );
}

#[test]
fn verify_reports_a_catalog_out_of_step_as_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    stdout(&store, &["query"]);
    bk(&store)
        .args(["verify", "--no-hash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("warning").not())
        .stdout(predicate::str::contains("no problems"));

    // A tampered row, a row whose run is gone, a run without a row.
    let text = fs::read_to_string(catalog_path(&store)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut first: Value = serde_json::from_str(&lines[0]).unwrap();
    first["run"]["results"]["throughput_tokens_per_sec"] = serde_json::json!(1e9);
    lines[0] = first.to_string();
    let mut ghost: Value = serde_json::from_str(&lines[1]).unwrap();
    ghost["file"] = serde_json::json!("ghost-run.json");
    ghost["run"]["test_id"] = serde_json::json!("ghost-run");
    lines[1] = ghost.to_string();
    fs::write(catalog_path(&store), lines.join("\n") + "\n").unwrap();
    let out = bk(&store)
        .args(["verify", "--no-hash"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("its catalog row differs from the metadata file"),
        "{out}"
    );
    assert!(
        out.contains("ghost-run.json: has a catalog row but no metadata file"),
        "{out}"
    );
    assert!(out.contains("has no row in the catalog"), "{out}");
    assert!(
        out.contains(
            "catalog: 3 row(s) checked against metadata/, 3 out of step (warnings; the store is fine)"
        ),
        "{out}"
    );
    assert!(out.contains("no problems"), "{out}");
    // A row edited by hand while its file's stat still matches is only caught here: the
    // fix is to delete the catalog, which the next reader rebuilds.
    fs::remove_file(catalog_path(&store)).unwrap();
    stdout(&store, &["query"]);
    bk(&store)
        .args(["verify", "--no-hash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("warning").not());
}

#[test]
fn reading_a_store_that_does_not_exist_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("nothing");
    bk(&store).args(["query"]).assert().failure();
    bk(&store).args(["compare"]).assert().success();
    assert!(!store.exists());
}
