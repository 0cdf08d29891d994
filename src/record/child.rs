//! Running the wrapped command: spawn it, tee its stdout and stderr (to the terminal at once,
//! and line by line into the log), forward SIGINT, SIGTERM and SIGHUP to it, and time it.
//!
//! Signals: a Ctrl-C typed at the terminal reaches the whole foreground process group, so
//! the command already has it; benchkeep only notes it. A signal *sent* to benchkeep (`kill`,
//! a scheduler) is forwarded to the command. Either way benchkeep keeps running until the
//! command has ended, then records the run.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::lines::{LineSplitter, LoadDetector, LoadHit, Piece, Redactor, Tail};
use crate::error::Error;

/// How long the output pipes may stay open after the command has exited (a daemon it left
/// behind may hold them) before benchkeep stops waiting for more log lines.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// The log is synced at least this often (RELIABILITY.md P1).
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The signals forwarded to the command.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

static CHILD_PID: AtomicI32 = AtomicI32::new(0);
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

/// What the command did.
#[derive(Debug)]
pub struct Finished {
    /// From spawn to exit.
    pub elapsed: Duration,
    pub status: ExitStatus,
    /// The first of SIGINT/SIGTERM/SIGHUP that benchkeep received while the command ran.
    pub received_signal: Option<i32>,
    pub load: Option<LoadHit>,
    pub tail: Vec<String>,
    /// Bytes written to the log.
    pub log_bytes: u64,
    /// Set when writing the log failed (the command still ran to its end).
    pub log_error: Option<String>,
    /// The pipes stayed open after the command exited; later output is not in the log.
    pub log_cut_after_exit: bool,
    /// Bytes of output not kept because the log reached [`MAX_LOG_BYTES`] (0: all kept).
    pub log_cut_bytes: u64,
}

/// The largest log kept (`raw/<id>.log`): past it, a note is written into the log and the
/// rest of the output is counted (`command.log_cut_bytes`), not kept (P8).
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// The log and everything derived from the lines, shared by the two pump threads.
struct Sink {
    log: Option<File>,
    log_error: Option<String>,
    log_bytes: u64,
    log_cap: u64,
    log_cut_bytes: u64,
    last_sync: Instant,
    closed: bool,
    redactor: Redactor,
    load: LoadDetector,
    tail: Tail,
    t0: Instant,
}

impl Sink {
    fn piece(&mut self, t_s: f64, line: &[u8], piece: Piece) {
        if self.closed {
            return;
        }
        let line = self.redactor.apply(line);
        self.load.check(t_s, &line);
        if piece == Piece::Overwritten {
            return;
        }
        self.tail.push(&line);
        let Some(log) = self.log.as_mut() else { return };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
        if self.log_cut_bytes > 0 || self.log_bytes + bytes.len() as u64 > self.log_cap {
            if self.log_cut_bytes == 0 {
                let note = format!(
                    "[benchkeep: the log reached its {} MiB cap; the rest of the output is counted in command.log_cut_bytes, not kept]\n",
                    self.log_cap >> 20
                );
                if log.write_all(note.as_bytes()).is_ok() {
                    self.log_bytes += note.len() as u64;
                }
                eprintln!(
                    "benchkeep: warning: the command's log reached its {} MiB cap; later output is not kept in the log",
                    self.log_cap >> 20
                );
            }
            self.log_cut_bytes += bytes.len() as u64;
            return;
        }
        // One complete line per write.
        match log.write_all(&bytes) {
            Ok(()) => self.log_bytes += bytes.len() as u64,
            Err(e) => {
                eprintln!(
                    "benchkeep: warning: writing the command's log failed ({e}); the command goes on, its output is no longer kept"
                );
                self.log_error = Some(e.to_string());
                self.log = None;
                return;
            }
        }
        if self.last_sync.elapsed() >= SYNC_EVERY {
            let _ = log.sync_data();
            self.last_sync = Instant::now();
        }
    }

    fn close(&mut self) {
        self.closed = true;
        if let Some(log) = self.log.take()
            && let Err(e) = log.sync_all()
        {
            self.log_error = Some(e.to_string());
        }
    }
}

/// Copy one pipe to the terminal and the sink until it closes.
fn pump(mut src: impl Read, to_stderr: bool, sink: Arc<Mutex<Sink>>, done: mpsc::Sender<()>) {
    let mut splitter = LineSplitter::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut passthrough = true;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if passthrough {
            let written = if to_stderr {
                let mut err = io::stderr().lock();
                err.write_all(&buf[..n]).and_then(|_| err.flush())
            } else {
                let mut out = io::stdout().lock();
                out.write_all(&buf[..n]).and_then(|_| out.flush())
            };
            // A closed terminal or pipe must not stop the benchmark or its log.
            passthrough = written.is_ok();
        }
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        let t_s = sink.t0.elapsed().as_secs_f64();
        splitter.feed(&buf[..n], &mut |line, piece| sink.piece(t_s, line, piece));
    }
    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
    let t_s = sink.t0.elapsed().as_secs_f64();
    splitter.finish(&mut |line, piece| sink.piece(t_s, line, piece));
    drop(sink);
    let _ = done.send(());
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let _ = RECEIVED.compare_exchange(0, sig, SeqCst, SeqCst);
    // si_code > 0: sent by the kernel (the terminal's Ctrl-C reaches the command directly);
    // <= 0: sent by a process with kill(2) and friends, so pass it on.
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let sent = info.is_null() || unsafe { (*info).si_code } <= 0;
    if sent {
        let pid = CHILD_PID.load(SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe {
                libc::kill(pid, sig);
            }
        } else {
            PENDING.store(sig, SeqCst);
        }
    }
}

