//! Metadata packs (`analysis/packs/pack-NN.jsonl`, store/remote/packs.rs): on `s3://`
//! (moto, `--features external-it`) a fresh spool of a store with packs makes no GET per
//! run (counted in moto's request log) and gets byte-identical files; a pull of a store
//! written without packs adds them (self-healing); a stale, corrupt or tampered line
//! costs a GET, never a wrong file; two writers racing on one pack both land in it. On
//! `file://` (no conditional updates) no pack is ever written and pulls work as before.
//! On `az://` (Azurite, `--features azure`) a fresh spool reads its packs too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::api::store::{Remote, RemoteConfig, Store, packs, sync};
use crate::support::moto::{Kind, Target};
use crate::support::store::all_files;
use crate::support::{fixture, out};

fn remote_of(t: &Target) -> Remote {
    Remote::open(&RemoteConfig {
        url: t.url.clone(),
        options: t.options(),
        timeout: Duration::from_secs(10),
        retries: 1,
    })
    .unwrap()
}

/// One run made by `analyze` (a producer: it adds its own pack line).
fn analyze(t: &Target) {
    let (code, so, se) = out(t
        .cmd("analyze")
        .args(["--platform", "vllm", "--model", "m", "--total-time", "10"])
        .arg("--input")
        .arg(fixture("foundation/chat_ok_and_error.jsonl")));
    assert_eq!(code, 0, "{so}{se}");
}

