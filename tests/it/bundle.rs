//! `benchkeep bundle ID [--out DIR]`: an upstream bug report for a run, as a folder and a
//! .tar.gz; never overwritten, never inside the store, and never holding a secret.

use std::path::Path;

use crate::support::api::sim::Profile;
use crate::support::cmd::{python, record_cmd};
use crate::support::report::demo_like_store;
use crate::support::sim::{fast_exact, start_blocking};
use crate::support::store::{all_files, all_metadata, mkfifo};
use crate::support::{bk, bk_std, out};

fn unpack(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "tar xzf {}", archive.display());
}

fn read(p: &Path) -> String {
    String::from_utf8(std::fs::read(p).unwrap()).unwrap()
}

fn assert_no_canary(dir: &Path) {
    let files = all_files(dir);
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(
            !text.contains("CANARY"),
            "{} holds a secret:\n{text}",
            f.display()
        );
    }
}

#[test]
fn bundle_of_a_run_with_failures() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (_s, fx) = demo_like_store(&store);
    let outdir = dir.path().join("out");
    let a = bk(&store)
        .args(["bundle", &fx.ollama_a, "--out"])
        .arg(&outdir)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let name = format!("benchkeep-bundle-{}", fx.ollama_a);
    let folder = outdir.join(&name);
    assert!(stdout.contains(&folder.display().to_string()), "{stdout}");
    for f in [
        "ISSUE.md",
        "metadata.json",
        "config.json",
        "failing-requests.jsonl",
    ] {
        assert!(folder.join(f).is_file(), "{f}");
    }
    let issue = read(&folder.join("ISSUE.md"));
    for want in [
        "## Your current environment",
        "OS: linux-x86_64",
        "CPUs: 16",
        "GPU: RTX 4080",
        "## Describe the bug",
        "status **partial**",
        "100 of 102 requests succeeded, 2 failed",
        "HTTP 500: model runner crashed",
        "The first failing request",
        "## Expected behaviour",
        "benchkeep: benchkeep 0.1.0",
    ] {
        assert!(issue.contains(want), "{want} missing:\n{issue}");
    }
    let failing = read(&folder.join("failing-requests.jsonl"));
    assert_eq!(failing.lines().count(), 2, "{failing}");
    for line in failing.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], false);
    }
    let meta: serde_json::Value =
        serde_json::from_str(&read(&folder.join("metadata.json"))).unwrap();
    assert_eq!(meta["test_id"], fx.ollama_a.as_str());

    // The archive holds the same folder.
    let archive = outdir.join(format!("{name}.tar.gz"));
    let unpacked = dir.path().join("unpacked");
    unpack(&archive, &unpacked);
    assert_eq!(read(&unpacked.join(&name).join("ISSUE.md")), issue);

    // Never overwritten: 2, naming the path.
    let a = bk(&store)
        .args(["bundle", &fx.ollama_a, "--out"])
        .arg(&outdir)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains(&folder.display().to_string()) && err.contains("already exists"),
        "{err}"
    );

    // A run that failed outright: no request succeeded.
    bk(&store)
        .args(["bundle", &fx.vllm_failed, "--out"])
        .arg(&outdir)
        .assert()
        .success();
    let issue = read(
        &outdir
            .join(format!("benchkeep-bundle-{}", fx.vllm_failed))
            .join("ISSUE.md"),
    );
    assert!(
        issue.contains("status **failed**") && issue.contains("| connect | 100 |"),
        "{issue}"
    );

    // Not inside the store; an unknown run is 3.
    bk(&store)
        .args(["bundle", &fx.vllm_a, "--out"])
        .arg(store.join("reports"))
        .assert()
        .code(2);
    bk(&store)
        .args(["bundle", "no-such-run", "--out"])
        .arg(&outdir)
        .assert()
        .code(3);
}

/// Canaries in the environment, on the command line (a header, the URL's password) and in
/// a recorded command's log: `grep -r CANARY` over the bundles and their unpacked archives
/// finds nothing.
#[test]
fn a_bundle_never_holds_a_secret() {
    let sim = start_blocking(fast_exact(Profile::Vllm));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let url = format!("http://user:CANARY3-url@{}", sim.addr());
    let (code, _o, err) = out(bk_std(&store)
        .env("OPENAI_API_KEY", "sk-CANARY1-env")
        .args([
            "run",
            "--platform",
            "vllm",
            "--model",
            "sim-model",
            "--base-url",
            &url,
            "--synthetic",
            "--input-tokens",
            "4",
            "--output-tokens",
            "4",
            "--num-requests",
            "3",
            "--header",
            "X-Key: CANARY2-header",
        ]));
    assert_eq!(code, 0, "{err}");
    // A recorded command that prints a key into its log (decoded at run time, so the
    // command line itself holds no canary).
    let script = "import base64,sys; print('starting'); print(base64.b64decode('YXBpX2tleT1DQU5BUlk0LWxvZy00NDQ0').decode()); sys.exit(3)";
    let results = dir.path().join("never-written.jsonl");
    let rec = record_cmd(&store, "vllm-offline", "sim-model")
        .args(["--gpu", "off", "--output"])
        .arg(&results)
        .args(["--", &python(), "-c", script])
        .output()
        .unwrap();
    assert!(!rec.status.success(), "the command failed");
    let runs = all_metadata(&store);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let bundles = dir.path().join("bundles");
    for m in &runs {
        let id = m["test_id"].as_str().unwrap();
        let (code, o, e) = out(bk_std(&store)
            .env("OPENAI_API_KEY", "sk-CANARY1-env")
            .args(["bundle", id, "--out"])
            .arg(&bundles));
        assert_eq!(code, 0, "{e}");
        assert!(!format!("{o}{e}").contains("CANARY"), "{o}{e}");
        let name = format!("benchkeep-bundle-{id}");
        unpack(
            &bundles.join(format!("{name}.tar.gz")),
            &dir.path().join("unpacked"),
        );
    }
    // The recorded log's tail is in the bundle, redacted.
    let rec = runs
        .iter()
        .find(|m| m["platform"] == "vllm-offline")
        .unwrap();
    let issue = read(
        &bundles
            .join(format!(
                "benchkeep-bundle-{}",
                rec["test_id"].as_str().unwrap()
            ))
            .join("ISSUE.md"),
    );
    assert!(
        issue.contains("## Logs") && issue.contains("starting"),
        "{issue}"
    );
    assert!(issue.contains("api_key=***"), "{issue}");
    assert_no_canary(&bundles);
    assert_no_canary(&dir.path().join("unpacked"));
}

/// A run whose raw log was replaced by a FIFO or a symlink to `/dev/zero` (RELIABILITY
/// P8, P11): `bundle` neither blocks nor reads without end; the bundle is written without
/// the failing requests, and nothing outside the store is touched.
#[test]
fn bundle_never_follows_or_blocks_on_the_raw_log() {
    for hostile in ["fifo", "dev-zero"] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let (_s, fx) = demo_like_store(&store);
        let raw = store.join(format!("raw/{}.jsonl", fx.ollama_a));
        std::fs::remove_file(&raw).unwrap();
        match hostile {
            "fifo" => mkfifo(&raw),
            _ => std::os::unix::fs::symlink("/dev/zero", &raw).unwrap(),
        }
        let mut child = bk_std(&store)
            .args(["bundle", &fx.ollama_a, "--out"])
            .arg(dir.path().join("out"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let status = status.unwrap_or_else(|| panic!("{hostile}: bundle did not return"));
        assert!(status.success(), "{hostile}: {status:?}");
    }
}
