//! `--tokenizer FILE`: a local HuggingFace `tokenizer.json` that counts the tokens of a
//! synthetic prompt's text, so prompts are sized by the model's own tokenizer
//! (`calibrate/with_tokenizer.rs`). Nothing is ever downloaded: the file is the user's.
//!
//! Counting needs the `tokenizers` crate, built only with the cargo feature `tokenizer`
//! (pure Rust: its `fancy-regex` backend, no Oniguruma or esaxx C++, no HTTP). Without the
//! feature [`TokenizerFile::load`] is a usage error (exit 2) saying how to build with it.
//!
//! The file is opened as any user-named file (`userfile::open`: a FIFO, socket or device,
//! `/dev/zero` through a link included, is refused at once), read up to
//! [`MAX_TOKENIZER_BYTES`] (a file above it is refused, never read whole), hashed, and
//! parsed. The metadata names it by its file name and sha256 only, not its full path (a
//! home directory is nobody's business; the sha256 identifies the tokenizer exactly).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::digest::sha256_hex;
use crate::error::Error;

/// Largest tokenizer file read. Real ones are 2-35 MB (Llama 3: 9 MB, Gemma 3: 33 MB).
pub const MAX_TOKENIZER_BYTES: u64 = 128 << 20;

/// Counts the tokens of a text (special tokens the tokenizer adds included).
pub trait CountTokens: Send + Sync {
    fn count(&self, text: &str) -> Result<u32, String>;
}

/// A tokenizer file, loaded: what counts, and what identifies it (shared: a workload
/// cloned for every point of a sweep holds one copy).
#[derive(Clone)]
pub struct TokenizerFile(Arc<Loaded>);

struct Loaded {
    /// The file's name (no directory).
    name: String,
    sha256: String,
    bytes: u64,
    counter: Arc<dyn CountTokens>,
}

impl fmt::Debug for TokenizerFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenizerFile")
            .field("name", &self.0.name)
            .field("sha256", &self.0.sha256)
            .field("bytes", &self.0.bytes)
            .finish()
    }
}

/// Two tokenizers are the same when their files are.
impl PartialEq for TokenizerFile {
    fn eq(&self, other: &Self) -> bool {
        self.0.sha256 == other.0.sha256
    }
}

impl TokenizerFile {
    /// A counter with its identity (tests, other counters).
    pub fn new(name: &str, sha256: &str, bytes: u64, counter: Arc<dyn CountTokens>) -> Self {
        TokenizerFile(Arc::new(Loaded {
            name: name.to_string(),
            sha256: sha256.to_string(),
            bytes,
            counter,
        }))
    }

    /// The file's name (no directory).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The file's sha256 (its identity in the workload's).
    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// Read and parse `path` (`--tokenizer`). Every failure names the file: exit 2.
    pub fn load(path: &Path) -> Result<TokenizerFile, Error> {
        if !cfg!(feature = "tokenizer") {
            return Err(Error::usage(format!(
                "--tokenizer {}: this benchkeep was built without tokenizer support; build it with `cargo build --release --features tokenizer` (or size prompts by the server's own count: leave out --tokenizer)",
                path.display()
            )));
        }
        let bad = |m: String| Error::input(path, format!("--tokenizer: {m}"));
        let file = crate::userfile::open(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
        let mut buf = Vec::new();
        file.take(MAX_TOKENIZER_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| bad(format!("cannot read it ({e})")))?;
        if buf.len() as u64 > MAX_TOKENIZER_BYTES {
            return Err(bad(format!(
                "larger than {} MiB, not a tokenizer.json; give the model's tokenizer.json (a few MB)",
                MAX_TOKENIZER_BYTES >> 20
            )));
        }
        let counter = parse(&buf).map_err(|e| {
            bad(format!(
                "not a HuggingFace tokenizer.json ({e}); give the tokenizer.json from the model's repository"
            ))
        })?;
        let name = path.file_name().map_or_else(
            || "tokenizer.json".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(TokenizerFile::new(
            &name,
            &sha256_hex(&buf),
            buf.len() as u64,
            counter,
        ))
    }

    /// The tokens of `text`, special tokens the tokenizer adds (BOS) included.
    pub fn count(&self, text: &str) -> Result<u32, Error> {
        self.0.counter.count(text).map_err(|e| {
            Error::Server(format!(
                "prompt calibration: the tokenizer {} cannot encode a prompt ({e})",
                self.0.name
            ))
        })
    }

    /// `prompt_calibration.tokenizer` in the metadata.
    pub fn describe(&self) -> Value {
        json!({"file": self.0.name, "sha256": self.0.sha256, "bytes": self.0.bytes})
    }
}

#[cfg(feature = "tokenizer")]
fn parse(bytes: &[u8]) -> Result<Arc<dyn CountTokens>, String> {
    let mut t = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| e.to_string())?;
    // A file may ask to truncate (or pad) to a length: the count of the whole text is wanted.
    t.with_truncation(None).map_err(|e| e.to_string())?;
    t.with_padding(None);
    Ok(Arc::new(Hf(t)))
}

#[cfg(not(feature = "tokenizer"))]
fn parse(_: &[u8]) -> Result<Arc<dyn CountTokens>, String> {
    Err("built without the `tokenizer` feature".into())
}

#[cfg(feature = "tokenizer")]
struct Hf(tokenizers::Tokenizer);

#[cfg(feature = "tokenizer")]
impl CountTokens for Hf {
    fn count(&self, text: &str) -> Result<u32, String> {
        let e = self.0.encode(text, true).map_err(|e| e.to_string())?;
        u32::try_from(e.len()).map_err(|_| "over 4 billion tokens".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "tokenizer"))]
    #[test]
    fn without_the_feature_the_flag_says_how_to_build() {
        let e = TokenizerFile::load(Path::new("t.json")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(
            m.contains("--features tokenizer") && m.contains("t.json"),
            "{m}"
        );
    }

    #[cfg(feature = "tokenizer")]
    #[test]
    fn bad_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let not_json = dir.path().join("not.json");
        std::fs::write(&not_json, "hello").unwrap();
        let fifo = dir.path().join("fifo.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain mkfifo on a path in our temp dir.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let huge = dir.path().join("huge.json");
        let f = std::fs::File::create(&huge).unwrap();
        f.set_len(MAX_TOKENIZER_BYTES + 1).unwrap();
        for (p, says) in [
            (&not_json, "not a HuggingFace tokenizer.json"),
            (&fifo, "FIFO"),
            (&zero, "device"),
            (&huge, "larger than 128 MiB"),
        ] {
            let e = TokenizerFile::load(p).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            let m = e.to_string();
            assert!(m.contains(p.to_str().unwrap()) && m.contains(says), "{m}");
        }
    }
}
