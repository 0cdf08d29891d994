//! Metadata packs: a cache in the object store that lets a fresh spool get `metadata/` in
//! about [`PACKS`] requests instead of one GET per run. Correctness never depends on it.
//!
//! `analysis/packs/pack-NN.jsonl` (NN = [`pack_of`] the object's key) holds one line per
//! metadata object: `{"key":"metadata/<id>.json","etag":"<its ETag>","body":"<its exact
//! bytes, as a JSON string>"}`. A pull ([`serve`]) reads only the packs that hold objects it
//! needs, and uses a line only when its key, ETag and length equal the LIST's: a stale,
//! corrupt or tampered line costs a GET, never a wrong file (a writer that could forge a
//! line with the right ETag and length could as well overwrite the object itself).
//!
//! Writers ([`add`]) upsert lines with a conditional put: read the pack and its ETag,
//! replace or insert the lines, put it back only if the ETag still matches (a new pack:
//! create-if-absent); on a conflict re-read and retry ([`TRIES`] times, with jitter), then
//! give up with a note (a missing line only costs a GET later). A producer adds its run's
//! final metadata; a pull that had to GET objects a pack lacked adds them, and drops the
//! lines of objects that are no longer listed. Backends without conditional updates
//! (`file://`: `object_store`'s local file system refuses them) use no packs at all.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Fetch, Fetched, Remote};
use crate::error::Error;
use crate::store::{MAX_METADATA_BYTES, Store, atomic, nofollow, store_io};

/// How many packs the metadata objects are spread over.
pub const PACKS: usize = 64;
/// Where the packs live, relative to the store.
pub const DIR: &str = "analysis/packs";
/// The most bytes a pack may have: a reader streams it to a temp file and reads it a line
/// at a time; a writer holds one in memory while it rewrites it, and stops adding to a
/// pack that would grow past this (those runs then cost a GET each).
pub const MAX_PACK_BYTES: u64 = 64 << 20;
/// A request costs about as much time as this many bytes of transfer: a pack is read for
/// `k` needed objects only when it has at most `k` times this many bytes.
const REQUEST_BYTES: u64 = 1 << 20;
/// The longest pack line read: a metadata file escaped as a JSON string (at most twice
/// its size: quotes and newlines take two bytes), plus its key and ETag.
const MAX_LINE_BYTES: usize = 2 * MAX_METADATA_BYTES as usize + (64 << 10);
/// The spool's scratch folder for downloaded packs (hidden: never a store file).
const SCRATCH: &str = ".remote-packs";

mod write;
pub use write::{Added, Body, Item, TRIES, add};

/// The pack of a store-relative key (FNV-1a of the key, stable across versions: it is
/// part of the format).
pub fn pack_of(key: &str) -> usize {
    (crate::digest::fnv1a(key.as_bytes()) % PACKS as u64) as usize
}

/// The store-relative path of pack `n`.
pub fn pack_rel(n: usize) -> String {
    format!("{DIR}/pack-{n:02}.jsonl")
}

/// The pack number of a store-relative path (`None`: not a pack).
fn pack_number(rel: &str) -> Option<usize> {
    let n: usize = rel
        .strip_prefix(DIR)?
        .strip_prefix("/pack-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()?;
    (n < PACKS && pack_rel(n) == rel).then_some(n)
}

/// One line of a pack.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    etag: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
}

/// A line's key (the rest skipped unparsed).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
}

/// What the packs gave a pull.
#[derive(Debug, Default)]
pub struct Served {
    /// Objects written into the spool from packs, with their ETag (the LIST's).
    pub written: Vec<(String, Option<String>)>,
    /// Packs read.
    pub packs_read: usize,
    /// Pack lines not used: corrupt, too long, stale (another ETag or length), misplaced.
    pub ignored: usize,
    /// Needed objects whose pack lacks a usable line (or does not exist): worth adding
    /// to it once they are fetched one by one.
    pub missing: HashSet<String>,
    /// Packs that hold lines of objects no longer listed: worth rewriting without them.
    pub prune: BTreeSet<usize>,
}

impl Remote {
    /// Whether this backend can update an object conditionally (by ETag), which packs
    /// need: not `file://` (`object_store`'s local file system refuses it; a local
    /// directory is cheap to read object by object anyway).
    pub fn packs_enabled(&self) -> bool {
        !self.shown.to_ascii_lowercase().starts_with("file:")
    }
}

fn too_large(remote: &Remote, rel: &str) -> anyhow::Error {
    Error::StoreIo(format!(
        "{}: the pack {rel} is larger than {MAX_PACK_BYTES} bytes; not read (its runs are fetched one by one; remove it and it is rebuilt)",
        remote.shown()
    ))
    .into()
}

