//! The raw log writer (RELIABILITY P1): finished requests arrive through a bounded channel
//! and are appended to `raw/<test_id>.jsonl` by one dedicated thread, so file I/O never
//! stalls the request tasks.
//!
//! Each record is one complete JSON line; `seq` is assigned here, in file order (1 = first
//! line), so it is strictly increasing by construction, and `record_version` is set here to
//! this build's [`RECORD_VERSION`]. Records already queued are joined into one `write` of
//! complete lines; the file is `sync_data`ed at least every second and every 256 records,
//! and at the end. A write or sync error stops the writer (no retry of a failed fsync) and
//! is reported; the file is cut back to its last complete line, and the records counted are
//! exactly those in it.
//! The aggregator lives here too, so statistics are computed off the request path.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::metrics::Aggregator;
use crate::schema::{MAX_RAW_LINE_BYTES, RECORD_VERSION, RequestRecord};
use crate::store::store_io;

/// Sync at least this often while records arrive.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// ... and after this many records.
const SYNC_RECORDS: u64 = 256;
/// Largest single write.
const BATCH_BYTES: usize = 1 << 20;
/// Records waiting in the channel before senders wait.
pub const QUEUE: usize = 8192;

/// Live counters for the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub output_tokens: AtomicU64,
    /// Set when writing failed: the run must stop.
    pub failed: AtomicBool,
}

/// What the writer did, returned when its channel closes.
pub struct Written {
    pub aggregator: Aggregator,
    pub records: u64,
    pub bytes: u64,
    pub sha256: String,
    /// The first write or sync error; nothing was written after it.
    pub error: Option<anyhow::Error>,
}

/// A running writer thread.
pub struct Writer {
    pub tx: mpsc::Sender<RequestRecord>,
    pub counters: Arc<Counters>,
    thread: std::thread::JoinHandle<Written>,
}

impl Writer {
    /// Start writing to `file` (already created, empty, opened for append).
    pub fn start(
        file: File,
        path: PathBuf,
        aggregator: Aggregator,
        on_error: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let handle = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name("benchkeep-raw-log".into())
            .spawn(move || write_loop(handle, rx, file, path, aggregator, c, on_error))?;
        Ok(Writer {
            tx,
            counters,
            thread,
        })
    }

    /// Wait for the writer to drain and close (every sender must be dropped first).
    pub async fn finish(self) -> Written {
        drop(self.tx);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joining the writer thread")
            .expect("the raw log writer panicked")
    }
}

struct State {
    file: File,
    path: PathBuf,
    aggregator: Aggregator,
    counters: Arc<Counters>,
    hasher: crate::digest::Hasher,
    next_seq: u64,
    bytes: u64,
    unsynced: u64,
    last_sync: Instant,
    error: Option<anyhow::Error>,
}

impl State {
    fn write_batch(&mut self, batch: &mut Vec<RequestRecord>, buf: &mut Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        if self.error.is_some() {
            batch.clear();
            return;
        }
        buf.clear();
        for r in batch.iter_mut() {
            // Every line is in this build's format, whoever built the record.
            r.record_version = RECORD_VERSION;
            r.seq = self.next_seq;
            self.next_seq += 1;
            let start = buf.len();
            serde_json::to_writer(&mut *buf, &*r).expect("records serialize");
            buf.push(b'\n');
            // At most MAX_RAW_LINE_BYTES: every line re-reads (RELIABILITY P13).
            if buf.len() - start > MAX_RAW_LINE_BYTES {
                buf.truncate(start);
                buf.extend_from_slice(&r.fit());
            }
        }
        if let Err(e) = self.file.write_all(buf) {
            // A write cut short (disk full, file size limit) may have left part of a line:
            // cut the file back to the last complete record, which needs no space.
            let _ = self.file.set_len(self.bytes);
            self.error = Some(store_io(&self.path, "append to", e));
            batch.clear();
            return;
        }
        self.hasher.update(&buf[..]);
        self.bytes += buf.len() as u64;
        self.unsynced += batch.len() as u64;
        for r in batch.drain(..) {
            self.aggregator.push(&r);
            self.counters.done.fetch_add(1, Relaxed);
            if r.ok {
                self.counters
                    .output_tokens
                    .fetch_add(r.completion_tokens.unwrap_or(0), Relaxed);
            } else {
                self.counters.errors.fetch_add(1, Relaxed);
            }
        }
        if self.unsynced >= SYNC_RECORDS || self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync();
        }
    }

    fn sync(&mut self) {
        if self.unsynced == 0 || self.error.is_some() {
            return;
        }
        if let Err(e) = self.file.sync_data() {
            self.error = Some(store_io(&self.path, "sync", e));
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
    }
}

fn write_loop(
    rt: tokio::runtime::Handle,
    mut rx: mpsc::Receiver<RequestRecord>,
    file: File,
    path: PathBuf,
    aggregator: Aggregator,
    counters: Arc<Counters>,
    on_error: impl FnOnce(),
) -> Written {
    let mut st = State {
        file,
        path,
        aggregator,
        counters,
        hasher: crate::digest::Hasher::new(),
        next_seq: 1,
        bytes: 0,
        unsynced: 0,
        last_sync: Instant::now(),
        error: None,
    };
    let mut on_error = Some(on_error);
    let mut batch: Vec<RequestRecord> = Vec::with_capacity(256);
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        let first = rt.block_on(async { tokio::time::timeout(SYNC_EVERY, rx.recv()).await });
        match first {
            Err(_) => {
                st.sync();
                continue;
            }
            Ok(None) => break,
            Ok(Some(r)) => batch.push(r),
        }
        let mut approx = 0usize;
        while approx < BATCH_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    approx += 256 + r.itl_ms.len() * 8 + r.text.as_ref().map_or(0, String::len);
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        st.write_batch(&mut batch, &mut buf);
        if st.error.is_some()
            && let Some(f) = on_error.take()
        {
            st.counters.failed.store(true, Relaxed);
            f();
        }
    }
    st.sync();
    if st.error.is_some()
        && let Some(f) = on_error.take()
    {
        st.counters.failed.store(true, Relaxed);
        f();
    }
    Written {
        records: st.next_seq - 1,
        bytes: st.bytes,
        sha256: st.hasher.hex(),
        aggregator: st.aggregator,
        error: st.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ErrorKind;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_complete_lines_with_increasing_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let w = Writer::start(file, path.clone(), Aggregator::new(), || {}).unwrap();
        for i in 0..1000u64 {
            let r = if i % 10 == 0 {
                RequestRecord::failed(0, ErrorKind::Timeout, "slow")
            } else {
                RequestRecord {
                    ok: true,
                    completion_tokens: Some(2),
                    ..Default::default()
                }
            };
            w.tx.send(r).await.unwrap();
        }
        let counters = w.counters.clone();
        let out = w.finish().await;
        assert!(out.error.is_none());
        assert_eq!(out.records, 1000);
        assert_eq!(counters.errors.load(Relaxed), 100);
        assert_eq!(counters.output_tokens.load(Relaxed), 1800);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len() as u64, out.bytes);
        let (sha, _) = crate::digest::sha256_file(&path).unwrap();
        assert_eq!(sha, out.sha256);
        for (i, line) in text.lines().enumerate() {
            assert!(line.starts_with(r#"{"record_version":1,"seq":"#), "{line}");
            let r: RequestRecord = serde_json::from_str(line).unwrap();
            assert_eq!(r.seq, i as u64 + 1);
        }
        assert_eq!(out.aggregator.count(), 1000);
    }
}
