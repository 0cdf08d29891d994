//! The store at a URL (`benchkeep init --store URL`): one suite run against a store
//! directory, `file://`, and (with `--features external-it`, as CI runs it) `s3://` on moto;
//! with `--features external-it,azure` under `scripts/with_azurite.sh`, `az://` on Azurite.
//! Concurrent writers get distinct ids, a second create of an id is refused, `run`
//! killed by SIGKILL and then `recover` keeps every finished request, `verify` is clean,
//! and no secret reaches any output or file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::api::store::{Remote, RemoteConfig};
use crate::support::moto::{Kind, SECRET, Target, kinds};
use crate::support::sim::{start_blocking, timed};
use crate::support::store::{all_files, line_count};
use crate::support::{fixture, out, wait_until};

/// Every run as `export --format jsonl` shows it, read through `spool`.
fn exported(t: &Target, spool: &Path) -> Vec<Value> {
    let (code, so, se) = out(t
        .cmd_with_spool(spool)
        .args(["export", "--format", "jsonl"]));
    assert_eq!(code, 0, "{so}{se}");
    so.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn verify_clean(t: &Target, spool: &Path) {
    let (code, so, se) = out(t.cmd_with_spool(spool).arg("verify"));
    assert_eq!(code, 0, "verify on {:?}: {so}{se}", t.kind);
}

fn analyze(t: &Target) -> std::process::Command {
    let mut c = t.cmd("analyze");
    c.args([
        "--platform",
        "vllm",
        "--model",
        "m",
        "--total-time",
        "10",
        "--input",
    ])
    .arg(fixture("foundation/chat_ok_and_error.jsonl"));
    c
}

#[test]
fn eight_concurrent_writers_get_eight_distinct_ids() {
    for kind in kinds() {
        let t = Target::new(kind);
        let children: Vec<_> = (0..8)
            .map(|_| {
                analyze(&t)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "{kind:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // What another machine sees: a spool never used before.
        let fresh = t.fresh_spool();
        let runs = exported(&t, &fresh);
        let mut ids: Vec<&str> = runs
            .iter()
            .map(|r| r["test_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 8, "{kind:?}: {ids:?}");
        verify_clean(&t, &fresh);
    }
}

#[test]
fn a_second_create_of_an_id_is_refused() {
    for kind in kinds() {
        let t = Target::new(kind);
        // A directory store's exclusive create is the store tests' subject (store_cli.rs).
        if kind == Kind::Dir {
            continue;
        }
        let remote = Remote::open(&RemoteConfig {
            url: t.url.clone(),
            options: t.options(),
            timeout: Duration::from_secs(10),
            retries: 1,
        })
        .unwrap();
        assert!(remote.reserve("x-1", b"{}").unwrap(), "{kind:?}");
        assert!(!remote.reserve("x-1", b"{\"b\":1}").unwrap(), "{kind:?}");
        assert_eq!(
            remote.get("metadata/x-1.json", 1 << 20).unwrap().unwrap(),
            b"{}"
        );
        // init again changes nothing and says so.
        let (code, so, se) = out(&mut t.cmd("init"));
        assert_eq!(code, 0, "{so}{se}");
        assert!(so.contains("already a benchkeep store"), "{so}");
    }
}

#[test]
fn kill_9_then_recover_keeps_every_finished_request() {
    let sim = start_blocking(timed(Profile::Vllm, 5.0, 20.0));
    for kind in kinds() {
        let t = Target::new(kind);
        let spool = t.spool();
        let mut child = t
            .cmd("run")
            .args(["--platform", "vllm", "--model", "sim-model", "--base-url"])
            .arg(sim.base_url())
            .args([
                "--synthetic",
                "--input-tokens",
                "4",
                "--output-tokens",
                "10",
            ])
            .args(["--num-requests", "100000", "--concurrency", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let raw_of = |spool: &Path| {
            std::fs::read_dir(spool.join("raw"))
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        };
        wait_until(Duration::from_secs(60), "8 finished requests", || {
            raw_of(&spool).is_some_and(|p| line_count(&p) >= 8)
        });
        if kind == Kind::File {
            // The live log goes up in parts while the run goes on.
            let root = t.url.trim_start_matches("file://").to_string();
            wait_until(Duration::from_secs(60), "an uploaded part", || {
                all_files(Path::new(&root))
                    .iter()
                    .any(|p| p.to_string_lossy().contains(".jsonl.parts/"))
            });
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let before = line_count(&raw_of(&spool).unwrap());
        let (code, so, se) = out(&mut t.cmd("recover"));
        assert_eq!(code, 0, "{kind:?}: {so}{se}");
        let fresh = t.fresh_spool();
        let runs = exported(&t, &fresh);
        assert_eq!(runs.len(), 1, "{kind:?}");
        let r = &runs[0];
        assert_eq!(r["status"], "interrupted", "{kind:?}: {r}");
        let kept = r["results.success_count"].as_u64().unwrap() as usize;
        assert!(kept >= before, "{kind:?}: {kept} < {before}");
        let id = r["test_id"].as_str().unwrap();
        verify_clean(&t, &fresh);
        let raw = fresh.join("raw").join(format!("{id}.jsonl"));
        assert!(line_count(&raw) >= before, "{kind:?}");
        if kind == Kind::File {
            let root = t.url.trim_start_matches("file://").to_string();
            assert!(
                !all_files(Path::new(&root))
                    .iter()
                    .any(|p| p.to_string_lossy().contains(".parts/")),
                "the parts go once the whole log is up"
            );
        }
    }
}

#[test]
fn no_secret_reaches_any_output_or_file() {
    for kind in kinds().into_iter().filter(|k| *k != Kind::Dir) {
        let t = Target::new(kind);
        let secret = t.secret();
        let mut c = analyze(&t);
        c.env("AWS_SECRET_ACCESS_KEY", SECRET);
        let (code, so, se) = out(&mut c);
        assert_eq!(code, 0, "{so}{se}");
        assert!(!so.contains(secret) && !se.contains(secret));
        assert!(!so.contains(SECRET) && !se.contains(SECRET));
        let fresh = t.fresh_spool();
        let (code, so, se) = out(t.cmd_with_spool(&fresh).arg("report"));
        assert_eq!(code, 0, "{so}{se}");
        assert!(!so.contains(secret) && !se.contains(secret));
        for f in all_files(t.dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(SECRET) && !text.contains(secret),
                "{kind:?}: the secret is in {}",
                f.display()
            );
        }
    }
}
