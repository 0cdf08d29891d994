//! Streaming transfers between the object store and the spool: a GET goes chunk by chunk
//! into a temp file next to its target (then the atomic rename of `store::atomic`), and a
//! file goes up in parts, so memory is a few chunks per transfer whatever an object's size
//! (a raw log of GBs, or a hostile object that never ends: each GET has a byte limit).
//!
//! Trade-off: a file above [`PART_BYTES`] costs a multipart upload (a create, one request
//! per part, a complete) instead of one PUT; below it the file is read whole and sent in
//! one request, which bounds memory by the same figure.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, WriteMultipart};

use super::{Remote, errors};
use crate::error::Error;
use crate::store::atomic;

/// Files up to this size go up in one PUT; larger ones in parts of this size.
pub const PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once (memory: this many parts).
const PARTS_IN_FLIGHT: usize = 2;
/// GETs in flight at once.
const GETS_IN_FLIGHT: usize = 16;

/// One object to fetch: its key relative to the store, where it goes, and the most bytes
/// it may have (more is an error naming the object; nothing is written).
pub struct Fetch {
    pub rel: String,
    pub dest: PathBuf,
    pub limit: u64,
}

/// How one fetch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// In place at `dest`, durably; the ETag of the version that was read.
    Written { e_tag: Option<String> },
    /// No such object (gone since the listing).
    Missing,
}

impl Remote {
    /// Fetch each object into its `dest` ([`GETS_IN_FLIGHT`] at a time), streaming: the
    /// bytes go to a temp file next to `dest`, which replaces `dest` only once complete and
    /// synced. The first error is returned (naming its object); temp files of failed
    /// fetches are removed, and fetches that completed stay in place.
    pub fn fetch_many(&self, items: Vec<Fetch>) -> Result<Vec<Fetched>> {
        self.fetch_each(items).into_iter().collect()
    }

    /// [`Remote::fetch_many`], with each fetch's own outcome (one failure does not hide
    /// the others).
    pub fn fetch_each(&self, items: Vec<Fetch>) -> Vec<Result<Fetched>> {
        let store = self.store.clone();
        let jobs: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(i, f)| (i, self.key(&f.rel), f))
            .collect();
        let mut got = self.block(async move {
            futures_util::stream::iter(jobs)
                .map(|(i, key, f)| {
                    let store = store.clone();
                    async move {
                        let res = match store.get(&key).await {
                            Ok(g) => {
                                let e_tag = g.meta.e_tag.clone();
                                stream_to(g.into_stream(), &f)
                                    .await
                                    .map(|()| Fetched::Written { e_tag })
                            }
                            Err(e @ object_store::Error::NotFound { .. })
                                if !errors::no_bucket(&e) =>
                            {
                                Ok(Fetched::Missing)
                            }
                            Err(e) => Err(Failed::Store(e)),
                        };
                        (i, f.rel, res)
                    }
                })
                .buffer_unordered(GETS_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await
        });
        got.sort_by_key(|(i, _, _)| *i);
        got.into_iter()
            .map(|(_, rel, r)| {
                r.map_err(|e| match e {
                    Failed::Store(e) => self.error(e, "read", &rel),
                    Failed::Local(e) => e,
                })
            })
            .collect()
    }

    /// Upload the file at `local` as `rel`: one PUT up to [`PART_BYTES`], else a multipart
    /// upload read [`PART_BYTES`] at a time (aborted on failure). The new ETag.
    pub fn put_file(&self, rel: &str, local: &Path) -> Result<Option<String>> {
        let io =
            |e: std::io::Error| Error::StoreIo(format!("{}: cannot read: {e}", local.display()));
        let mut file = crate::store::nofollow::open_read(local).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            (&mut file)
                .take(PART_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() <= PART_BYTES {
                return self.put(rel, bytes);
            }
            // It grew since the stat: send it in parts from the start.
            file = crate::store::nofollow::open_read(local).map_err(io)?;
        }
        let store = self.store.clone();
        let key = self.key(rel);
        let local_shown = local.display().to_string();
        let res = self.block(async move {
            let upload = store.put_multipart(&key).await.map_err(Failed::Store)?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                // A blocking read of one part on the remote's own runtime: bounded, and the
                // upload of the previous part proceeds meanwhile.
                let n = match read_full(&mut file, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Err(Failed::Local(
                            Error::StoreIo(format!("{local_shown}: cannot read: {e}")).into(),
                        ));
                    }
                };
                if n == 0 {
                    break;
                }
                if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = w.abort().await;
                    return Err(Failed::Store(e));
                }
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(Failed::Store)
        });
        match res {
            Ok(r) => Ok(r.e_tag),
            Err(Failed::Store(e)) => Err(self.error(e, "upload", rel)),
            Err(Failed::Local(e)) => Err(e),
        }
    }
}

enum Failed {
    Store(object_store::Error),
    Local(anyhow::Error),
}

/// Stream `body` into a temp file next to `f.dest`, then rename it over `f.dest`.
async fn stream_to(
    mut body: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    f: &Fetch,
) -> Result<(), Failed> {
    let local = |what: &str, e: std::io::Error| {
        Failed::Local(Error::StoreIo(format!("{}: cannot {what}: {e}", f.dest.display())).into())
    };
    let dir = atomic::dir_of(&f.dest);
    fs::create_dir_all(dir).map_err(|e| local("create its directory", e))?;
    let tmp = atomic::temp_path_for(&f.dest);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| local("create a temp file", e))?;
    let written = async {
        let mut n: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Failed::Store)?;
            n = n.saturating_add(chunk.len() as u64);
            if n > f.limit {
                return Err(Failed::Local(
                    Error::StoreIo(format!(
                        "the store's object {} is larger than {} bytes, the most a {} may be; not fetched (remove or fix that object)",
                        f.rel,
                        f.limit,
                        if f.rel.starts_with("metadata/") {
                            "metadata file"
                        } else {
                            "file of the store"
                        }
                    ))
                    .into(),
                ));
            }
            out.write_all(&chunk).map_err(|e| local("write", e))?;
        }
        out.sync_all().map_err(|e| local("sync", e))
    }
    .await;
    drop(out);
    if let Err(e) =
        written.and_then(|()| atomic::replace_with(&tmp, &f.dest).map_err(|e| local("write", e)))
    {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Read until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
