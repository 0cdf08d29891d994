//! Recovering a `benchkeep run` that was cut off (kill -9, power loss, OOM) from
//! its raw log, without losing a finished request (RELIABILITY P2, P4).
//!
//! The raw log is read line by line. A good line ends in `\n`, parses as a
//! [`RequestRecord`], and has a `seq` greater than the previous good line's. What follows
//! the last good line (a torn write) is the *tail*: it is copied aside to
//! `raw/<id>.jsonl.torn-<offset>` (synced, never deleted), then the raw file is truncated to
//! the good prefix. A bad line with good lines after it is corruption in the middle: it is
//! reported and left in place (nothing is cut), and counted in `unparseable_lines`.
//! The metadata then gets the statistics of the good lines and status `interrupted`.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, json};

use super::Recovered;
use crate::metrics::steady::SteadySpec;
use crate::metrics::{Aggregator, Slo};
use crate::schema::{Metadata, RequestRecord};
use crate::store::{Store, atomic, nofollow, store_io};

/// A line that is not a good record.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
    pub reason: String,
}

/// What a scan of a raw log found.
#[derive(Debug)]
pub struct RawScan {
    pub aggregator: Aggregator,
    /// Good lines.
    pub records: u64,
    /// End of the last good line: the file is truncated here when it has a bad tail.
    pub good_end: u64,
    pub file_len: u64,
    /// Bad lines followed by good ones (corruption: reported, kept).
    pub corrupt: Vec<BadLine>,
    /// Bad lines after the last good one (the torn tail).
    pub tail: Vec<BadLine>,
}

/// Read a raw log and aggregate its good lines into `aggregator`. A missing file reads as
/// empty.
pub fn scan_raw(path: &Path, aggregator: Aggregator) -> io::Result<RawScan> {
    let mut scan = RawScan {
        aggregator,
        records: 0,
        good_end: 0,
        file_len: 0,
        corrupt: Vec::new(),
        tail: Vec::new(),
    };
    // Never follow a symlink or block on a FIFO left in place of the log (P11).
    let file = match nofollow::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let (mut offset, mut line_no) = (0u64, 0u64);
    let mut last_seq: Option<u64> = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let verdict = if line.last() != Some(&b'\n') {
            Err("no newline at the end (a torn write)".to_string())
        } else {
            match serde_json::from_slice::<RequestRecord>(&line) {
                Err(e) => Err(format!("not a benchkeep record ({e})")),
                Ok(r) if last_seq.is_some_and(|s| r.seq <= s) => Err(format!(
                    "seq {} does not follow {}",
                    r.seq,
                    last_seq.unwrap_or(0)
                )),
                Ok(r) => Ok(r),
            }
        };
        match verdict {
            Ok(r) => {
                scan.corrupt.append(&mut scan.tail);
                last_seq = Some(r.seq);
                scan.aggregator.push(&r);
                scan.records += 1;
                scan.good_end = offset + n as u64;
            }
            Err(reason) => scan.tail.push(BadLine {
                line: line_no,
                offset,
                reason,
            }),
        }
        offset += n as u64;
    }
    scan.file_len = offset;
    Ok(scan)
}