/// Installed handlers; the previous ones come back on drop.
pub struct SignalGuard {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalGuard {
    /// Catch SIGINT, SIGTERM and SIGHUP: from now on they no longer end benchkeep.
    pub fn install() -> io::Result<SignalGuard> {
        RECEIVED.store(0, SeqCst);
        PENDING.store(0, SeqCst);
        let mut old = Vec::new();
        for sig in FORWARDED {
            // SAFETY: a zeroed sigaction is valid; the handler only touches atomics and
            // calls kill(2), which is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) != 0 {
                    return Err(io::Error::last_os_error());
                }
                old.push((sig, prev));
            }
        }
        Ok(SignalGuard { old })
    }

    /// The first forwarded signal received since [`install`](Self::install).
    pub fn received(&self) -> Option<i32> {
        Some(RECEIVED.load(SeqCst)).filter(|s| *s != 0)
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restoring the action sigaction gave us.
            unsafe {
                libc::sigaction(*sig, prev, std::ptr::null_mut());
            }
        }
    }
}

/// Wait until the child has exited without reaping it, so its pid cannot be reused while
/// a signal handler may still forward to it.
fn wait_exited_no_reap(pid: i32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Fail with the same usage error as a failed spawn when `argv[0]` is surely not there (a
/// path that does not exist, a name on no `PATH` directory), before anything is written.
pub fn check_program(argv: &[String], env: &[(String, String)]) -> Result<(), Error> {
    let Some(program) = argv.first() else {
        return Err(Error::usage("no command given after `--`"));
    };
    let found = if program.contains('/') {
        std::path::Path::new(program).exists()
    } else {
        match env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v) {
            Some(path) => std::env::split_paths(&path).any(|dir| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(dir.join(program))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            }),
            // The spawn searches its default path: let it decide.
            None => true,
        }
    };
    if found {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "cannot run `{program}`: not found (is it on PATH?); nothing was recorded"
        )))
    }
}

/// Run `argv` with its output teed into `log`, lines checked by `load`, secrets cut by
/// `redactor`. Signals must already be caught ([`SignalGuard`]). `on_spawn` gets the
/// command's pid as soon as it runs.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    log: File,
    redactor: Redactor,
    load: LoadDetector,
    signals: &SignalGuard,
    on_spawn: impl FnOnce(u32),
) -> Result<Finished> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::usage("no command given after `--`"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Output goes to a pipe now, not a terminal: keep Python's print() live on the screen.
    if !env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    // SAFETY: only async-signal-safe calls between fork and exec. benchkeep ignores
    // SIGXFSZ (P6); the command should get the default back.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            Ok(())
        });
    }
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        let what = if e.kind() == io::ErrorKind::NotFound {
            "not found (is it on PATH?)".to_string()
        } else {
            e.to_string()
        };
        Error::usage(format!(
            "cannot run `{program}`: {what}; nothing was recorded"
        ))
    })?;
    let pid = child.id() as i32;
    CHILD_PID.store(pid, SeqCst);
    let pending = PENDING.swap(0, SeqCst);
    if pending != 0 {
        // SAFETY: the child is alive (not reaped yet).
        unsafe {
            libc::kill(pid, pending);
        }
    }
    on_spawn(child.id());

    let sink = Arc::new(Mutex::new(Sink {
        log: Some(log),
        log_error: None,
        log_bytes: 0,
        log_cap: MAX_LOG_BYTES,
        log_cut_bytes: 0,
        last_sync: Instant::now(),
        closed: false,
        redactor,
        load,
        tail: Tail::default(),
        t0,
    }));
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut pumps = 0;
    for (src, to_stderr) in [
        (Box::new(stdout) as Box<dyn Read + Send>, false),
        (Box::new(stderr) as Box<dyn Read + Send>, true),
    ] {
        let (sink, done) = (Arc::clone(&sink), done_tx.clone());
        let spawned = std::thread::Builder::new()
            .name(
                if to_stderr {
                    "tee-stderr"
                } else {
                    "tee-stdout"
                }
                .into(),
            )
            .spawn(move || pump(src, to_stderr, sink, done));
        if spawned.is_ok() {
            pumps += 1;
        }
    }
    drop(done_tx);

    wait_exited_no_reap(pid);
    let elapsed = t0.elapsed();
    CHILD_PID.store(0, SeqCst);
    let status = child.wait()?;

    let deadline = Instant::now() + DRAIN_GRACE;
    let mut drained = 0;
    while drained < pumps {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => drained += 1,
            Err(_) => break,
        }
    }
    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
    if drained < pumps {
        // A process the command started (`server &`) still holds its output: say so, in
        // the log and on stderr, rather than lose that output without a word.
        let note = format!(
            "[benchkeep: the command exited, but a process it started still holds its output {}s later; output after this point is not kept (command.log_cut_after_exit)]",
            DRAIN_GRACE.as_secs()
        );
        let t = sink.t0.elapsed().as_secs_f64();
        sink.piece(t, note.as_bytes(), Piece::Line);
        eprintln!(
            "benchkeep: warning: command pid {} exited, but a process it started (still running, in its process group) keeps its output open; later output is not in the log. End it yourself if it should not outlive the command.",
            child.id()
        );
    }
    sink.close();
    Ok(Finished {
        elapsed,
        status,
        received_signal: signals.received(),
        load: sink.load.result(),
        tail: sink.tail.lines(),
        log_bytes: sink.log_bytes,
        log_error: sink.log_error.clone(),
        log_cut_after_exit: drained < pumps,
        log_cut_bytes: sink.log_cut_bytes,
    })
}

