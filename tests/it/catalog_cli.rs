//! The derived catalog `analysis/catalog/part-NN.jsonl`: built by the first
//! `query`/`compare`, kept in step with `metadata/` (a new run, a replaced file, a removed
//! file) by rewriting only the parts that changed, trusted without a listing while
//! `metadata/` has not changed (the hole: a file edited in place, which `verify` reports),
//! never the only copy (deleted or corrupt: rebuilt), answers exactly what reading every
//! metadata file answers (`--no-catalog`).

use std::fs;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::bk;
use crate::support::catalog::{catalog_dir, catalog_ids, catalog_parts, catalog_rows};
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
        &["query", "--metric", "total_time_seconds"],
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
    assert!(!catalog_dir(&store).exists());
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
        assert_eq!(r["catalog"], 2);
        assert_eq!(
            r["file"].as_str().unwrap(),
            format!("{}.json", r["test_id"].as_str().unwrap())
        );
        assert!(r["stat"]["size"].as_u64().unwrap() > 0);
        assert!(r["run"]["results"]["throughput_tokens_per_sec"].is_number());
        // The head is not repeated under `run`.
        assert!(r["platform"].is_string() && r["run"].get("platform").is_none());
        // A small row: the headline figures, not the whole metadata.
        assert!(r.to_string().len() < 1000, "{r}");
        assert!(r["run"].get("config").is_none() && r["run"].get("tool").is_none());
    }
    let inodes = |store: &std::path::Path| -> Vec<(std::path::PathBuf, u64)> {
        use std::os::unix::fs::MetadataExt;
        catalog_parts(store)
            .into_iter()
            .map(|p| {
                let ino = fs::metadata(&p).unwrap().ino();
                (p, ino)
            })
            .collect()
    };
    let before = inodes(&store);

    // A new run: the producer keeps the existing catalog in step (one more row).
    analyze(
        &store,
        "vllm-offline",
        "gemma3-4b",
        &fixture("foundation/chat_ok_and_error.jsonl"),
    )
    .success();
    assert_eq!(catalog_rows(&store).len(), 4);
    // ... by rewriting only the part that holds its row (a rewrite is a new inode).
    let after = inodes(&store);
    let kept = before.iter().filter(|b| after.contains(b)).count();
    assert!(kept + 1 >= before.len(), "{before:?} -> {after:?}");
    assert!(after.len() <= before.len() + 1);
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

/// The catalog's parts and their bytes.
fn parts_bytes(store: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    catalog_parts(store)
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn a_deleted_or_corrupt_catalog_is_rebuilt_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let before = stdout(&store, &["query", "--all", "--json"]);
    let good = parts_bytes(&store);

    fs::remove_dir_all(catalog_dir(&store)).unwrap();
    assert_eq!(stdout(&store, &["query", "--all", "--json"]), before);
    assert_eq!(parts_bytes(&store), good);

    // A cut last line (a crash of another tool, a full disk): rebuilt with a warning.
    let (part, bytes) = &good[0];
    fs::write(part, &bytes[..bytes.len() - 20]).unwrap();
    bk(&store)
        .args(["query", "--all", "--json"])
        .assert()
        .success()
        .stdout(before.clone())
        .stderr(predicate::str::contains("is unusable (part-"))
        .stderr(predicate::str::contains("cut short"))
        .stderr(predicate::str::contains("nothing is lost"));
    assert_eq!(parts_bytes(&store), good);

    // A row of another catalog version is not trusted either.
    let text = String::from_utf8(bytes.clone()).unwrap();
    fs::write(part, text.replacen("\"catalog\":2", "\"catalog\":99", 1)).unwrap();
    bk(&store)
        .args(["compare", "--format", "csv"])
        .assert()
        .success()
        .stderr(predicate::str::contains("catalog version 99"));
    assert_eq!(parts_bytes(&store), good);

    // A part removed behind benchkeep's back (the state still lists it): its rows are
    // read again from their metadata files.
    fs::remove_file(part).unwrap();
    assert_eq!(stdout(&store, &["query", "--all", "--json"]), before);
    assert_eq!(parts_bytes(&store), good);

    // The one-file catalog of version 1 is removed when the parts are written (an engine
    // reading it would get stale rows).
    fs::write(store.join("analysis/catalog.jsonl"), b"{}\n").unwrap();
    fs::remove_dir_all(catalog_dir(&store)).unwrap();
    stdout(&store, &["query"]);
    assert!(!store.join("analysis/catalog.jsonl").exists());
}

