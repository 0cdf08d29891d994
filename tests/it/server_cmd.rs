//! Managed servers (`record::server`): the built-in simulator started as a server command,
//! waited for until its health check answers, and stopped (SIGTERM to its process group,
//! SIGKILL after the grace time), also when the handle is dropped.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use crate::support::api::record::{ManagedServer, ServerCommand, ServerOptions, health_ok};
use crate::support::{BIN, free_port};

fn options(dir: &Path, port: u16) -> ServerOptions {
    let mut o = ServerOptions::new(
        format!("http://127.0.0.1:{port}/health"),
        dir.join("server.log"),
        vec![("PATH".into(), "/usr/bin:/bin".into())],
    );
    o.poll = Duration::from_millis(20);
    o.ready_timeout = Duration::from_secs(60);
    o
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_simulator_is_started_waited_for_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let opts = options(dir.path(), port);
    let cmd = ServerCommand::Argv(vec![
        BIN.into(),
        "simulate".into(),
        "--port".into(),
        port.to_string(),
        "--no-delay".into(),
    ]);
    let mut server = ManagedServer::start(&cmd, &opts).expect("the simulator becomes ready");
    assert!(health_ok(&opts.health_url, Duration::from_secs(5)));
    let pid = server.pid();
    let ended = server.stop().expect("it ended");
    // The simulator ends on SIGTERM by itself, well within the grace time.
    assert_eq!(ended.signal(), None, "{ended:?}");
    assert!(!alive(pid));
    assert!(!health_ok(&opts.health_url, Duration::from_millis(500)));
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");

    // Dropping the handle stops it too.
    let port = free_port();
    let opts = options(dir.path(), port);
    let cmd = ServerCommand::Shell(format!("exec {BIN} simulate --port {port} --no-delay"));
    let server = ManagedServer::start(&cmd, &opts).unwrap();
    let pid = server.pid();
    drop(server);
    assert!(!alive(pid));
    assert!(!health_ok(&opts.health_url, Duration::from_millis(500)));
}

#[test]
fn a_group_that_ignores_sigterm_is_killed_after_the_grace_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut opts = options(dir.path(), port);
    opts.stop_grace = Duration::from_millis(300);
    // The shell ignores SIGTERM and loops; the simulator it started answers the health
    // check. Only SIGKILL ends the shell.
    let cmd = ServerCommand::Shell(format!(
        "trap '' TERM; {BIN} simulate --port {port} --no-delay & while :; do sleep 0.05; done"
    ));
    let mut server = ManagedServer::start(&cmd, &opts).unwrap();
    let ended = server.stop().expect("it ended");
    assert_eq!(ended.signal(), Some(9), "{ended:?}");
    assert!(!health_ok(&opts.health_url, Duration::from_millis(500)));
}

#[test]
fn a_server_that_dies_while_loading_is_a_server_error_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), free_port());
    let cmd = ServerCommand::Shell(
        "echo 'torch.OutOfMemoryError: CUDA out of memory' >&2; exit 1".into(),
    );
    let err = ManagedServer::start(&cmd, &opts).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("exit code 1"), "{msg}");
    assert!(msg.contains("CUDA out of memory"), "{msg}");
    assert_eq!(
        crate::support::api::error::exit_code_for(&err),
        crate::support::api::error::exit::SERVER
    );
}
