//! Opening a file the user named (a results file, a request or dataset file, a length
//! histogram, a config file): never blocking the command on a FIFO, socket or device.
//!
//! `open(2)` of a FIFO for reading waits for a writer, and reading a pipe consumes it, so
//! every such path is opened with `O_NONBLOCK`, checked to be a regular file on the open
//! descriptor (no race between the check and the read), and refused otherwise with an
//! error of kind `InvalidInput` whose text says what it is and what to do. Links are
//! followed: the user chose the path (files inside the store go through
//! `store::nofollow`, which refuses links).

use std::fs::{self, File, FileType, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What kind of entry a file type is, in words, for messages.
pub fn kind_of(ft: FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Open the regular file at `path` for reading, following links, never blocking. A FIFO,
/// socket, device or directory is an `InvalidInput` error saying which, and to save the
/// content to a file first.
pub fn open(path: &Path) -> io::Result<File> {
    open_regular(path, OpenOptions::new().read(true), 0, refused)
}

/// [`open`], also refusing a symbolic link in the last component (for a file found by
/// looking around, such as a side file next to the one the user named).
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    open_regular(
        path,
        OpenOptions::new().read(true),
        libc::O_NOFOLLOW,
        refused,
    )
}

/// The one mechanism behind [`open`] and the store's `nofollow::open_with`: open with
/// `O_NONBLOCK | O_CLOEXEC | flags` (a FIFO never blocks the open), check on the open
/// descriptor that it is a regular file (no race between check and read), then clear
/// `O_NONBLOCK`. Anything else (and a link refused by `O_NOFOLLOW`: `ELOOP`, or a FIFO
/// opened for writing with no reader: `ENXIO`) is `refuse(what it is)`.
pub fn open_regular(
    path: &Path,
    opts: &mut OpenOptions,
    flags: i32,
    refuse: impl Fn(&str) -> io::Error,
) -> io::Result<File> {
    opts.custom_flags(flags | libc::O_NONBLOCK | libc::O_CLOEXEC);
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
            let what = fs::symlink_metadata(path)
                .map(|m| kind_of(m.file_type()))
                .unwrap_or("a symbolic link");
            return Err(refuse(what));
        }
        Err(e) => return Err(e),
    };
    let t = file.metadata()?.file_type();
    if !t.is_file() {
        return Err(refuse(kind_of(t)));
    }
    // O_NONBLOCK means nothing for a regular file's reads; clear it so nothing inherits it.
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let fd = file.as_raw_fd();
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {what}, not a regular file (a pipe would be read once and could block); save its content to a file first, e.g. `cat SOURCE > file`, and give that"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_directory_and_a_dangling_name_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        assert_eq!(
            open(&dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut s = String::new();
        io::Read::read_to_string(&mut open(&link).unwrap(), &mut s).unwrap();
        assert_eq!(s, "x", "links are followed");
        let e = open_nofollow(&link).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
        std::os::unix::fs::symlink(&fifo, dir.path().join("lf")).unwrap();
        assert!(open(&dir.path().join("lf")).is_err(), "a link to a FIFO");
    }
}
