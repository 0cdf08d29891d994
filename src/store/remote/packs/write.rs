//! Writing metadata packs: upserting lines by conditional put (read the pack and its
//! ETag, replace or add the lines, put it back only if the ETag still matches; a new pack
//! by create-if-absent), retried with jitter on a conflict; best effort.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{Head, Line, MAX_PACK_BYTES, note, pack_of, pack_rel, too_large};
use crate::store::remote::{Remote, errors};
use crate::store::{MAX_METADATA_BYTES, nofollow};

/// Conditional updates of one pack before a writer gives up.
pub const TRIES: u32 = 5;
/// Packs rewritten at once by [`add`] (memory: about twice a pack each).
const WRITERS: usize = 4;

impl Remote {
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

enum Put {
    Done,
    Conflict,
    Unsupported,
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
        Body::File(path) => nofollow::read_bounded(path, MAX_METADATA_BYTES).ok()?,
    }
}