/// The metadata files of a spool, by name.
fn metadata_files(spool: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(spool.join("metadata"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .map(|n| {
            let bytes = std::fs::read(spool.join("metadata").join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// A fresh spool pulled through the library: what the pull did, and its files.
fn pull_fresh(t: &Target, remote: &Remote) -> (sync::Pulled, BTreeMap<String, Vec<u8>>) {
    let spool = t.fresh_spool();
    let store = Store::new(&spool);
    store.ensure_layout().unwrap();
    let pulled = sync::pull(remote, &store, sync::Pull::Metadata).unwrap();
    (pulled, metadata_files(&spool))
}

#[cfg(feature = "external-it")]
/// The keys in the pack `n` (lines that parse), in order.
fn pack_keys(remote: &Remote, n: usize) -> Vec<String> {
    let Some(bytes) = remote.get(&packs::pack_rel(n), 64 << 20).unwrap() else {
        return Vec::new();
    };
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect()
}

/// A store with `n` runs: one by `analyze` (which adds its pack line), the others copies
/// put as plain objects, as a store written before packs existed has them.
fn store_with_runs(t: &Target, remote: &Remote, n: usize) -> Vec<String> {
    analyze(t);
    let listed = remote.list("metadata").unwrap();
    assert_eq!(listed.len(), 1);
    let first = listed[0].0.clone();
    let bytes = remote.get(&first, 1 << 24).unwrap().unwrap();
    let mut keys = vec![first];
    let tpl: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    for i in 1..n {
        let id = format!("vllm-m-copy-{i:03}-2026-10-01");
        let mut m = tpl.clone();
        m["test_id"] = id.clone().into();
        let mut body = serde_json::to_vec_pretty(&m).unwrap();
        body.push(b'\n');
        let key = format!("metadata/{id}.json");
        remote.put(&key, body).unwrap();
        keys.push(key);
    }
    keys.sort();
    keys
}

/// Azure lists ETags bare and sends them quoted in a GET or PUT: pack lines (written
/// with the latter) are still matched against the listing, and serve a fresh spool.
#[cfg(all(feature = "external-it", feature = "azure"))]
#[test]
fn on_azure_a_fresh_spool_reads_its_metadata_from_packs() {
    let t = Target::new(Kind::Azure);
    let remote = remote_of(&t);
    store_with_runs(&t, &remote, 12);
    let (first, by_get) = pull_fresh(&t, &remote);
    assert_eq!((first.fetched, first.from_packs), (12, 1), "{first:?}");
    assert_eq!(first.packed, 11, "{first:?}");
    let (second, from_packs) = pull_fresh(&t, &remote);
    assert_eq!((second.fetched, second.from_packs), (12, 12), "{second:?}");
    assert_eq!(from_packs, by_get);
}

#[cfg(feature = "external-it")]
#[test]
fn a_fresh_spool_gets_its_metadata_from_packs_not_a_get_per_run() {
    use crate::support::moto::{moto_log_len, moto_requests};
    let t = Target::new(Kind::S3);
    let remote = remote_of(&t);
    let keys = store_with_runs(&t, &remote, 30);
    let bucket = t.url["s3://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // The producer added its run to its pack.
    let made = keys.iter().find(|k| !k.contains("-copy-")).unwrap();
    assert_eq!(pack_keys(&remote, packs::pack_of(made)), vec![made.clone()]);

    // A store written without packs: a GET per run, then the pull adds them to packs.
    let (first, by_get) = pull_fresh(&t, &remote);
    assert_eq!((first.fetched, first.from_packs), (30, 1), "{first:?}");
    assert_eq!(first.packed, 29, "{first:?}");
    let mut in_packs: Vec<String> = (0..packs::PACKS)
        .flat_map(|n| pack_keys(&remote, n))
        .collect();
    in_packs.sort();
    assert_eq!(in_packs, keys);

    // A fresh spool now: the command's requests, counted by moto.
    let spool = t.fresh_spool();
    let from = moto_log_len();
    let (code, so, se) = out(t
        .cmd_with_spool(&spool)
        .args(["export", "--format", "jsonl"]));
    assert_eq!(code, 0, "{so}{se}");
    assert_eq!(so.lines().count(), 30, "{so}");
    let reqs = moto_requests(&bucket, from);
    let touched: std::collections::HashSet<usize> =
        keys.iter().map(|k| packs::pack_of(k)).collect();
    let lists = reqs
        .iter()
        .filter(|(_, p)| p.contains("list-type=2"))
        .count();
    // The manifest, one LIST page of metadata/ and one of the packs, one GET per pack.
    assert_eq!(lists, 2, "{reqs:?}");
    assert!(
        reqs.len() <= 1 + lists + touched.len(),
        "{} requests for {} packs: {reqs:?}",
        reqs.len(),
        touched.len()
    );
    assert!(
        !reqs
            .iter()
            .any(|(m, p)| m != "GET" || p.split('?').next().unwrap().contains("/metadata/")),
        "{reqs:?}"
    );
    // Byte-identical to what a GET per run gave.
    assert_eq!(metadata_files(&spool), by_get);
    let (code, so, se) = out(t.cmd_with_spool(&spool).arg("verify"));
    assert_eq!(code, 0, "{so}{se}");
}

#[cfg(feature = "external-it")]
#[test]
fn a_stale_corrupt_or_tampered_pack_line_costs_a_get_never_a_wrong_file() {
    let t = Target::new(Kind::S3);
    let remote = remote_of(&t);
    let keys = store_with_runs(&t, &remote, 12);
    let (_, truth) = pull_fresh(&t, &remote); // heals: every run in its pack
    let (pulled, _) = pull_fresh(&t, &remote);
    assert_eq!((pulled.from_packs, pulled.fetched), (12, 12), "{pulled:?}");
    // Spoil three lines: a wrong ETag, corrupt JSON, a body that is not the object's; and
    // add a line for a run that is not in the store.
    let victims = [&keys[1], &keys[5], &keys[9]];
    for (i, key) in victims.iter().enumerate() {
        let rel = packs::pack_rel(packs::pack_of(key));
        let text = String::from_utf8(remote.get(&rel, 64 << 20).unwrap().unwrap()).unwrap();
        let mut lines: Vec<String> = Vec::new();
        for l in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["key"] != key.as_str() {
                lines.push(l.to_string());
                continue;
            }
            match i {
                0 => v["etag"] = "\"0123456789abcdef0123456789abcdef\"".into(),
                1 => {
                    lines.push(l[..l.len() / 2].to_string());
                    continue;
                }
                _ => v["body"] = "{\"test_id\": \"forged\"}\n".into(),
            }
            lines.push(v.to_string());
        }
        if i == 0 {
            // And lines naming paths outside metadata/: never written anywhere.
            for bad in [
                "metadata/gone.json",
                "../escape.json",
                "metadata/../../escape.json",
                "/tmp/benchkeep-pack-escape.json",
            ] {
                lines.push(
                    serde_json::json!({"key": bad, "etag": "\"e\"", "body": "{}"}).to_string(),
                );
            }
        }
        remote
            .put(&rel, (lines.join("\n") + "\n").into_bytes())
            .unwrap();
    }
    let (pulled, files) = pull_fresh(&t, &remote);
    assert_eq!(files, truth, "every file is the object's own bytes");
    assert_eq!((pulled.from_packs, pulled.fetched), (9, 12), "{pulled:?}");
    // The pull repaired the three lines it had to GET (and dropped the unlisted one).
    assert_eq!(pulled.packed, 3, "{pulled:?}");
    let (pulled, files) = pull_fresh(&t, &remote);
    assert_eq!((pulled.from_packs, pulled.fetched), (12, 12), "{pulled:?}");
    assert_eq!(files, truth);
    let all: Vec<String> = (0..packs::PACKS)
        .flat_map(|n| pack_keys(&remote, n))
        .collect();
    assert!(!all.iter().any(|k| k == "metadata/gone.json"), "{all:?}");
    assert!(!t.dir.path().join("escape.json").exists());
    assert!(!Path::new("/tmp/benchkeep-pack-escape.json").exists());
    assert_eq!(all.len(), 12, "{all:?}");
}

#[cfg(feature = "external-it")]
#[test]
fn two_writers_racing_on_one_pack_both_land_in_it() {
    use std::collections::BTreeSet;
    use std::sync::Barrier;
    let t = Target::new(Kind::S3);
    let remote = remote_of(&t);
    // 2 writers x 5 rounds x 2 runs, all in one pack.
    let target = packs::pack_of("metadata/race-0.json");
    let keys: Vec<String> = (0..)
        .map(|i| format!("metadata/race-{i}.json"))
        .filter(|k| packs::pack_of(k) == target)
        .take(20)
        .collect();
    let barrier = Barrier::new(2);
    let results: Vec<packs::Added> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(10)
            .map(|mine| {
                let (remote, barrier) = (&remote, &barrier);
                s.spawn(move || {
                    let mut total = packs::Added::default();
                    for round in mine.chunks(2) {
                        barrier.wait();
                        let items = round
                            .iter()
                            .map(|k| packs::Item {
                                key: k.clone(),
                                etag: format!("\"{k}\""),
                                body: packs::Body::Bytes(
                                    format!("{{\"k\": \"{k}\"}}\n").into_bytes(),
                                ),
                            })
                            .collect();
                        let a = packs::add(remote, items, &BTreeSet::new(), None);
                        total.lines += a.lines;
                        total.conflicts += a.conflicts;
                        total.gave_up += a.gave_up;
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conflicts: usize = results.iter().map(|a| a.conflicts).sum();
    eprintln!("two writers, 10 rounds: {conflicts} conditional updates refused and retried");
    let gave_up: usize = results.iter().map(|a| a.gave_up).sum();
    let lines: usize = results.iter().map(|a| a.lines).sum();
    assert_eq!((gave_up, lines), (0, 20), "{results:?}");
    let mut got = pack_keys(&remote, target);
    got.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_file_store_writes_no_pack_and_pulls_as_before() {
    let t = Target::new(Kind::File);
    let remote = remote_of(&t);
    assert!(!remote.packs_enabled());
    let keys = store_with_runs(&t, &remote, 5);
    let (pulled, files) = pull_fresh(&t, &remote);
    assert_eq!(
        (pulled.fetched, pulled.from_packs, pulled.packed),
        (5, 0, 0)
    );
    assert_eq!(files.len(), keys.len());
    let root = t.url.trim_start_matches("file://").to_string();
    assert!(
        !all_files(Path::new(&root))
            .iter()
            .any(|p| p.to_string_lossy().contains(packs::DIR)),
        "no pack on file://"
    );
}
