//! Streaming a file as lines while a second thread computes its sha256.
//!
//! The file is read once, in blocks of [`BLOCK_BYTES`], into a small pool of reusable
//! buffers, by a second thread that also hashes each block (SHA-256, with SHA-NI where the
//! CPU has it) after handing it to the calling thread, which splits it into lines with
//! `memchr` at the same time. A line that spans blocks is joined in a carry buffer; a line longer than the
//! limit is not buffered at all, only measured, and reported as [`Line::TooLong`]. Memory
//! is therefore bounded by the pool plus the line limit, whatever the file size.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;

/// Size of one read.
pub(crate) const BLOCK_BYTES: usize = 1 << 20;

/// Blocks queued for the hasher at most (the pool holds this many plus two).
const QUEUE: usize = 4;

/// One line handed to the callback (without its `\n`).
#[derive(Debug)]
pub(crate) enum Line<'a> {
    /// The bytes of the line.
    Text(&'a [u8]),
    /// A line longer than the limit: its length in bytes; the bytes were skipped.
    TooLong(u64),
}

/// What a pass over the file measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub bytes: u64,
    /// Lowercase hex sha256 of every byte read.
    pub sha256: String,
}

/// Call `on_line(line_number, line)` for every line of `reader` (1-based; a last line
/// without `\n` counts; a file ending in `\n` has no empty extra line), hashing every byte.
///
/// A second thread reads and hashes; the calling thread splits lines and runs `on_line`.
pub(crate) fn for_each_line<R: Read + Send>(
    reader: R,
    max_line: usize,
    mut on_line: impl FnMut(u64, Line<'_>),
) -> io::Result<Summary> {
    thread::scope(|scope| {
        let (tx, rx) = sync_channel::<(Arc<Vec<u8>>, usize)>(QUEUE);
        let producer = scope.spawn(move || read_and_hash(reader, tx));
        let mut splitter = Splitter::new(max_line);
        for (block, len) in rx {
            splitter.push(&block[..len], &mut on_line);
        }
        let (bytes, sha256) = producer
            .join()
            .map_err(|_| io::Error::other("the reading thread panicked"))??;
        splitter.finish(&mut on_line);
        Ok(Summary { bytes, sha256 })
    })
}

/// Read `reader` to the end in blocks, sending each block on `tx` and hashing it.
/// Returns the byte count and the lowercase hex sha256.
fn read_and_hash<R: Read>(
    mut reader: R,
    tx: SyncSender<(Arc<Vec<u8>>, usize)>,
) -> io::Result<(u64, String)> {
    let mut hasher = crate::digest::Hasher::new();
    // Blocks are reused once both threads are done with them: at most QUEUE wait in the
    // channel, one is being split and one is being read, so the pool stays small.
    let mut pool: Vec<Arc<Vec<u8>>> = Vec::with_capacity(QUEUE + 2);
    let mut bytes = 0u64;
    loop {
        let idx = match pool.iter_mut().position(|b| Arc::get_mut(b).is_some()) {
            Some(i) => i,
            None => {
                pool.push(Arc::new(vec![0u8; BLOCK_BYTES]));
                pool.len() - 1
            }
        };
        let buf = Arc::get_mut(&mut pool[idx]).expect("a free buffer");
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes += n as u64;
        if tx.send((Arc::clone(&pool[idx]), n)).is_err() {
            return Err(io::Error::other("the line splitter stopped"));
        }
        hasher.update(&pool[idx][..n]);
    }
    Ok((bytes, hasher.hex()))
}

/// Splits a stream of blocks into lines, carrying partial lines across blocks.
struct Splitter {
    max_line: usize,
    line_no: u64,
    /// The start of a line whose end is in a later block.
    carry: Vec<u8>,
    /// Length of a too-long line being skipped, if in one.
    skipping: Option<u64>,
}

impl Splitter {
    fn new(max_line: usize) -> Self {
        Splitter {
            max_line,
            line_no: 0,
            carry: Vec::new(),
            skipping: None,
        }
    }

    fn emit(&mut self, line: Line<'_>, on_line: &mut impl FnMut(u64, Line<'_>)) {
        self.line_no += 1;
        on_line(self.line_no, line);
    }

    /// Add the bytes of a partial line (no `\n` in `part`) to the carry or the skip count.
    fn extend_partial(&mut self, part: &[u8]) {
        if let Some(n) = &mut self.skipping {
            *n += part.len() as u64;
        } else if self.carry.len() + part.len() > self.max_line {
            self.skipping = Some((self.carry.len() + part.len()) as u64);
            // Give the memory back: a long line must not pin its buffer.
            self.carry = Vec::new();
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// End the line being carried or skipped.
    fn end_partial(&mut self, on_line: &mut impl FnMut(u64, Line<'_>)) {
        if let Some(n) = self.skipping.take() {
            self.emit(Line::TooLong(n), on_line);
        } else {
            let carry = std::mem::take(&mut self.carry);
            self.emit(Line::Text(&carry), on_line);
            self.carry = carry;
            self.carry.clear();
            if self.carry.capacity() > 4 * BLOCK_BYTES {
                self.carry = Vec::new();
            }
        }
    }

    fn in_partial(&self) -> bool {
        self.skipping.is_some() || !self.carry.is_empty()
    }

    fn push(&mut self, block: &[u8], on_line: &mut impl FnMut(u64, Line<'_>)) {
        let mut start = 0;
        if self.in_partial() {
            match memchr::memchr(b'\n', block) {
                Some(end) => {
                    self.extend_partial(&block[..end]);
                    self.end_partial(on_line);
                    start = end + 1;
                }
                None => {
                    self.extend_partial(block);
                    return;
                }
            }
        }
        let base = start;
        for pos in memchr::memchr_iter(b'\n', &block[base..]) {
            let end = base + pos;
            let line = &block[start..end];
            if line.len() > self.max_line {
                self.emit(Line::TooLong(line.len() as u64), on_line);
            } else {
                self.emit(Line::Text(line), on_line);
            }
            start = end + 1;
        }
        if start < block.len() {
            self.extend_partial(&block[start..]);
        }
    }

    /// The last line, when the file does not end with `\n`.
    fn finish(&mut self, on_line: &mut impl FnMut(u64, Line<'_>)) {
        if self.in_partial() {
            self.end_partial(on_line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes per read, to exercise block joins.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(data: &[u8], step: usize, max: usize) -> (Vec<(u64, String)>, Summary) {
        let mut out = Vec::new();
        let summary = for_each_line(Dribble(data, step), max, |n, l| {
            out.push((
                n,
                match l {
                    Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    Line::TooLong(len) => format!("<too long: {len}>"),
                },
            ))
        })
        .unwrap();
        (out, summary)
    }

    #[test]
    fn splits_lines_across_any_read_size() {
        let data = b"a\n\nbcd\r\nlast";
        for step in 1..=data.len() {
            let (got, s) = lines(data, step, 100);
            assert_eq!(
                got,
                vec![
                    (1, "a".into()),
                    (2, "".into()),
                    (3, "bcd\r".into()),
                    (4, "last".into())
                ],
                "step {step}"
            );
            assert_eq!(s.bytes, data.len() as u64);
        }
    }

    #[test]
    fn no_extra_line_after_final_newline() {
        let (got, _) = lines(b"x\ny\n", 3, 100);
        assert_eq!(got.len(), 2);
        let (got, s) = lines(b"", 3, 100);
        assert!(got.is_empty());
        assert_eq!(
            s.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn long_lines_are_measured_not_kept() {
        let data = b"ok\n0123456789abcdef\nok2\n0123456789";
        for step in 1..=data.len() {
            let (got, _) = lines(data, step, 8);
            assert_eq!(
                got,
                vec![
                    (1, "ok".into()),
                    (2, "<too long: 16>".into()),
                    (3, "ok2".into()),
                    (4, "<too long: 10>".into())
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn hash_matches_a_one_shot_digest() {
        let data: Vec<u8> = (0..3 * BLOCK_BYTES + 17).map(|i| (i % 251) as u8).collect();
        let (_, s) = lines(&data, BLOCK_BYTES, 64 << 20);
        assert_eq!(s.sha256, crate::digest::sha256_hex(&data));
    }
}