/// Set the `metadata/` folder's mtime an hour back, so that the next listing is not
/// racy (a change within the same second could hide behind an unchanged mtime).
fn age_metadata_dir(store: &std::path::Path) {
    let dir = fs::File::open(store.join("metadata")).unwrap();
    dir.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

#[test]
fn an_unchanged_metadata_folder_is_trusted_and_an_edit_in_place_is_the_documented_hole() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // Built right after the runs were written: that listing is racy, and not trusted.
    stdout(&store, &["query"]);
    let state: Value = read_json(&catalog_dir(&store).join(".state.json"));
    assert_eq!(state["racy"], true, "{state}");
    age_metadata_dir(&store);
    stdout(&store, &["query"]);
    let state: Value = read_json(&catalog_dir(&store).join(".state.json"));
    assert_eq!(state["racy"], false, "{state}");

    // A figure changed in place (same inode, same folder mtime): the reader does not
    // look at metadata/ and answers from the row ...
    let path = metadata_files(&store)[0].clone();
    let mut m = read_json(&path);
    let id = m["test_id"].as_str().unwrap().to_string();
    let old = m["results"]["total_time_seconds"].clone();
    m["results"]["total_time_seconds"] = serde_json::json!(4242.5);
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let all = ["query", "--all", "--metric", "total_time_seconds"];
    assert!(stdout(&store, &all).contains(&format!("{id}\t{old}")));
    // ... `verify` says so, with the fix ...
    let out = bk(&store).args(["verify", "--no-hash"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("differs from the metadata file"), "{text}");
    assert!(text.contains("edited in place"), "{text}");
    // ... and `--no-catalog`, or the catalog deleted, answers from the file.
    let mut direct = all.to_vec();
    direct.push("--no-catalog");
    assert!(stdout(&store, &direct).contains(&format!("{id}\t4242.5")));
    fs::remove_dir_all(catalog_dir(&store)).unwrap();
    assert!(stdout(&store, &all).contains(&format!("{id}\t4242.5")));

    // A file added by hand moves the folder's mtime: seen without being told.
    age_metadata_dir(&store);
    stdout(&store, &["query"]);
    let mut copy = m.clone();
    copy["test_id"] = serde_json::json!("copied-run");
    fs::write(
        store.join("metadata/copied-run.json"),
        serde_json::to_vec_pretty(&copy).unwrap(),
    )
    .unwrap();
    assert!(catalog_ids(&store).iter().all(|x| x != "copied-run"));
    assert!(stdout(&store, &["query", "--all", "--json"]).contains("copied-run"));
    assert!(catalog_ids(&store).iter().any(|x| x == "copied-run"));
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
        .find(|r| r["test_id"] == id.as_str())
        .unwrap();
    assert!(row["run"].get("custom_block").is_none(), "trimmed: {row}");
    assert!(row["run"].get("config").is_none(), "trimmed: {row}");
    assert_eq!(
        stdout(
            &store,
            &[
                "query",
                "--all",
                "--platform",
                "vllm-offline",
                "--metric",
                "config.max_model_len"
            ]
        ),
        stdout(
            &store,
            &[
                "query",
                "--all",
                "--platform",
                "vllm-offline",
                "--metric",
                "config.max_model_len",
                "--no-catalog"
            ]
        )
    );
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
    let rows = catalog_rows(&store);
    let mut first = rows[0].clone();
    first["run"]["results"]["throughput_tokens_per_sec"] = serde_json::json!(1e9);
    let mut ghost = rows[1].clone();
    ghost["file"] = serde_json::json!("ghost-run.json");
    ghost["test_id"] = serde_json::json!("ghost-run");
    for p in catalog_parts(&store) {
        fs::remove_file(p).unwrap();
    }
    fs::write(
        catalog_dir(&store).join("part-00.jsonl"),
        format!("{first}\n{ghost}\n{}\n", rows[2]),
    )
    .unwrap();
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
    fs::remove_dir_all(catalog_dir(&store)).unwrap();
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

/// Many runs (enough for `compare` to build them on several threads, each into its own
/// slice of the final list), timestamps out of file-name order with ties, and rows whose
/// figures cannot be read (cut short in place, a figure of the wrong type): the catalog's
/// answers still equal reading every file, oldest first, ties by id.
#[test]
fn many_runs_built_in_place_keep_the_order_and_fall_back_to_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let template = read_json(&metadata_files(&store)[0]);
    for i in 0..150 {
        let mut m = template.clone();
        let id = format!("bulk-{i:03}");
        m["test_id"] = serde_json::json!(id);
        // 150 runs over 40 instants: out of name order, and ties broken by id.
        let minute = (i * 37) % 40;
        m["timestamp"] = serde_json::json!(format!("2026-11-02T10:{minute:02}:00Z"));
        m["results"]["total_time_seconds"] = serde_json::json!(100.0 + i as f64);
        fs::write(
            store.join(format!("metadata/{id}.json")),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
    }
    assert_same_as_without_catalog(&store);
    // Spoil two rows in their parts, keeping each part's size (so the rows are used as
    // they are): a number's first digit turned into a quote, which leaves the row's
    // figures unreadable (its head, before them, intact).
    let mut spoiled = 0;
    for part in catalog_parts(&store) {
        let text = fs::read_to_string(&part).unwrap();
        if spoiled < 2 && text.contains("\"total_time_seconds\":1") {
            let bad = text.replacen("\"total_time_seconds\":1", "\"total_time_seconds\":\"", 1);
            assert_eq!(bad.len(), text.len());
            fs::write(&part, bad).unwrap();
            spoiled += 1;
        }
    }
    assert_eq!(spoiled, 2);
    assert_same_as_without_catalog(&store);
    let csv = stdout(&store, &["compare", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 1 + 153, "{csv}");
    let stamps: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "oldest first");

    // With the state trusted, two files edited in place (the catalog's documented hole)
    // whose rows are spoiled too: one now names a later time (read from its file, the
    // run moves to the end), one is no longer JSON (skipped, with the same warning).
    age_metadata_dir(&store);
    stdout(&store, &["query"]);
    let moved = store.join("metadata/bulk-140.json");
    let mut m = read_json(&moved);
    m["timestamp"] = serde_json::json!("2030-01-01T00:00:00Z");
    fs::write(&moved, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    fs::write(store.join("metadata/bulk-141.json"), b"{ not json").unwrap();
    for file in ["bulk-140.json", "bulk-141.json"] {
        let part = catalog_parts(&store)
            .into_iter()
            .find(|p| fs::read_to_string(p).unwrap().contains(file))
            .unwrap();
        let text = fs::read_to_string(&part).unwrap();
        let spoiled: String = text
            .lines()
            .map(|l| match l.contains(file) {
                true => {
                    // The figure's first digit turned into a quote.
                    let at = l.find("\"total_time_seconds\":").unwrap() + 21;
                    format!("{}\"{}", &l[..at], &l[at + 1..])
                }
                false => l.to_string(),
            })
            .map(|l| l + "\n")
            .collect();
        assert_eq!(spoiled.len(), text.len());
        assert_ne!(spoiled, text);
        fs::write(&part, spoiled).unwrap();
    }
    let state: Value = read_json(&catalog_dir(&store).join(".state.json"));
    assert_eq!(state["racy"], false, "{state}");
    let run = |extra: &[&str]| {
        let out = bk(&store)
            .args(["compare", "--format", "csv"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (through_catalog, warned) = run(&[]);
    let (from_files, warned_too) = run(&["--no-catalog"]);
    assert_eq!(through_catalog, from_files);
    assert!(
        warned.contains("skipped") && warned.contains("bulk-141.json"),
        "{warned}"
    );
    assert!(warned_too.contains("bulk-141.json"), "{warned_too}");
    assert!(!through_catalog.contains("bulk-141,"));
    let last = through_catalog.lines().last().unwrap();
    assert!(last.starts_with("bulk-140,"), "{last}");
}

/// RELIABILITY P11 for the catalog's parts: a part replaced by a symlink to a file outside
/// the store, or by a FIFO, is neither followed nor opened for reading (no hang): the
/// answers stay those of the metadata files, the outside file is untouched, and the parts
/// written afterwards are regular files again.
#[test]
fn a_part_that_is_a_link_or_a_fifo_is_never_followed_or_opened() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    assert_same_as_without_catalog(&store);
    let parts = catalog_parts(&store);
    assert!(parts.len() >= 2, "{parts:?}");
    let outside = dir.path().join("outside.jsonl");
    fs::write(&outside, b"not a catalog\n").unwrap();
    fs::remove_file(&parts[0]).unwrap();
    std::os::unix::fs::symlink(&outside, &parts[0]).unwrap();
    fs::remove_file(&parts[1]).unwrap();
    crate::support::store::mkfifo(&parts[1]);
    assert_same_as_without_catalog(&store);
    assert_eq!(fs::read(&outside).unwrap(), b"not a catalog\n");
    for part in catalog_parts(&store) {
        let t = fs::symlink_metadata(&part).unwrap().file_type();
        assert!(t.is_file() && !t.is_fifo(), "{part:?}: {t:?}");
    }
}

/// A part cut short in place after its heads were read (by hand, or another user's
/// tool): the rows it no longer holds are read from their metadata files, and the runs
/// are those every metadata file gives.
#[test]
fn a_part_cut_short_after_its_heads_were_read_falls_back_to_the_files() {
    use crate::support::api::store::{Store, catalog_file};
    let dir = tempfile::tempdir().unwrap();
    let store_dir = populated_store(dir.path());
    stdout(&store_dir, &["query"]);
    let store = Store::new(&store_dir);
    let cat = catalog_file::load(&store).unwrap();
    for part in catalog_parts(&store_dir) {
        fs::OpenOptions::new()
            .write(true)
            .open(&part)
            .unwrap()
            .set_len(10)
            .unwrap();
    }
    let through_catalog = cat.runs(&store);
    let from_files = store.load_all().unwrap();
    assert_eq!(through_catalog.runs.len(), 3);
    assert_eq!(
        serde_json::to_value(&through_catalog.runs).unwrap(),
        serde_json::to_value(&from_files.runs).unwrap()
    );
    assert!(through_catalog.skipped.is_empty());
}