/// `SIGKILL`, `SIGTERM`, ... for a signal number.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The exit code a shell would report: the code, or 128 + the signal.
pub fn shell_code(status: &ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_env() -> Vec<(String, String)> {
        vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())]
    }

    fn log_file(dir: &std::path::Path) -> (std::path::PathBuf, File) {
        let p = dir.join("x.log");
        (p.clone(), File::create(&p).unwrap())
    }

    #[test]
    fn tees_times_and_reports_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, log) = log_file(dir.path());
        let guard = SignalGuard::install().unwrap();
        let argv: Vec<String> = [
            "sh",
            "-c",
            "echo out1; echo 'err SECRETVALUE' >&2; sleep 0.2; printf 'init engine (profile, create kv cache, warmup model) took 0.1 s\\n'; exit 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = run(
            &argv,
            &path_env(),
            log,
            Redactor::new(vec!["SECRETVALUE".into()]),
            LoadDetector::new(None),
            &guard,
            |_| {},
        )
        .unwrap();
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(shell_code(&f.status), 3);
        assert!(f.elapsed >= Duration::from_millis(200));
        assert!(f.load.unwrap().seconds >= 0.2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("out1\n"), "{text}");
        assert!(text.contains("err ***\n"), "{text}");
        assert!(!text.contains("SECRETVALUE"));
        assert_eq!(f.log_bytes, text.len() as u64);
        assert_eq!(f.tail.len(), 3);
        assert!(!f.log_cut_after_exit);
        assert_eq!(f.received_signal, None);
    }

    #[test]
    fn killed_by_a_signal_and_missing_program() {
        let dir = tempfile::tempdir().unwrap();
        let (_, log) = log_file(dir.path());
        let guard = SignalGuard::install().unwrap();
        let argv: Vec<String> = ["sh", "-c", "kill -KILL $$"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = run(
            &argv,
            &path_env(),
            log,
            Redactor::default(),
            LoadDetector::new(None),
            &guard,
            |_| {},
        )
        .unwrap();
        assert_eq!(f.status.signal(), Some(libc::SIGKILL));
        assert_eq!(shell_code(&f.status), 137);
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(64), "signal 64");

        let (_, log) = log_file(&dir.path().join(""));
        let err = run(
            &["benchkeep-no-such-program-xyz".to_string()],
            &path_env(),
            log,
            Redactor::default(),
            LoadDetector::new(None),
            &guard,
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        let missing =
            check_program(&["benchkeep-no-such-program-xyz".to_string()], &path_env()).unwrap_err();
        assert!(missing.to_string().contains("not found"), "{missing}");
        assert!(check_program(&["/no/such/dir/x".to_string()], &path_env()).is_err());
        assert!(check_program(&["sh".to_string()], &path_env()).is_ok());
        assert!(check_program(&[], &path_env()).is_err());
    }

    #[test]
    fn the_log_is_capped_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = log_file(dir.path());
        let mut sink = Sink {
            log: Some(file),
            log_error: None,
            log_bytes: 0,
            log_cap: 11,
            log_cut_bytes: 0,
            last_sync: Instant::now(),
            closed: false,
            redactor: Redactor::default(),
            load: LoadDetector::new(None),
            tail: Tail::default(),
            t0: Instant::now(),
        };
        for line in [&b"12345"[..], b"6789", b"abcdef", b"g"] {
            sink.piece(0.0, line, Piece::Line);
        }
        sink.close();
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(
            log.starts_with("12345\n6789\n[benchkeep: the log reached"),
            "{log}"
        );
        assert_eq!(sink.log_cut_bytes, 7 + 2);
    }
}
