//! The store is never a way out (RELIABILITY P11): no command follows a symlink or opens a
//! FIFO or device inside the store, `verify` reports each, and a user-named output file
//! never overwrites a stored file or replaces a FIFO, device or symlink (P3).

use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cmd::populated_store;
use crate::support::store::mkfifo;
use crate::support::store::{crashed_run, dead_pid, metadata_files, raw_names};
use crate::support::{bk, bk_std, out};

/// Run `bk_std` with a deadline: a command that blocks on a FIFO or reads /dev/zero forever
/// fails the test instead of hanging it.
fn out_within(c: &mut std::process::Command, limit: Duration) -> (i32, String, String) {
    let start = Instant::now();
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            return (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not return within {limit:?} (blocked or reading without end)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn recover_never_truncates_what_a_symlinked_raw_log_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (id, raw) = crashed_run(&store, 5, dead_pid());
    let outside = dir.path().join("precious.txt");
    let content = b"not benchkeep's to cut\n{\"torn";
    fs::write(&outside, content).unwrap();
    fs::remove_file(&raw).unwrap();
    symlink(&outside, &raw).unwrap();

    let (code, vout, _) = out(bk_std(&store).arg("verify"));
    assert_ne!(code, 0);
    assert!(
        vout.contains("symbolic link"),
        "verify names the link:\n{vout}"
    );

    let (code, stdout, err) = out_within(bk_std(&store).arg("recover"), Duration::from_secs(20));
    assert_eq!(code, 4, "{stdout}{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        fs::read(&outside).unwrap(),
        content,
        "the outside file is untouched"
    );
    assert!(fs::symlink_metadata(&raw).unwrap().file_type().is_symlink());
    assert!(
        !raw_names(&store).iter().any(|n| n.contains(".torn-")),
        "nothing was moved aside: {:?}",
        raw_names(&store)
    );
    let m = crate::support::store::read_json(&store.join(format!("metadata/{id}.json")));
    assert_eq!(m["status"], "running", "the run is left for a real fix");
}

#[test]
fn recover_and_verify_return_at_once_on_dev_zero_and_a_fifo() {
    for kind in ["dev-zero", "fifo", "directory"] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        let (_, raw) = crashed_run(&store, 3, dead_pid());
        fs::remove_file(&raw).unwrap();
        match kind {
            "dev-zero" => symlink("/dev/zero", &raw).unwrap(),
            "fifo" => mkfifo(&raw),
            _ => fs::create_dir(&raw).unwrap(),
        }
        let (code, vout, _) = out_within(bk_std(&store).arg("verify"), Duration::from_secs(20));
        assert_ne!(code, 0, "{kind}");
        assert!(
            vout.contains("not a regular file") || vout.contains("where only regular files belong"),
            "{kind}:\n{vout}"
        );
        let (code, stdout, err) =
            out_within(bk_std(&store).arg("recover"), Duration::from_secs(20));
        assert_eq!(code, 4, "{kind}: {stdout}{err}");
        assert!(err.contains("not a regular file"), "{kind}: {err}");
        // report and compare read the raw files too (the HTML page, the summary)
        let (_, _, _) = out_within(bk_std(&store).arg("report"), Duration::from_secs(30));
        let (_, _, _) = out_within(bk_std(&store).arg("compare"), Duration::from_secs(30));
    }
}

#[test]
fn export_never_overwrites_a_stored_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let meta = metadata_files(&store).remove(0);
    let raw = fs::read_dir(store.join("raw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let (meta_before, raw_before) = (fs::read(&meta).unwrap(), fs::read(&raw).unwrap());
    for target in [&raw, &meta] {
        let o = bk(&store)
            .args(["export", "--out"])
            .arg(target)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", target.display());
        assert!(
            err.contains("--out") && err.contains("in the store"),
            "{err}"
        );
    }
    // through a symlink outside the store, too
    let link = dir.path().join("runs.csv");
    symlink(&raw, &link).unwrap();
    let o = bk(&store)
        .args(["export", "--out"])
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(fs::read(&meta).unwrap(), meta_before);
    assert_eq!(fs::read(&raw).unwrap(), raw_before);
}

#[test]
fn export_writes_into_a_fifo_and_through_a_symlink_never_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    // A FIFO: written to (a reader gets the CSV), and still a FIFO afterwards.
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    // The reader end is opened first, without blocking (nothing here can hang if export
    // replaces the FIFO instead of writing into it; the CSV fits the pipe's buffer).
    let mut reader = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap()
    };
    let (code, _, err) = out_within(
        bk_std(&store).args(["export", "--out"]).arg(&fifo),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "{err}");
    let mut csv = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut csv);
    assert!(csv.starts_with("test_id,"), "{csv}");
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A symlink to a device: the device is written, the link stays a link.
    let link = dir.path().join("null-link");
    symlink("/dev/null", &link).unwrap();
    bk(&store)
        .args(["export", "--out"])
        .arg(&link)
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A symlink to a regular file: the file gets the export, the link stays.
    let file = dir.path().join("real.csv");
    fs::write(&file, "old").unwrap();
    let link = dir.path().join("file-link.csv");
    symlink(&file, &link).unwrap();
    bk(&store)
        .args(["export", "--out"])
        .arg(&link)
        .assert()
        .success();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fs::read_to_string(&file).unwrap().starts_with("test_id,"));
}

