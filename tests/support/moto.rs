//! Stores at a URL for the remote-store tests: a plain directory, `file://`, an `s3://`
//! bucket on a real S3-compatible server (moto in server mode, started once per test
//! process, under the cargo feature `external-it`), and an `az://` container on Azurite
//! (`scripts/with_azurite.sh`, features `azure` + `external-it`); plus a fake S3 endpoint
//! that misbehaves on purpose (refuses credentials, or overwrites where it should refuse).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{benchkeep, fixture, free_port, out, wait_until};

/// Where the store of a test lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    S3,
    Azure,
}

/// The store kinds this build tests: always a directory and `file://`; `s3://` on moto
/// with `--features external-it` (what `.ci/run` runs); `az://` on Azurite with
/// `--features external-it,azure` (run under `scripts/with_azurite.sh`: without its
/// BENCHKEEP_TEST_AZ_ENDPOINT the tests fail, saying so).
pub fn kinds() -> Vec<Kind> {
    let mut k = vec![Kind::Dir, Kind::File];
    if cfg!(feature = "external-it") {
        k.push(Kind::S3);
    }
    if cfg!(all(feature = "external-it", feature = "azure")) {
        k.push(Kind::Azure);
    }
    k
}

/// The provider variables a test clears from the environment it inherits.
const PROVIDER_VARS: [&str; 4] = ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"];

/// A store for one test: its `--store` value, environment, and a spool of its own.
pub struct Target {
    pub kind: Kind,
    pub url: String,
    pub env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

/// The secret the S3 targets use: it must never appear in any output or file.
pub const SECRET: &str = "bkSECRETtestVALUE0123456789abcdef";

impl Target {
    /// A fresh, initialized store of `kind`.
    pub fn new(kind: Kind) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let (url, env) = match kind {
            Kind::Dir => (dir.path().join("store").display().to_string(), vec![]),
            Kind::File => (
                format!("file://{}/bucket/team", dir.path().display()),
                vec![],
            ),
            Kind::S3 => {
                let endpoint = moto_endpoint();
                let bucket = format!("bk-{:x}", rand_u64());
                create_bucket(endpoint, &bucket);
                (format!("s3://{bucket}/team"), s3_env(endpoint))
            }
            // One container (the script makes it); a prefix of its own per target.
            Kind::Azure => {
                let (endpoint, container) = azurite();
                (
                    format!("az://{container}/t-{:x}/team", rand_u64()),
                    az_env(&endpoint),
                )
            }
        };
        let t = Target {
            kind,
            url,
            env,
            dir,
        };
        if kind != Kind::Dir {
            let o = t.cmd("init").output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        t
    }

    /// `benchkeep --store URL --spool SPOOL` with this target's environment.
    pub fn cmd_with_spool(&self, spool: &Path) -> Command {
        url_cmd(&self.url, &self.env, spool, &[])
    }

    /// `benchkeep --store URL --spool <the test's spool> SUBCOMMAND`.
    pub fn cmd(&self, sub: &str) -> Command {
        let mut c = self.cmd_with_spool(&self.spool());
        c.arg(sub);
        c
    }

    /// The library's options for this target, as the CLI makes them from its variables.
    pub fn options(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("AZURE_"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    }

    /// The credential that must never appear in any output or file.
    pub fn secret(&self) -> &'static str {
        match self.kind {
            Kind::Azure => AZURITE_KEY,
            _ => SECRET,
        }
    }

    /// The spool commands use by default (for a directory store: the store itself).
    pub fn spool(&self) -> PathBuf {
        match self.kind {
            Kind::Dir => PathBuf::from(&self.url),
            _ => self.dir.path().join("spool"),
        }
    }

