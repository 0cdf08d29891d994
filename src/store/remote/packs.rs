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
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::{Fetch, Fetched, Remote, errors};
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
/// Conditional updates of one pack before a writer gives up.
pub const TRIES: u32 = 5;
/// A request costs about as much time as this many bytes of transfer: a pack is read for
/// `k` needed objects only when it has at most `k` times this many bytes.
const REQUEST_BYTES: u64 = 1 << 20;
/// Packs rewritten at once by [`add`] (memory: about twice a pack each).
const WRITERS: usize = 4;
/// The longest pack line read: a metadata file escaped as a JSON string (at most twice
/// its size: quotes and newlines take two bytes), plus its key and ETag.
const MAX_LINE_BYTES: usize = 2 * MAX_METADATA_BYTES as usize + (64 << 10);
/// The spool's scratch folder for downloaded packs (hidden: never a store file).
const SCRATCH: &str = ".remote-packs";

/// The pack of a store-relative key (FNV-1a of the key, stable across versions: it is
/// part of the format).
pub fn pack_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % PACKS as u64) as usize
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

    /// Read a small object and its ETag into memory (at most `limit` bytes: more is an
    /// error naming it); `Ok(None)` when there is no such object.
    fn get_tagged(&self, rel: &str, limit: u64) -> Result<Option<(Bytes, Option<String>)>> {
        use futures_util::StreamExt;
        let store = self.store.clone();
        let key = self.key(rel);
        let res = self.block(async move {
            let got = match store.get(&key).await {
                Ok(g) => g,
                Err(e @ object_store::Error::NotFound { .. }) if !errors::no_bucket(&e) => {
                    return Ok(None);
                }
                Err(e) => return Err(Some(e)),
            };
            if got.meta.size > limit {
                return Err(None);
            }
            let e_tag = got.meta.e_tag.clone();
            let mut body = got.into_stream();
            let mut bytes = BytesMut::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Some)?;
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(None);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some((bytes.freeze(), e_tag)))
        });
        res.map_err(|e| match e {
            Some(e) => self.error(e, "read", rel),
            None => too_large(self, rel),
        })
    }

    /// Put `parts` as `rel` under `mode` (create-if-absent or update-if-ETag).
    fn put_if(&self, rel: &str, parts: Vec<Bytes>, mode: PutMode) -> Result<Put> {
        let store = self.store.clone();
        let key = self.key(rel);
        let res = self.block(async move {
            let payload: PutPayload = parts.into_iter().collect();
            store.put_opts(&key, payload, PutOptions::from(mode)).await
        });
        match res {
            Ok(_) => Ok(Put::Done),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(Put::Conflict),
            Err(object_store::Error::NotImplemented { .. }) => Ok(Put::Unsupported),
            Err(e) => Err(self.error(e, "update", rel)),
        }
    }
}

fn too_large(remote: &Remote, rel: &str) -> anyhow::Error {
    Error::StoreIo(format!(
        "{}: the pack {rel} is larger than {MAX_PACK_BYTES} bytes; not read (its runs are fetched one by one; remove it and it is rebuilt)",
        remote.shown()
    ))
    .into()
}

enum Put {
    Done,
    Conflict,
    Unsupported,
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
        if line.etag != etag || line.body.len() as u64 != size {
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
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let root = fs::File::open(spool.root()).map_err(|e| store_io(spool.root(), "open", e))?;
        // SAFETY: syncfs takes any open descriptor of the file system; `root` outlives it.
        if unsafe { libc::syncfs(root.as_raw_fd()) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(store_io(spool.root(), "sync", e));
        }
    }
    #[cfg(not(target_os = "linux"))]
    for s in staged {
        fs::File::open(&s.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| store_io(&s.tmp, "sync", e))?;
    }
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

/// A metadata object's bytes, for its pack line.
pub enum Body {
    Bytes(Vec<u8>),
    /// A spool file, exactly the version the ETag names (read under the sync lock).
    File(PathBuf),
}

/// One metadata object to add to its pack.
pub struct Item {
    pub key: String,
    pub etag: String,
    pub body: Body,
}

/// What [`add`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Lines written (new or replaced).
    pub lines: usize,
    /// Packs rewritten.
    pub packs: usize,
    /// Conditional updates refused because another writer got there first (retried).
    pub conflicts: usize,
    /// Packs not updated (conflicts past [`TRIES`], too large, or an error).
    pub gave_up: usize,
}