/// Before a pull GETs objects one by one: write into the spool those of `wanted`
/// (store-relative key, size and ETag from the LIST) that a pack holds, exactly as a GET
/// would (a temp file, synced, renamed into place). `live` is every listed metadata key.
/// Only a local write failure is an error; a pack that cannot be read is a note, and its
/// objects are fetched one by one.
pub fn serve(
    remote: &Remote,
    spool: &Store,
    wanted: &[(String, u64, Option<String>)],
    live: &HashSet<String>,
) -> Result<Served> {
    let mut served = Served::default();
    if !remote.packs_enabled() {
        return Ok(served);
    }
    // Only metadata objects with an ETag, within the metadata limit.
    let mut need: HashMap<&str, (u64, &str)> = HashMap::new();
    let mut by_pack: HashMap<usize, Vec<&str>> = HashMap::new();
    for (rel, size, etag) in wanted {
        if let Some(etag) = etag
            && rel.starts_with("metadata/")
            && *size <= MAX_METADATA_BYTES
        {
            need.insert(rel, (*size, etag));
            by_pack.entry(pack_of(rel)).or_default().push(rel);
        }
    }
    if need.is_empty() {
        return Ok(served);
    }
    let listing = match remote.list(DIR) {
        Ok(l) => l,
        Err(e) => {
            note(remote, &format!("{e:#}"));
            return Ok(served);
        }
    };
    let sizes: HashMap<usize, u64> = listing
        .iter()
        .filter_map(|(rel, size, _)| Some((pack_number(rel)?, *size)))
        .collect();
    let mut read = Vec::new();
    let mut packs: Vec<_> = by_pack.iter().collect();
    packs.sort();
    for (&p, keys) in packs {
        match sizes.get(&p) {
            None => served.missing.extend(keys.iter().map(|k| k.to_string())),
            Some(&size) if size > MAX_PACK_BYTES => {
                note(remote, &format!("{:#}", too_large(remote, &pack_rel(p))));
            }
            // Cheaper to GET the few objects than to read the whole pack; whether it
            // holds them is unknown, so they are not added to it afterwards either.
            Some(&size) if size > keys.len() as u64 * REQUEST_BYTES => {}
            Some(_) => read.push(p),
        }
    }
    if read.is_empty() {
        return Ok(served);
    }
    let scratch = spool.root().join(SCRATCH);
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| store_io(&scratch, "create", e))?;
    let fetches = read
        .iter()
        .map(|&p| Fetch {
            rel: pack_rel(p),
            dest: scratch.join(format!("pack-{p:02}.jsonl")),
            limit: MAX_PACK_BYTES,
        })
        .collect();
    let got = remote.fetch_each(fetches);
    let mut result = Ok(());
    let mut staged = Vec::new();
    for (&p, got) in read.iter().zip(got) {
        let path = scratch.join(format!("pack-{p:02}.jsonl"));
        match got {
            Ok(Fetched::Written { .. }) => {
                served.packs_read += 1;
                let read = read_pack(&path, p, spool, &mut need, live, &mut served, &mut staged);
                if let Err(e) = read {
                    result = Err(e);
                    break;
                }
            }
            Ok(Fetched::Missing) => {}
            Err(e) => note(remote, &format!("{e:#}")),
        }
        let _ = fs::remove_file(&path);
        // What this pack should have held and did not: added after the GETs.
        for k in &by_pack[&p] {
            if need.contains_key(k) {
                served.missing.insert(k.to_string());
            }
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    let result = result.and_then(|()| publish(spool, &staged, &mut served));
    for s in &staged {
        let _ = fs::remove_file(&s.tmp); // only those not renamed (after an error)
    }
    result.map(|()| served)
}

/// Use the lines of one downloaded pack, a line at a time: each usable one is staged
/// (written to a temp file next to its target).
fn read_pack(
    path: &std::path::Path,
    p: usize,
    spool: &Store,
    need: &mut HashMap<&str, (u64, &str)>,
    live: &HashSet<String>,
    served: &mut Served,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    let file = nofollow::open_read(path).map_err(|e| store_io(path, "read", e))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    while let Some(whole) =
        next_line(&mut r, &mut buf, MAX_LINE_BYTES).map_err(|e| store_io(path, "read", e))?
    {
        if !whole {
            served.ignored += 1;
            continue;
        }
        if buf.is_empty() {
            continue;
        }
        let Ok(line) = serde_json::from_slice::<Line>(&buf) else {
            served.ignored += 1;
            continue;
        };
        if pack_of(&line.key) != p || !live.contains(line.key.as_ref()) {
            served.ignored += 1;
            served.prune.insert(p);
            continue;
        }
        let Some(&(size, etag)) = need.get(line.key.as_ref()) else {
            continue;
        };
        if !super::same_etag(&line.etag, etag) || line.body.len() as u64 != size {
            served.ignored += 1;
            continue;
        }
        let key = line.key.to_string();
        let dest = spool.resolve(&key);
        let tmp = atomic::temp_path_for(&dest);
        staged.push(Staged {
            tmp: tmp.clone(),
            dest,
            key: key.clone(),
            etag: etag.to_string(),
        });
        fs::create_dir_all(atomic::dir_of(&tmp))
            .and_then(|()| {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                f.write_all(line.body.as_bytes())
            })
            .map_err(|e| store_io(&tmp, "write", e))?;
        need.remove(key.as_str());
    }
    Ok(())
}

/// A file from a pack, written to its temp file (not yet synced or named).
struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    key: String,
    etag: String,
}