/// Finish one run from its raw log. The caller has checked [`check_recoverable`].
pub(super) fn recover_run(store: &Store, mut meta: Metadata) -> Result<Recovered> {
    let lock = store.lock()?;
    let metadata_path = store.metadata_path(&meta.test_id);
    let raw_path = store.resolve(&meta.test.output_file);
    let aggregator = Aggregator::new()
        .with_slo(Slo::of(&meta))
        .with_steady(SteadySpec::of(&meta));
    let scan = scan_raw(&raw_path, aggregator).map_err(|e| store_io(&raw_path, "read", e))?;
    let mut torn = None;
    if !scan.tail.is_empty() {
        let offset = scan.good_end;
        let aside = move_tail_aside(&raw_path, offset)?;
        torn = Some((aside, scan.file_len - offset));
    }
    let (bytes, sha) = match nofollow::sha256_regular(&raw_path) {
        Ok((sha, n)) => (n, sha),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (0, crate::digest::sha256_hex(b"")),
        Err(e) => return Err(store_io(&raw_path, "read", e)),
    };
    let total_time = scan.aggregator.span_s().unwrap_or(0.0);
    let count = scan.aggregator.count();
    meta.results = scan
        .aggregator
        .finish(total_time, scan.corrupt.len() as u64);
    meta.test.num_requests = count;
    meta.test.raw_sha256 = Some(sha);
    meta.test.raw_bytes = Some(bytes);
    let mut note = Map::new();
    note.insert("records".into(), json!(count));
    if let Some((path, n)) = &torn {
        note.insert(
            "torn_file".into(),
            json!(format!(
                "raw/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            )),
        );
        note.insert("torn_bytes".into(), json!(n));
    }
    if !scan.corrupt.is_empty() {
        note.insert(
            "corrupt_lines".into(),
            json!(scan.corrupt.iter().map(|b| b.line).collect::<Vec<_>>()),
        );
    }
    super::finish(store, &mut meta, note, lock)?;
    Ok(Recovered {
        metadata: meta,
        metadata_path,
        raw_path,
        torn,
        corrupt: scan.corrupt,
    })
}

/// Copy `raw[offset..]` to `raw.torn-<offset>` (streamed through a bounded buffer, synced),
/// then truncate `raw` to `offset`. The tail is never deleted; a copy left by an earlier,
/// interrupted recovery is reused when it holds the same bytes. Neither file is ever
/// opened through a symlink, and only regular files are opened (P11).
fn move_tail_aside(raw: &Path, offset: u64) -> Result<PathBuf> {
    let name = raw.file_name().unwrap_or_default().to_string_lossy();
    let dir = crate::store::atomic::dir_of(raw);
    let open_tail = || -> Result<fs::File> {
        let mut f = nofollow::open_read(raw).map_err(|e| store_io(raw, "open", e))?;
        io::Seek::seek(&mut f, io::SeekFrom::Start(offset))
            .map_err(|e| store_io(raw, "read", e))?;
        Ok(f)
    };
    let mut n = 1;
    let aside = loop {
        let candidate = if n == 1 {
            dir.join(format!("{name}.torn-{offset}"))
        } else {
            dir.join(format!("{name}.torn-{offset}-{n}"))
        };
        match nofollow::open_with(&candidate, OpenOptions::new().write(true).create_new(true)) {
            Ok(mut f) => {
                let mut tail = open_tail()?;
                copy_bounded(&mut tail, &mut f)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| store_io(&candidate, "write", e))?;
                break candidate;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_content(&mut open_tail()?, &candidate) {
                    break candidate;
                }
                n += 1;
            }
            Err(e) => return Err(store_io(&candidate, "create", e)),
        }
    };
    atomic::sync_dir(dir).map_err(|e| store_io(dir, "sync", e))?;
    let f = nofollow::open_with(raw, OpenOptions::new().write(true))
        .map_err(|e| store_io(raw, "open", e))?;
    f.set_len(offset)
        .and_then(|_| f.sync_all())
        .map_err(|e| store_io(raw, "truncate", e))?;
    Ok(aside)
}

/// Copy through one 1 MiB buffer: memory stays bounded whatever the tail's size.
fn copy_bounded(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Whether the regular file `path` holds exactly what `a` still has to give (block by block).
fn same_content(a: &mut impl Read, path: &Path) -> bool {
    let Ok(b) = nofollow::open_read(path) else {
        return false;
    };
    let (mut a, mut b) = (BufReader::new(a), BufReader::new(b));
    loop {
        let (x, y) = match (a.fill_buf(), b.fill_buf()) {
            (Ok(x), Ok(y)) => (x, y),
            _ => return false,
        };
        if x.is_empty() || y.is_empty() {
            return x.is_empty() && y.is_empty();
        }
        let n = x.len().min(y.len());
        if x[..n] != y[..n] {
            return false;
        }
        a.consume(n);
        b.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> String {
        let r = RequestRecord {
            seq,
            ok: true,
            completion_tokens: Some(3),
            scheduled_s: Some(seq as f64),
            end_s: Some(seq as f64 + 0.5),
            ..Default::default()
        };
        format!("{}\n", serde_json::to_string(&r).unwrap())
    }

    #[test]
    fn good_prefix_tail_and_middle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let good = format!("{}{}{}", line(1), line(2), line(3));
        fs::write(&p, format!("{good}{{\"seq\":4,\"ok\"")).unwrap();
        let s = scan_raw(&p, Aggregator::new()).unwrap();
        assert_eq!(s.records, 3);
        assert_eq!(s.good_end, good.len() as u64);
        assert_eq!(s.tail.len(), 1);
        assert!(s.corrupt.is_empty());

        // a bad line between good ones is corruption, not a tail
        fs::write(&p, format!("{}garbage\n{}", line(1), line(2))).unwrap();
        let s = scan_raw(&p, Aggregator::new()).unwrap();
        assert_eq!(s.records, 2);
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].line, 2);
        assert!(s.tail.is_empty());

        // seq must increase
        fs::write(&p, format!("{}{}{}", line(1), line(2), line(2))).unwrap();
        let s = scan_raw(&p, Aggregator::new()).unwrap();
        assert_eq!(s.records, 2);
        assert_eq!(s.tail.len(), 1);

        // missing file: empty
        let s = scan_raw(&dir.path().join("nope"), Aggregator::new()).unwrap();
        assert_eq!(s.records, 0);
    }

    #[test]
    fn tail_is_moved_aside_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let good = format!("{}{}", line(1), line(2));
        fs::write(&p, format!("{good}{{\"torn")).unwrap();
        let aside = move_tail_aside(&p, good.len() as u64).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), good);
        assert_eq!(fs::read_to_string(&aside).unwrap(), "{\"torn");
        assert!(
            aside
                .to_string_lossy()
                .ends_with(&format!("r.jsonl.torn-{}", good.len()))
        );
    }
}
