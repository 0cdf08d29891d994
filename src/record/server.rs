//! Managed servers: a server command benchkeep starts, waits for, and stops, once per
//! combination of a tuning matrix (`sweep --matrix ... --server-cmd '...'`).
//!
//! The API, for the `sweep` driver:
//!
//! ```text
//! let cmd = ServerCommand::Shell("vllm serve M --max-num-seqs 64 --port 8011".into());
//! let opts = ServerOptions::new("http://127.0.0.1:8011/health", log_path, env);
//! let mut server = ManagedServer::start(&cmd, &opts)?; // ready: GET health_url gave 200
//! ... run the load against it ...
//! let ended = server.stop();                            // SIGTERM to its group, then SIGKILL
//! ```
//!
//! - The command runs in its own process group (a shell string via `sh -c`), with the
//!   environment the caller passes (library code never reads benchkeep's own), stdin
//!   closed, and stdout and stderr both written, secrets cut, to `log_path` (created or
//!   appended to; at most [`MAX_LOG_BYTES`]).
//! - `start` polls `GET health_url` (plain `http://` only: a server on this machine) until
//!   it answers 200, and fails with [`Error::Server`] (exit 5) and the log's last lines when
//!   the process exits first or `ready_timeout` passes (the server is then stopped).
//! - `stop` sends SIGTERM to the whole group, waits up to `stop_grace`, then SIGKILLs it;
//!   `Drop` does the same, so an early return or a panic never leaves a server running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::lines::{LineSplitter, Redactor};
use crate::error::Error;

/// Most bytes of server output kept in its log.
pub const MAX_LOG_BYTES: u64 = 256 << 20;
/// Lines of the log quoted in an error.
const TAIL_LINES: usize = 20;

/// How to start the server.
#[derive(Debug, Clone)]
pub enum ServerCommand {
    /// A shell command line, run with `sh -c`.
    Shell(String),
    /// A program and its arguments.
    Argv(Vec<String>),
}

impl ServerCommand {
    fn argv(&self) -> Vec<String> {
        match self {
            ServerCommand::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
            ServerCommand::Argv(a) => a.clone(),
        }
    }
}

/// Where and how long.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `http://host:port/path` that answers 200 once the server is ready.
    pub health_url: String,
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
    pub log_path: PathBuf,
    /// The server's whole environment (the CLI reads it).
    pub env: Vec<(String, String)>,
    /// Poll interval of the health check.
    pub poll: Duration,
}

impl ServerOptions {
    /// Ready within 10 minutes (a model load), 30 s to stop, polled every 250 ms.
    pub fn new(
        health_url: impl Into<String>,
        log_path: impl Into<PathBuf>,
        env: Vec<(String, String)>,
    ) -> Self {
        ServerOptions {
            health_url: health_url.into(),
            ready_timeout: Duration::from_secs(600),
            stop_grace: Duration::from_secs(30),
            log_path: log_path.into(),
            env,
            poll: Duration::from_millis(250),
        }
    }
}

/// A running server; stopped on [`ManagedServer::stop`] or drop.
pub struct ManagedServer {
    child: Child,
    pgid: i32,
    grace: Duration,
    log_path: PathBuf,
    pumps: Vec<mpsc::Receiver<()>>,
    ended: Option<ExitStatus>,
}

impl std::fmt::Debug for ManagedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedServer")
            .field("pid", &self.child.id())
            .field("log_path", &self.log_path)
            .finish()
    }
}

