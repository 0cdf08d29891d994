//! Hashing: lowercase hex, sha256 of bytes, strings and files, and a hashing writer.
//!
//! Every checksum the store records (`test.raw_sha256`, `test.input_sha256`) is the
//! lowercase hex sha256 of the exact bytes, made here and nowhere else.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lowercase hex of any bytes (a digest, usually).
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(bytes.as_ref()))
}

/// The lowercase hex sha256 of a file's content, and its length, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    sha256_reader(File::open(path)?)
}

/// The lowercase hex sha256 of everything `r` yields, and its length, read in 1 MiB blocks.
pub fn sha256_reader(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
    }
    Ok((h.hex(), h.bytes()))
}

/// An incremental sha256 that also counts the bytes it saw.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    bytes: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.bytes += bytes.len() as u64;
    }
    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// The lowercase hex digest of everything hashed so far (the hasher is left as it is).
    pub fn hex(&self) -> String {
        hex(&self.inner.clone().finalize())
    }
}

/// A writer that hashes what it passes on: the checksum of a copy is the checksum of the
/// bytes that were actually written.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// The writer, the hex sha256 and the byte count of what was written.
    pub fn finish(self) -> (W, String, u64) {
        let (hex, bytes) = (self.hasher.hex(), self.hasher.bytes());
        (self.inner, hex, bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// FNV-1a (64-bit) of `bytes`: the stable, format-defining hash that spreads a name over
/// the catalog's parts and the remote packs (never a digest of content: not collision
/// resistant).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    /// The published FNV-1a 64 test values: parts and packs already stored keep their place.
    #[test]
    fn fnv1a_is_the_published_one() {
        assert_eq!(super::fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_digests() {
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn writer_and_file_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = HashingWriter::new(File::create(&path).unwrap());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (_, sha, n) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(sha, sha256_hex("hello world"));
        assert_eq!(sha256_file(&path).unwrap(), (sha, 11));
        let mut h = Hasher::new();
        assert_eq!(h.hex(), EMPTY);
        h.update(b"hello world");
        assert_eq!(h.hex(), sha256_hex("hello world"));
    }
}
