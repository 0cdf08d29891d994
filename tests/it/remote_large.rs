//! Large and hostile objects in a store at a URL: a raw log above the part size goes up in
//! parts and comes back byte for byte (`verify` on a fresh spool hashes it), and a
//! metadata object larger than the metadata limit is refused with exit 4, naming it, with
//! nothing of it left in the spool. Runs on `file://` and, with `--features external-it`,
//! on moto.

use std::io::Write;
use std::time::Duration;

use crate::support::api::store::{Remote, RemoteConfig};
use crate::support::moto::{Kind, Target, kinds};
use crate::support::store::all_files;
use crate::support::{fixture, out};

fn remote_of(t: &Target) -> Remote {
    Remote::open(&RemoteConfig {
        url: t.url.clone(),
        options: t.options(),
        timeout: Duration::from_secs(30),
        retries: 1,
    })
    .unwrap()
}

#[test]
fn a_raw_log_larger_than_a_part_round_trips_byte_for_byte() {
    let lines = std::fs::read_to_string(fixture("foundation/chat_ok_and_error.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.jsonl");
    let mut f = std::fs::File::create(&big).unwrap();
    // ~20 MB: three 8 MiB parts, the last one partial.
    while f.metadata().unwrap().len() < 20 << 20 {
        f.write_all(lines.as_bytes()).unwrap();
    }
    drop(f);
    let size = std::fs::metadata(&big).unwrap().len();
    for kind in kinds() {
        if kind == Kind::Dir {
            continue;
        }
        let t = Target::new(kind);
        let (code, so, se) = out(t
            .cmd("analyze")
            .args(["--platform", "vllm", "--model", "m", "--total-time", "10"])
            .arg("--input")
            .arg(&big));
        assert_eq!(code, 0, "{kind:?}: {so}{se}");
        // Another machine: a spool never used before pulls raw/ and hashes every log.
        let fresh = t.fresh_spool();
        let (code, so, se) = out(t.cmd_with_spool(&fresh).arg("verify"));
        assert_eq!(code, 0, "{kind:?}: {so}{se}");
        let raw: Vec<_> = all_files(&fresh.join("raw"))
            .into_iter()
            .filter(|p| std::fs::metadata(p).unwrap().len() == size)
            .collect();
        assert_eq!(raw.len(), 1, "{kind:?}: the whole log came back");
        assert_eq!(
            std::fs::read(&raw[0]).unwrap(),
            std::fs::read(&big).unwrap(),
            "{kind:?}"
        );
    }
}

#[test]
fn a_metadata_object_over_the_limit_is_refused_and_nothing_of_it_is_kept() {
    for kind in kinds() {
        if kind == Kind::Dir {
            continue;
        }
        let t = Target::new(kind);
        let remote = remote_of(&t);
        // 17 MiB of one JSON string: over the 16 MiB metadata limit.
        let mut huge = b"{\"x\":\"".to_vec();
        huge.resize(17 << 20, b'a');
        huge.extend_from_slice(b"\"}");
        remote.put("metadata/huge-1.json", huge).unwrap();
        let fresh = t.fresh_spool();
        let (code, so, se) = out(t.cmd_with_spool(&fresh).arg("query"));
        assert_eq!(code, 4, "{kind:?}: {so}{se}");
        assert!(
            se.contains("metadata/huge-1.json") && se.contains("larger than"),
            "{kind:?}: {se}"
        );
        let left: Vec<_> = all_files(&fresh)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("huge-1"))
            .collect();
        assert!(left.is_empty(), "{kind:?}: {left:?}");
    }
}
