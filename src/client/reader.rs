//! Reading a response body under the whole-request deadline and the idle timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{fmt_duration, http};
use crate::schema::ErrorKind;

/// Reads body chunks under the whole-request deadline and the idle timeout. The idle timer
/// is re-armed lazily (only when it fires), so a fast stream costs no timer work per read.
pub(super) struct Reader {
    idle: Duration,
    timeout: Duration,
    deadline: Instant,
    last_byte: Instant,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Reader {
    pub(super) fn new(idle: Duration, timeout: Duration, deadline: Instant) -> Reader {
        let now = Instant::now();
        Reader {
            idle,
            timeout,
            deadline,
            last_byte: now,
            timer: Box::pin(tokio::time::sleep_until((deadline.min(now + idle)).into())),
        }
    }

    pub(super) async fn next(
        &mut self,
        body: &mut http::Body,
    ) -> Result<Option<Bytes>, (ErrorKind, String)> {
        loop {
            tokio::select! {
                biased;
                r = body.chunk() => {
                    return match r {
                        Ok(Some(c)) => {
                            self.last_byte = Instant::now();
                            // A server that always has bytes ready never lets the timer
                            // run: check the whole-request limit here too.
                            if self.last_byte >= self.deadline {
                                return Err((ErrorKind::Timeout, format!(
                                    "the response took longer than --timeout {}",
                                    fmt_duration(self.timeout)
                                )));
                            }
                            Ok(Some(c))
                        }
                        Ok(None) => Ok(None),
                        Err(e) => Err((
                            ErrorKind::CutShort,
                            format!("the connection broke mid-response: {e}"),
                        )),
                    };
                }
                _ = self.timer.as_mut() => {
                    let now = Instant::now();
                    if now >= self.deadline {
                        return Err((ErrorKind::Timeout, format!(
                            "the response took longer than --timeout {}",
                            fmt_duration(self.timeout)
                        )));
                    }
                    if now.saturating_duration_since(self.last_byte) >= self.idle {
                        return Err((ErrorKind::IdleTimeout, format!(
                            "no bytes for --idle-timeout {}",
                            fmt_duration(self.idle)
                        )));
                    }
                    let next = self.deadline.min(self.last_byte + self.idle);
                    self.timer.as_mut().reset(next.into());
                }
            }
        }
    }

    /// Read and discard up to `limit` more bytes, so a finished response frees its
    /// connection for reuse. Errors and timeouts are ignored.
    pub(super) async fn drain(&mut self, body: &mut http::Body, limit: usize) {
        let mut seen = 0;
        while seen <= limit {
            match self.next(body).await {
                Ok(Some(c)) => seen += c.len(),
                _ => return,
            }
        }
    }
}