/// `host:port` and path of a plain `http://` URL.
fn split_http(url: &str) -> Result<(String, String), Error> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        Error::usage(format!(
            "health URL {url:?}: only http://HOST:PORT/PATH is supported (a server on this machine)"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::usage(format!(
            "health URL {url:?}: give HOST:PORT without credentials"
        )));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// One `GET`: whether it answered 200.
pub fn health_ok(url: &str, timeout: Duration) -> bool {
    let Ok((authority, path)) = split_http(url) else {
        return false;
    };
    let Some(addr) = authority.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let head = String::from_utf8_lossy(&head[..got]);
    head.starts_with("HTTP/1.") && head.get(9..12) == Some("200")
}

/// The last lines of a log, for an error message.
pub fn log_tail(path: &Path) -> String {
    let buf = crate::store::nofollow::read_tail(path, 16 * 1024).unwrap_or_default();
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Copy one pipe to the shared log, line by line, secrets cut, up to the cap.
fn pump(
    mut from: impl Read + Send + 'static,
    log: Arc<Mutex<(File, u64)>>,
    redactor: Redactor,
) -> mpsc::Receiver<()> {
    let (done, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut split = LineSplitter::new();
        let mut write = |line: &[u8], _| {
            let line = redactor.apply(line);
            let mut g = log.lock().unwrap_or_else(|p| p.into_inner());
            let (file, written) = &mut *g;
            if *written + (line.len() as u64) < MAX_LOG_BYTES {
                let _ = file.write_all(&line).and_then(|()| file.write_all(b"\n"));
                *written += line.len() as u64 + 1;
            }
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => split.feed(&buf[..n], &mut write),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        split.finish(&mut write);
        let _ = done.send(());
    });
    rx
}

impl ManagedServer {
    /// Start the server and wait until it is ready (see the module doc).
    pub fn start(cmd: &ServerCommand, opts: &ServerOptions) -> Result<ManagedServer> {
        split_http(&opts.health_url)?;
        let argv = cmd.argv();
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Error::usage("the server command is empty").into());
        }
        let mut secrets = super::argv::secret_values(&argv);
        secrets.extend(super::argv::env_secret_values(&opts.env));
        let redactor = Redactor::new(secrets);
        let shown = crate::redact::command_line(&argv);
        // The log lives in the store (`raw/`): never written through a planted link or
        // into a FIFO.
        let log = crate::store::nofollow::open_with(
            &opts.log_path,
            OpenOptions::new().create(true).append(true),
        )
        .with_context(|| format!("cannot open the server log {}", opts.log_path.display()))?;
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| Error::usage(format!("cannot start the server command {shown}: {e}")))?;
        let log = Arc::new(Mutex::new((log, 0u64)));
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(out, log.clone(), redactor.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(err, log.clone(), redactor.clone()));
        }
        let mut server = ManagedServer {
            pgid: child.id() as i32,
            child,
            grace: opts.stop_grace,
            log_path: opts.log_path.clone(),
            pumps,
            ended: None,
        };
        let deadline = Instant::now() + opts.ready_timeout;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                server.ended = Some(status);
                server.stop();
                return Err(Error::Server(format!(
                    "the server command {shown} exited ({}) before {} answered 200; the end of its log ({}):\n{}",
                    describe(status),
                    opts.health_url,
                    opts.log_path.display(),
                    log_tail(&opts.log_path)
                ))
                .into());
            }
            if health_ok(&opts.health_url, Duration::from_secs(2)) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                server.stop();
                return Err(Error::Server(format!(
                    "the server command {shown} did not answer 200 on {} within {:?}; it was stopped. The end of its log ({}):\n{}",
                    opts.health_url,
                    opts.ready_timeout,
                    opts.log_path.display(),
                    log_tail(&opts.log_path)
                ))
                .into());
            }
            std::thread::sleep(opts.poll);
        }
    }

    /// The server's process id (its process group's id too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Stop the whole process group: SIGTERM, up to the grace time, then SIGKILL. Returns
    /// how the server process ended. Calling it again returns the same.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        // SAFETY: killpg on the group this server leads; errors (already gone) are ignored.
        unsafe { libc::killpg(self.pgid, libc::SIGTERM) };
        let deadline = Instant::now() + self.grace;
        while self.ended.is_none() {
            match self.child.try_wait() {
                Ok(Some(s)) => self.ended = Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        // Whatever is left of the group (the server itself after the grace time, or
        // workers it started) is killed.
        unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        if self.ended.is_none() {
            self.ended = self.child.wait().ok();
        }
        // The log is complete once the pipes close (bounded: an escaped grandchild may
        // keep one open).
        for rx in self.pumps.drain(..) {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        self.ended
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        if self.ended.is_none() || !self.pumps.is_empty() {
            self.stop();
        }
    }
}

/// `exit code N` or `killed by SIGX`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by {}", super::child::signal_name(s)),
        _ => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls() {
        assert_eq!(
            split_http("http://127.0.0.1:8000/health").unwrap(),
            ("127.0.0.1:8000".into(), "/health".into())
        );
        assert_eq!(
            split_http("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(split_http("https://x/health").is_err());
        assert!(split_http("http://u:p@x/health").is_err());
        assert!(!health_ok(
            "http://127.0.0.1:1/health",
            Duration::from_millis(200)
        ));
    }

    #[test]
    fn a_link_planted_at_the_log_path_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let log = dir.path().join("s.log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let opts = ServerOptions::new(
            "http://127.0.0.1:1/health",
            &log,
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        );
        let Err(e) = ManagedServer::start(&ServerCommand::Shell("echo written".into()), &opts)
        else {
            panic!("a planted link must be refused");
        };
        assert!(format!("{e:#}").contains("server log"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(
            log_tail(&log),
            "",
            "the tail is not read through the link either"
        );
    }

    #[test]
    fn a_server_that_exits_early_is_an_error_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ServerOptions::new(
            "http://127.0.0.1:1/health",
            dir.path().join("s.log"),
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        );
        opts.poll = Duration::from_millis(20);
        let e = ManagedServer::start(
            &ServerCommand::Shell("echo CUDA out of memory; exit 3".into()),
            &opts,
        )
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("exit code 3"), "{msg}");
        assert!(msg.contains("CUDA out of memory"), "{msg}");
        assert!(matches!(e.downcast_ref::<Error>(), Some(Error::Server(_))));
    }

    #[test]
    fn a_server_never_ready_is_stopped_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ServerOptions::new(
            "http://127.0.0.1:1/health",
            dir.path().join("s.log"),
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        );
        opts.poll = Duration::from_millis(20);
        opts.ready_timeout = Duration::from_millis(300);
        let e = ManagedServer::start(&ServerCommand::Shell("sleep 60".into()), &opts).unwrap_err();
        assert!(format!("{e:#}").contains("did not answer 200"), "{e:#}");
    }
}