/// Each store folder linked to an outside folder: every command that writes refuses with
/// exit 4 and leaves the outside folder as it was; `verify` reports the link.
#[test]
fn symlinked_store_folders_are_refused_and_reported() {
    for folder in ["reports/charts", "reports", "analysis", "metadata", "raw"] {
        let dir = tempfile::tempdir().unwrap();
        let store = populated_store(dir.path());
        bk(&store).arg("report").assert().success();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("mine.svg"), "keep").unwrap();
        fs::write(outside.join("summary.json"), "keep").unwrap();
        fs::write(outside.join("COMPARISON.md"), "keep").unwrap();
        let inside = store.join(folder);
        fs::rename(&inside, dir.path().join("moved")).unwrap();
        symlink(&outside, &inside).unwrap();
        let snapshot = |d: &Path| {
            let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(d)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let before = snapshot(&outside);

        let (code, vout, _) = out(bk_std(&store).arg("verify"));
        assert_ne!(code, 0, "{folder}");
        assert!(vout.contains("not a directory"), "{folder}:\n{vout}");
        for args in [
            vec!["report"],
            vec!["compare"],
            vec![
                "analyze",
                "--platform",
                "p",
                "--model",
                "m",
                "--total-time",
                "5",
                "--input",
            ],
        ] {
            let mut c = bk_std(&store);
            c.args(&args);
            if args[0] == "analyze" {
                c.arg(crate::support::fixture(
                    "foundation/chat_ok_and_error.jsonl",
                ));
            }
            let (code, stdout, err) = out(&mut c);
            if args[0] == "compare" {
                // compare prints what it can and warns that the derived files were not built
                assert!(code == 0 || code == 4, "{folder} compare: {stdout}{err}");
            } else {
                assert_eq!(code, 4, "{folder} {args:?}: {stdout}{err}");
                assert!(err.contains("not a directory"), "{folder} {args:?}: {err}");
            }
            assert_eq!(
                snapshot(&outside),
                before,
                "{folder} {args:?} wrote outside"
            );
        }
    }
}

#[test]
fn a_store_that_is_a_file_is_exit_4_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store-file");
    fs::write(&file, "x").unwrap();
    for args in [
        vec!["verify"],
        vec!["compare"],
        vec!["report"],
        vec!["export"],
        vec!["recover"],
        vec!["show", "x"],
        vec!["query", "--metric", "output_tokens_per_sec"],
        vec![
            "analyze",
            "--platform",
            "p",
            "--model",
            "m",
            "--total-time",
            "5",
            "--input",
        ],
    ] {
        let mut c = bk_std(&file);
        c.args(&args);
        if args[0] == "analyze" {
            c.arg(crate::support::fixture(
                "foundation/chat_ok_and_error.jsonl",
            ));
        }
        let (code, stdout, err) = out(&mut c);
        assert_eq!(code, 4, "{args:?}: {stdout}{err}");
        assert!(err.contains("not a directory"), "{args:?}: {err}");
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn report_never_reads_a_finished_runs_raw_log_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let raw = fs::read_dir(store.join("raw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    fs::remove_file(&raw).unwrap();
    symlink("/dev/zero", &raw).unwrap();
    let (_, stdout, err) = out_within(bk_std(&store).arg("report"), Duration::from_secs(30));
    let _ = (stdout, err);
    let (code, vout, _) = out(bk_std(&store).arg("verify"));
    assert_ne!(code, 0);
    assert!(vout.contains("symbolic link"), "{vout}");
}
