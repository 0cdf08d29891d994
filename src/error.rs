//! Typed errors that decide the process exit code.
//!
//! Code anywhere may return `anyhow::Error`; `main` walks the error chain for the first
//! [`Error`] and exits with its code, or 1 when there is none. Exit codes are part of the
//! command-line contract and are listed in the README.

use std::path::PathBuf;

/// Exit codes (documented in the README).
pub mod exit {
    /// Everything worked.
    pub const OK: i32 = 0;
    /// The command ran but its outcome is a failure: every request failed, `verify` found
    /// problems, `compare --fail-on-regression` found a regression, a recorded command failed.
    pub const FAILURE: i32 = 1;
    /// Bad flags or bad input (a file that is missing, empty or in no known format).
    pub const USAGE: i32 = 2;
    /// Nothing matched (`show`, `query`): no such run.
    pub const NOT_FOUND: i32 = 3;
    /// The store could not be written (disk full, read-only, permission, I/O error).
    pub const STORE_IO: i32 = 4;
    /// The server could not be reached or did not answer like the chosen API.
    pub const SERVER: i32 = 5;
    /// A significance gate (`gate`, `compare --baseline --fail-on-regression`) had not
    /// enough data to judge a gated metric (too few requests, batches or runs, no raw log).
    pub const NOT_ENOUGH_DATA: i32 = 6;
    /// Stopped by Ctrl-C or SIGTERM; everything finished so far was kept.
    pub const INTERRUPTED: i32 = 130;
}

/// An error with a place in the exit-code contract.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or its value is wrong. The message names the flag and the fix.
    #[error("{0}")]
    Usage(String),
    /// An input file is wrong. The message names the file (and line) and the fix.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// No run matched.
    #[error("{0}")]
    NotFound(String),
    /// Writing to the store failed.
    #[error("{0}")]
    StoreIo(String),
    /// The server could not be reached or answered wrongly.
    #[error("{0}")]
    Server(String),
    /// The command ran, and its outcome is a failure (message already explains it).
    #[error("{0}")]
    Failed(String),
    /// Interrupted by a signal after saving what was done.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Input { .. } => exit::USAGE,
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::StoreIo(_) => exit::STORE_IO,
            Error::Server(_) => exit::SERVER,
            Error::Failed(_) => exit::FAILURE,
            Error::Interrupted(_) => exit::INTERRUPTED,
        }
    }
}

/// The exit code for an error chain: the first typed [`Error`] in it, else an I/O error
/// from the store's kind (disk full, read-only...) maps to [`exit::STORE_IO`], else 1.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    // `downcast_ref` also finds an `Error` attached with `.context(..)` at any depth.
    if let Some(e) = err.downcast_ref::<Error>() {
        return e.exit_code();
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return e.exit_code();
        }
    }
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && is_resource_error(io)
        {
            return exit::STORE_IO;
        }
    }
    exit::FAILURE
}

/// Disk full, file too large, read-only file system, permission denied, I/O error.
pub fn is_resource_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::StorageFull | K::ReadOnlyFilesystem | K::PermissionDenied | K::FileTooLarge
    ) {
        return true;
    }
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EFBIG | libc::EIO | libc::EROFS | libc::EACCES | libc::EDQUOT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_code_found_through_context() {
        let err = anyhow::Error::new(Error::usage("bad --total-time")).context("analyze");
        assert_eq!(exit_code_for(&err), exit::USAGE);
        let io: anyhow::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOSPC).into());
        let err = io.context("writing metadata").unwrap_err();
        assert_eq!(exit_code_for(&err), exit::STORE_IO);
        assert_eq!(exit_code_for(&anyhow::anyhow!("other")), exit::FAILURE);
    }
}