    /// A spool never used before: what another machine sees of the store.
    pub fn fresh_spool(&self) -> PathBuf {
        match self.kind {
            Kind::Dir => PathBuf::from(&self.url),
            _ => self.dir.path().join(format!("spool-{:x}", rand_u64())),
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// `benchkeep --store URL --spool SPOOL ARGS` with exactly the credentials `env` gives:
/// every cloud credential variable of the test's own environment ([`PROVIDER_VARS`])
/// removed first.
pub fn url_cmd(url: &str, env: &[(String, String)], spool: &Path, args: &[&str]) -> Command {
    let mut c = benchkeep();
    for (k, _) in std::env::vars() {
        if PROVIDER_VARS.iter().any(|p| k.starts_with(p)) {
            c.env_remove(k);
        }
    }
    c.args(["--store", url, "--spool"]).arg(spool).args(args);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c
}

/// `analyze` of a small fixture into the store at `url`: (exit code, stdout, stderr).
pub fn url_analyze(url: &str, env: &[(String, String)], spool: &Path) -> (i32, String, String) {
    let input = fixture("foundation/chat_ok_and_error.jsonl");
    let mut c = url_cmd(
        url,
        env,
        spool,
        &["analyze", "--platform", "p", "--model", "m"],
    );
    c.args(["--total-time", "10", "--input"]).arg(input);
    out(&mut c)
}

/// The environment of an S3-compatible endpoint (credentials included).
pub fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("BENCHKEEP_REMOTE_RETRIES", "1"),
        ("BENCHKEEP_REMOTE_TIMEOUT_S", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Azurite's well-known account key (public, but a credential all the same: never shown).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The environment of an Azure-compatible account URL (`http://host:port/devstoreaccount1`
/// for Azurite), with the provider's standard variables.
pub fn az_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
        ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY),
        ("AZURE_STORAGE_ENDPOINT", endpoint),
        ("AZURE_ALLOW_HTTP", "true"),
        ("BENCHKEEP_REMOTE_RETRIES", "1"),
        ("BENCHKEEP_REMOTE_TIMEOUT_S", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Azurite's account URL and container, from `scripts/with_azurite.sh`; fails loudly, saying
/// how to run, without them.
pub fn azurite() -> (String, String) {
    let endpoint = std::env::var("BENCHKEEP_TEST_AZ_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "the az:// tests (--features external-it,azure) need Azurite: run them under scripts/with_azurite.sh, which sets BENCHKEEP_TEST_AZ_ENDPOINT"
        )
    });
    let container =
        std::env::var("BENCHKEEP_TEST_AZ_CONTAINER").unwrap_or_else(|_| "benchkeep".into());
    (endpoint, container)
}

static MOTO: OnceLock<String> = OnceLock::new();
static MOTO_LOG: OnceLock<Option<PathBuf>> = OnceLock::new();

#[cfg(feature = "external-it")]
/// moto's request log (one line per request: `"GET /bucket/key HTTP/1.1" 200`), to count
/// what a command asked of the store: the log of the server started here, or
/// `BENCHKEEP_MOTO_LOG` (scripts/with_moto.sh sets it). `None`: an endpoint given without
/// its log.
pub fn moto_log() -> Option<&'static Path> {
    moto_endpoint();
    MOTO_LOG.get().and_then(|p| p.as_deref())
}

#[cfg(feature = "external-it")]
/// The requests moto logged for `bucket` from byte `from` of its log on: (method, path).
pub fn moto_requests(bucket: &str, from: u64) -> Vec<(String, String)> {
    let log = moto_log().expect("moto's log: run under scripts/with_moto.sh (BENCHKEEP_MOTO_LOG)");
    let bytes = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(&bytes[from as usize..]);
    let prefix = format!("/{bucket}");
    text.lines()
        .filter_map(|l| {
            let req = l.split('"').nth(1)?;
            let mut it = req.split_whitespace();
            let (method, path) = (it.next()?, it.next()?);
            (path == prefix
                || path.starts_with(&format!("{prefix}/"))
                || path.starts_with(&format!("{prefix}?")))
            .then(|| (method.to_string(), path.to_string()))
        })
        .collect()
}

#[cfg(feature = "external-it")]
/// The length of moto's log now (where the next request's line will start).
pub fn moto_log_len() -> u64 {
    let log = moto_log().expect("moto's log: run under scripts/with_moto.sh (BENCHKEEP_MOTO_LOG)");
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// The moto endpoint: `BENCHKEEP_TEST_S3_ENDPOINT` when CI started one, else a moto
/// server started here (`BENCHKEEP_MOTO`, or `moto_server` on PATH) that dies with this
/// test process. Fails loudly, with how to install it, when there is none.
pub fn moto_endpoint() -> &'static str {
    MOTO.get_or_init(|| {
        if let Ok(e) = std::env::var("BENCHKEEP_TEST_S3_ENDPOINT") {
            let _ = MOTO_LOG.set(std::env::var_os("BENCHKEEP_MOTO_LOG").map(PathBuf::from));
            return e;
        }
        let log = std::env::temp_dir().join(format!("benchkeep-it-moto-{}.log", std::process::id()));
        let _ = MOTO_LOG.set(Some(log.clone()));
        let bin = std::env::var("BENCHKEEP_MOTO").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let (tx, rx) = std::sync::mpsc::channel();
        // The starting thread lives as long as the process: moto gets SIGKILL when it ends.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut c = Command::new(&bin);
            let Ok(file) = std::fs::File::create(&log) else {
                tx.send(Err(format!("cannot create {}", log.display()))).unwrap();
                return;
            };
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(file);
            // SAFETY: prctl in the child before exec, async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let started = c.spawn().map(|_| ()).map_err(|e| {
                format!(
                    "cannot start {bin} ({e}): the external-it tests need moto's server (python3 -m pip install 'moto[server]'), or BENCHKEEP_MOTO=/path/to/moto_server, or BENCHKEEP_TEST_S3_ENDPOINT"
                )
            });
            tx.send(started).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap().unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until(Duration::from_secs(60), "moto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        endpoint
    })
}

/// One HTTP/1.1 request without a body to an endpoint: the status and body.
pub fn http(endpoint: &str, method: &str, path: &str) -> (u16, String) {
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn create_bucket(endpoint: &str, bucket: &str) {
    let (status, body) = http(endpoint, "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "creating bucket {bucket}: {body}");
}

/// How the fake endpoint misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Fake {
    /// Every request: 403 AccessDenied.
    Deny,
    /// Every PUT succeeds, even a second create with If-None-Match: * (no conditional
    /// writes); GET: 404; DELETE: 204.
    Overwrite,
}

/// Start a fake S3 endpoint on 127.0.0.1 port 0; its `http://` URL.
pub fn fake_s3(mode: Fake) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || serve(conn, mode));
        }
    });
    url
}

fn serve(conn: TcpStream, mode: Fake) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut first = String::new();
        if r.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let method = first.split_whitespace().next().unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, text) = match (mode, method.as_str()) {
            (Fake::Deny, _) => (
                "403 Forbidden",
                "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            ),
            (Fake::Overwrite, "PUT") => ("200 OK", ""),
            (Fake::Overwrite, "DELETE") => ("204 No Content", ""),
            (Fake::Overwrite, _) => (
                "404 Not Found",
                "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>no</Message></Error>",
            ),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: \"e1\"\r\nContent-Type: application/xml\r\n\r\n{text}",
            text.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