/// Upsert `entries` into their packs, and rewrite the packs in `prune`; with `live` (every
/// listed metadata key), lines of objects not in it are dropped from each rewritten pack.
/// Best effort: nothing here fails the command; what could not be done is one note on
/// stderr (a missing line costs one GET later).
pub fn add(
    remote: &Remote,
    entries: Vec<Item>,
    prune: &BTreeSet<usize>,
    live: Option<&HashSet<String>>,
) -> Added {
    if !remote.packs_enabled() {
        return Added::default();
    }
    let mut work: HashMap<usize, Vec<Item>> = HashMap::new();
    for e in entries {
        if e.key.starts_with("metadata/") {
            work.entry(pack_of(&e.key)).or_default().push(e);
        }
    }
    if live.is_some() {
        for &p in prune {
            work.entry(p).or_default();
        }
    }
    let queue = std::sync::Mutex::new(work.into_iter().collect::<Vec<_>>());
    let total = std::sync::Mutex::new((Added::default(), None::<String>));
    std::thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| {
                loop {
                    let Some((p, entries)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    let mut done = Added::default();
                    let why = match upsert(remote, p, entries, live, &mut done) {
                        Ok(why) => why,
                        Err(e) => Some(format!("{e:#}")),
                    };
                    if why.is_some() {
                        done.gave_up += 1;
                    }
                    if let Ok(mut t) = total.lock() {
                        t.0.lines += done.lines;
                        t.0.packs += done.packs;
                        t.0.conflicts += done.conflicts;
                        t.0.gave_up += done.gave_up;
                        if t.1.is_none() {
                            t.1 = why;
                        }
                    }
                }
            });
        }
    });
    let (added, why) = total.into_inner().unwrap_or_default();
    if let Some(why) = why {
        note(remote, &why);
    }
    added
}

/// Upsert one pack (see [`add`]); `Some(why)` when it was not updated.
fn upsert(
    remote: &Remote,
    p: usize,
    entries: Vec<Item>,
    live: Option<&HashSet<String>>,
    done: &mut Added,
) -> Result<Option<String>> {
    let rel = pack_rel(p);
    // The new lines, by key (a key given twice: the last one).
    let mut new: HashMap<String, Bytes> = HashMap::new();
    let mut new_bytes = 0u64;
    for e in entries {
        let Some(body) = load(&e.body) else { continue };
        let Ok(body) = String::from_utf8(body) else {
            continue; // not UTF-8: no JSON metadata; left to a GET
        };
        let mut line = serde_json::to_vec(&Line {
            key: Cow::Borrowed(&e.key),
            etag: Cow::Borrowed(&e.etag),
            body: Cow::Owned(body),
        })?;
        line.push(b'\n');
        new_bytes += line.len() as u64;
        if new_bytes > MAX_PACK_BYTES {
            return Ok(Some(format!("{:#}", too_large(remote, &rel))));
        }
        new.insert(e.key, Bytes::from(line));
    }
    for attempt in 0..TRIES {
        if attempt > 0 {
            let ms = 20u64 << attempt.min(5);
            std::thread::sleep(Duration::from_millis(ms + rand::random::<u64>() % ms));
        }
        let (old, mode) = match remote.get_tagged(&rel, MAX_PACK_BYTES)? {
            None => (Bytes::new(), PutMode::Create),
            Some((old, Some(e_tag))) => (
                old,
                PutMode::Update(UpdateVersion {
                    e_tag: Some(e_tag),
                    version: None,
                }),
            ),
            Some((_, None)) => return Ok(Some(format!("{rel} has no ETag; not updated"))),
        };
        let mut parts: Vec<Bytes> = Vec::new();
        let mut size = 0u64;
        let mut kept: HashSet<String> = HashSet::new();
        let mut changed = false;
        let mut start = 0;
        while start < old.len() {
            let end = memchr::memchr(b'\n', &old[start..]).map_or(old.len(), |i| start + i);
            let line = old.slice(start..end);
            start = end + 1;
            let keep = match serde_json::from_slice::<Head>(&line) {
                Ok(h) if pack_of(&h.key) != p => None,
                Ok(h) if live.is_some_and(|l| !l.contains(h.key.as_ref())) => None,
                Ok(h) => match new.get(h.key.as_ref()) {
                    // Exactly the line we would write: keep it (once).
                    Some(n) if n[..n.len() - 1] == line[..] && kept.insert(h.key.to_string()) => {
                        Some(line)
                    }
                    Some(_) => None,
                    None => Some(line),
                },
                Err(_) => None,
            };
            match keep {
                Some(line) => {
                    size += line.len() as u64 + 1;
                    parts.push(line);
                    parts.push(Bytes::from_static(b"\n"));
                }
                None => changed = true,
            }
        }
        let mut lines = 0;
        for (key, line) in &new {
            if !kept.contains(key) {
                size += line.len() as u64;
                parts.push(line.clone());
                lines += 1;
                changed = true;
            }
        }
        if !changed {
            return Ok(None);
        }
        if size > MAX_PACK_BYTES {
            return Ok(Some(format!("{:#}", too_large(remote, &rel))));
        }
        match remote.put_if(&rel, parts, mode)? {
            Put::Done => {
                done.lines += lines;
                done.packs += 1;
                return Ok(None);
            }
            Put::Conflict => done.conflicts += 1,
            Put::Unsupported => {
                return Ok(Some(format!(
                    "this backend cannot update {rel} conditionally"
                )));
            }
        }
    }
    Ok(Some(format!(
        "{rel} kept changing under {TRIES} tries (other writers); not updated"
    )))
}

/// The bytes of a body (`None`: unreadable or past the metadata limit).
fn load(body: &Body) -> Option<Vec<u8>> {
    match body {
        Body::Bytes(b) => (b.len() as u64 <= MAX_METADATA_BYTES).then(|| b.clone()),
        Body::File(path) => {
            let mut bytes = Vec::new();
            nofollow::open_read(path)
                .ok()?
                .take(MAX_METADATA_BYTES + 1)
                .read_to_end(&mut bytes)
                .ok()?;
            (bytes.len() as u64 <= MAX_METADATA_BYTES).then_some(bytes)
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
