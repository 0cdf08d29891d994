//! Opening a file the user named (a results file, a request or dataset file, a length
//! histogram, a config file): never blocking the command on a FIFO, socket or device.
//!
//! `open(2)` of a FIFO for reading waits for a writer, and reading a pipe consumes it, so
//! every such path is opened with `O_NONBLOCK`, checked to be a regular file on the open
//! descriptor (no race between the check and the read), and refused otherwise with an
//! error of kind `InvalidInput` whose text says what it is and what to do. Links are
//! followed: the user chose the path (files inside the store go through
//! `store::nofollow`, which refuses links).

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file type is, in words, for errors.
pub fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Open the regular file at `path` for reading, following links, never blocking. A FIFO,
/// socket, device or directory is an `InvalidInput` error saying which, and to save the
/// content to a file first.
pub fn open(path: &Path) -> io::Result<File> {
    open_opts(path, libc::O_NONBLOCK | libc::O_CLOEXEC)
}

/// [`open`], also refusing a symbolic link in the last component (for a file found by
/// looking around, such as a side file next to the one the user named).
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    open_opts(path, libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
}

fn open_opts(path: &Path, flags: i32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused("a symbolic link")
            } else {
                e
            }
        })?;
    let t = file.metadata()?.file_type();
    if !t.is_file() {
        return Err(refused(kind_of(t)));
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