/// Give the staged files their names, durably: one sync of the file system for all the
/// temps (on Linux `syncfs`, elsewhere `sync_all` of each), then each rename, then one
/// sync of each folder they went to. Thousands of files cost one sync instead of two
/// each; each file still appears whole or not at all (a crash leaves temp files, which
/// `verify` reports and `recover` removes, as after a GET cut short).
fn publish(spool: &Store, staged: &[Staged], served: &mut Served) -> Result<()> {
    crate::store::batch::sync_temps(spool.root(), staged.iter().map(|s| s.tmp.as_path()))?;
    let mut dirs = BTreeSet::new();
    for s in staged {
        fs::rename(&s.tmp, &s.dest).map_err(|e| store_io(&s.dest, "write", e))?;
        dirs.insert(atomic::dir_of(&s.dest).to_path_buf());
        served.written.push((s.key.clone(), Some(s.etag.clone())));
    }
    for d in dirs {
        atomic::sync_dir(&d).map_err(|e| store_io(&d, "sync", e))?;
    }
    Ok(())
}

/// The next line of `r` (without its newline) into `buf`: `Some(true)`, or `Some(false)`
/// for a line longer than `cap` (skipped without being kept; `buf` is empty); `None` at
/// the end.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let (mut any, mut long) = (false, false);
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(!long));
        }
        any = true;
        let (take, end) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !long {
            if buf.len() + take > cap {
                long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(if end { take + 1 } else { take });
        if end {
            return Ok(Some(!long));
        }
    }
}

/// One line on stderr about the packs (redacted: every text here comes from
/// [`Remote::error`] or names only store-relative objects).
fn note(remote: &Remote, why: &str) {
    eprintln!(
        "note: the metadata packs of {} were not used or updated fully ({why}); runs they lack are fetched one by one",
        remote.shown()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names_round_trip_and_keys_spread() {
        for n in 0..PACKS {
            assert_eq!(pack_number(&pack_rel(n)), Some(n));
        }
        assert_eq!(pack_number("analysis/packs/pack-64.jsonl"), None);
        assert_eq!(pack_number("analysis/packs/pack-7.jsonl"), None);
        assert_eq!(pack_number("analysis/packs/other.jsonl"), None);
        // The hash is part of the format: a fixed key always lands in the same pack.
        assert_eq!(pack_of("metadata/a.json"), pack_of("metadata/a.json"));
        let used: HashSet<usize> = (0..1000)
            .map(|i| pack_of(&format!("metadata/run-{i}.json")))
            .collect();
        assert_eq!(used.len(), PACKS);
    }

    #[test]
    fn long_lines_are_skipped_whole() {
        let text = b"short\nxxxxxxxxxxxxxxxxxxxx\nok\nlast";
        let mut r = BufReader::with_capacity(4, &text[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(whole) = next_line(&mut r, &mut buf, 8).unwrap() {
            got.push((whole, String::from_utf8(buf.clone()).unwrap()));
        }
        assert_eq!(
            got,
            vec![
                (true, "short".to_string()),
                (false, String::new()),
                (true, "ok".to_string()),
                (true, "last".to_string()),
            ]
        );
    }

    #[test]
    fn a_body_keeps_its_exact_bytes() {
        let body = "{\n  \"test_id\": \"a\",\n  \"x\": \"tab\\there \\\"q\\\" é\"\n}\n";
        let line = serde_json::to_vec(&Line {
            key: "metadata/a.json".into(),
            etag: "\"e\"".into(),
            body: body.into(),
        })
        .unwrap();
        assert!(!line.contains(&b'\n'));
        let back: Line = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.body.as_bytes(), body.as_bytes());
    }
}
