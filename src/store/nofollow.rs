//! The store is never a way out (RELIABILITY P11): every file benchkeep opens inside the
//! store is opened without following a symlink (`O_NOFOLLOW`) and without blocking on a
//! FIFO (`O_NONBLOCK`), and is checked to be a regular file once open; every folder of
//! the store's layout must be a real directory, not a link to somewhere else.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

pub use crate::userfile::kind_of;

fn not_regular(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}, not a regular file: benchkeep never follows links or opens special files inside the store (move it away and restore the real file)",
            path.display()
        ),
    )
}

/// Open `path` with `opts`, never following a symlink in its last component and never
/// blocking on a FIFO; anything but a regular file is refused with a clear error.
pub fn open_with(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    crate::userfile::open_regular(path, opts, libc::O_NOFOLLOW, |what| not_regular(path, what))
}

/// Open a regular file of the store for reading (see [`open_with`]).
pub fn open_read(path: &Path) -> io::Result<File> {
    open_with(path, OpenOptions::new().read(true))
}

/// The last `max` bytes of a regular file of the store (a log's tail), never following a
/// link nor blocking on a FIFO, and never more than `max` however the file grows meanwhile.
pub fn read_tail(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = open_read(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start).min(max) as usize);
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Read at most `limit` bytes of a regular file of the store; `None` when it is larger.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let f = open_read(path)?;
    let len = f.metadata()?.len();
    read_open_bounded(f, len, limit)
}

/// The rest of an open file, `len` (its size when opened) as the first guess: `None` when
/// it is larger than `limit`, however much it grows while it is read (never more than
/// `limit` + 1 bytes are read).
pub fn read_open_bounded(f: File, len: u64, limit: u64) -> io::Result<Option<Vec<u8>>> {
    if len > limit {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(len as usize + 1);
    f.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The sha256 and length of a regular file of the store, read in 1 MiB blocks.
pub fn sha256_regular(path: &Path) -> io::Result<(String, u64)> {
    crate::digest::sha256_reader(open_read(path)?)
}

/// `Ok(true)` when `path` is a real directory, `Ok(false)` when nothing is there, and an
/// error that says what it is otherwise (a symlink, even to a directory, is refused).
pub fn real_dir(path: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Ok(true),
        Ok(m) => Err(format!(
            "{} is {}, not a directory: benchkeep never follows links inside the store; replace it with a real directory (move what it holds into one)",
            path.display(),
            kind_of(m.file_type())
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot inspect {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_fifos_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("outside");
        fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_read(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = open_with(&link, OpenOptions::new().write(true)).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep me");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open_read(&fifo).unwrap_err(); // returns at once, never blocks
        assert!(err.to_string().contains("FIFO"), "{err}");

        let err = open_read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        assert_eq!(read_bounded(&target, 100).unwrap().unwrap(), b"keep me");
        assert_eq!(read_bounded(&target, 3).unwrap(), None);

        assert_eq!(real_dir(dir.path()), Ok(true));
        assert_eq!(real_dir(&dir.path().join("none")), Ok(false));
        let dlink = dir.path().join("dlink");
        std::os::unix::fs::symlink(dir.path(), &dlink).unwrap();
        assert!(real_dir(&dlink).unwrap_err().contains("symbolic link"));
    }
}
