//! Uploading a live run's raw log in parts: object storage has no append, so while `run`
//! or `record` writes its log to the spool, the finished lines are sent every few seconds
//! as `raw/<id>.jsonl.parts/000001`, `000002`, ... A machine lost mid-run leaves its
//! finished requests in the bucket; the whole log replaces the parts at the end.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Remote, RemoteReserver};
use crate::store::{Store, nofollow};

/// The most a part carries (a fast run sends several parts per round).
const MAX_PART: u64 = 8 << 20;

/// A background thread sending the finished lines of this process's runs.
pub struct PartUploader {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// How far each run's log was sent: bytes, and the number of the last part.
type Progress = HashMap<String, (u64, u32)>;

impl PartUploader {
    /// Start sending, every `every`, the new complete lines of each run `ids` reserved.
    pub fn start(
        remote: Arc<Remote>,
        spool: Store,
        ids: Arc<RemoteReserver>,
        every: Duration,
    ) -> PartUploader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("benchkeep-parts".into())
            .spawn(move || {
                let mut progress = Progress::new();
                let mut warned = false;
                loop {
                    let start = Instant::now();
                    while start.elapsed() < every {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    for id in ids.taken() {
                        if let Err(e) = send_new_lines(&remote, &spool, &id, &mut progress)
                            && !warned
                        {
                            warned = true;
                            eprintln!(
                                "warning: uploading the live log in parts failed ({e:#}); the run goes on, the spool keeps everything"
                            );
                        }
                    }
                }
            })
            .ok();
        PartUploader { stop, handle }
    }

    /// Stop sending (the final upload sends the whole log).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Send what `raw/<id>.jsonl` gained since the last part, cut after its last newline.
fn send_new_lines(
    remote: &Remote,
    spool: &Store,
    id: &str,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let path = spool.raw_dir().join(format!("{id}.jsonl"));
    let Ok(mut file) = nofollow::open_read(&path) else {
        return Ok(());
    };
    let (mut sent, mut part) = progress.get(id).copied().unwrap_or((0, 0));
    loop {
        file.seek(SeekFrom::Start(sent))?;
        let mut buf = Vec::new();
        (&mut file).take(MAX_PART).read_to_end(&mut buf)?;
        let Some(end) = memchr::memrchr(b'\n', &buf) else {
            break;
        };
        buf.truncate(end + 1);
        part += 1;
        remote.put(&format!("raw/{id}.jsonl.parts/{part:06}"), buf)?;
        sent += (end + 1) as u64;
        progress.insert(id.to_string(), (sent, part));
    }
    Ok(())
}
