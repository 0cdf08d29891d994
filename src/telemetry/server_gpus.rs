//! The server's own GPUs, for a server on this host: the process listening on its port
//! (`/proc/net/tcp` and `tcp6` give the listening socket's inode, the `/proc/<pid>/fd`
//! links give the process holding it), that process's descendants (an engine core, a model
//! runner) and its ancestors up to but not including pid 1 and benchkeep itself, and the
//! GPUs on which any of them runs compute work (NVML's per-process list, else
//! `nvidia-smi --query-compute-apps=pid,gpu_uuid`).
//!
//! `/proc` is read with caps ([`MAX_PROCS`] processes, [`MAX_FD_LINKS`] descriptor links,
//! [`MAX_NET_LINES`] socket lines of at most [`MAX_LINE`] bytes, [`MAX_DEPTH`] ancestors),
//! and races are part of the job: a process that ends, or that benchkeep may not inspect
//! (another user's, another container's), is skipped, never an error by itself. When
//! nothing is found the caller keeps its GPU choice and records why.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{GpuMode, VisibleDevices};

/// Processes looked at in `/proc`.
pub const MAX_PROCS: usize = 1 << 16;
/// Descriptor links read in all (a busy host has many sockets).
pub const MAX_FD_LINKS: usize = 1 << 22;
/// Lines read from each of `/proc/net/tcp` and `tcp6`.
pub const MAX_NET_LINES: usize = 1 << 20;
/// Longest line read from a `/proc` file.
pub const MAX_LINE: usize = 4096;
/// Ancestors followed up from the listening process.
pub const MAX_DEPTH: usize = 64;
/// Longest wait for `nvidia-smi --query-compute-apps`.
const SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// The processes behind a server's port.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProcs {
    /// The processes holding the listening socket.
    pub listeners: Vec<u32>,
    /// The listeners, their descendants and their ancestors (not pid 1, not benchkeep).
    pub pids: BTreeSet<u32>,
}

/// The GPUs of the server on `port` of this host, as the selection to sample, or why they
/// could not be found. `me` is benchkeep's own pid (it and its children are never the
/// server's).
pub fn find(mode: GpuMode, port: u16, me: u32) -> Result<VisibleDevices, String> {
    let procs = server_processes(Path::new("/proc"), port, me)?;
    let apps = compute_apps(mode)?;
    select(&procs, &apps)
}

/// The selection from the server's processes and the `(pid, GPU uuid)` compute apps.
pub fn select(procs: &ServerProcs, apps: &[(u32, String)]) -> Result<VisibleDevices, String> {
    let mut uuids: Vec<String> = Vec::new();
    let mut users: BTreeSet<u32> = BTreeSet::new();
    for (pid, uuid) in apps {
        if procs.pids.contains(pid) {
            users.insert(*pid);
            if !uuids.contains(uuid) {
                uuids.push(uuid.clone());
            }
        }
    }
    let listeners = join(&procs.listeners);
    if uuids.is_empty() {
        return Err(format!(
            "no GPU lists a compute process of the server (process {listeners} and its {} relatives; {} compute processes on the GPUs)",
            procs.pids.len().saturating_sub(procs.listeners.len()),
            apps.len()
        ));
    }
    let mut why = format!("server process {listeners} on {}", uuids.join(", "));
    let others: Vec<u32> = users
        .iter()
        .copied()
        .filter(|p| !procs.listeners.contains(p))
        .collect();
    if !others.is_empty() {
        why.push_str(&format!(" (compute in process {})", join(&others)));
    }
    Ok(VisibleDevices::server(uuids, why))
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The processes behind `port` on this host, read from `proc_root` (`/proc`).
pub fn server_processes(proc_root: &Path, port: u16, me: u32) -> Result<ServerProcs, String> {
    let mut inodes = HashSet::new();
    for file in ["net/tcp", "net/tcp6"] {
        if let Ok(f) = std::fs::File::open(proc_root.join(file)) {
            listening_inodes(f, port, &mut inodes);
        }
    }
    if inodes.is_empty() {
        return Err(format!("nothing listens on port {port} on this host"));
    }
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut listeners = Vec::new();
    let mut links = 0usize;
    let entries = std::fs::read_dir(proc_root)
        .map_err(|e| format!("cannot read {}: {e}", proc_root.display()))?;
    for entry in entries.flatten().take(MAX_PROCS * 2) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent.len() >= MAX_PROCS {
            break;
        }
        // A process that ended since the listing is simply not there.
        let Some(ppid) = read_ppid(&entry.path().join("stat")) else {
            continue;
        };
        parent.insert(pid, ppid);
        if links < MAX_FD_LINKS && holds_socket(&entry.path(), &inodes, &mut links) {
            listeners.push(pid);
        }
    }
    listeners.sort_unstable();
    if listeners.is_empty() {
        return Err(format!(
            "port {port} listens, but not in a process benchkeep may inspect (a server of another user or in a container: name its GPUs with --gpu-index)"
        ));
    }
    if listeners.contains(&me) {
        return Err("the server on that port is benchkeep itself".into());
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &ppid) in &parent {
        children.entry(ppid).or_default().push(pid);
    }
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    for &l in &listeners {
        // Descendants, leaving out benchkeep and its own children.
        let mut stack = vec![l];
        while let Some(p) = stack.pop() {
            if p == me || !pids.insert(p) {
                continue;
            }
            stack.extend(children.get(&p).into_iter().flatten().copied());
        }
        // Ancestors, up to but not including pid 1 and benchkeep.
        let mut p = l;
        for _ in 0..MAX_DEPTH {
            match parent.get(&p) {
                Some(&up) if up > 1 && up != me => {
                    pids.insert(up);
                    p = up;
                }
                _ => break,
            }
        }
    }
    Ok(ServerProcs { listeners, pids })
}

/// Add the inodes of sockets listening on `port` in a `/proc/net/tcp{,6}` text.
fn listening_inodes(r: impl Read, port: u16, out: &mut HashSet<u64>) {
    let want = format!(":{port:04X}");
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    for _ in 0..MAX_NET_LINES {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() >= MAX_LINE {
            // Not a socket line: skip the rest of it.
            let mut rest = Vec::new();
            while (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut rest)
                .is_ok_and(|n| n > 0)
                && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let f: Vec<&str> = text.split_whitespace().collect();
        // sl local rem st queues timer retrnsmt uid timeout inode
        if f.len() < 10 || f[3] != "0A" || !f[1].ends_with(&want) {
            continue;
        }
        if let Ok(inode) = f[9].parse::<u64>()
            && inode != 0
        {
            out.insert(inode);
        }
    }
}

/// The parent pid from a `/proc/<pid>/stat` (the command name may hold spaces and
/// parentheses: the fields follow the last `)`).
fn read_ppid(stat: &Path) -> Option<u32> {
    let mut buf = Vec::new();
    std::fs::File::open(stat)
        .ok()?
        .take(MAX_LINE as u64)
        .read_to_end(&mut buf)
        .ok()?;
    parse_ppid(&String::from_utf8_lossy(&buf))
}

fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the process at `dir` holds one of `inodes` among its descriptors.
fn holds_socket(dir: &Path, inodes: &HashSet<u64>, links: &mut usize) -> bool {
    let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
        return false;
    };
    for fd in fds.flatten() {
        *links += 1;
        if *links > MAX_FD_LINKS {
            return false;
        }
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(n) = t
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<u64>().ok())
            && inodes.contains(&n)
        {
            return true;
        }
    }
    false
}

/// `(pid, GPU uuid)` of every compute process on the GPUs, from the source `mode` names
/// (auto: NVML, else nvidia-smi).
fn compute_apps(mode: GpuMode) -> Result<Vec<(u32, String)>, String> {
    match mode {
        GpuMode::Nvml => super::nvml::compute_apps(),
        GpuMode::NvidiaSmi => smi_compute_apps(),
        GpuMode::Auto => super::nvml::compute_apps()
            .or_else(|a| smi_compute_apps().map_err(|b| format!("{a}; {b}"))),
        GpuMode::RocmSmi => Err("rocm-smi: the per-process GPU list is not read".into()),
        GpuMode::Off => Err("GPU telemetry is off".into()),
    }
}

/// `nvidia-smi --query-compute-apps=pid,gpu_uuid --format=csv,noheader`.
fn smi_compute_apps() -> Result<Vec<(u32, String)>, String> {
    let out = super::nvidia_smi::run_with_timeout(
        Command::new("nvidia-smi")
            .arg("--query-compute-apps=pid,gpu_uuid")
            .arg("--format=csv,noheader"),
        SMI_TIMEOUT,
    )?;
    Ok(parse_compute_apps(&out))
}

/// `pid, GPU-uuid` lines (others skipped: a header, `No running processes found`).
pub fn parse_compute_apps(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .take(MAX_NET_LINES)
        .filter_map(|l| {
            let (pid, uuid) = l.split_once(',')?;
            let uuid = uuid.trim();
            Some((pid.trim().parse().ok()?, uuid))
                .filter(|(_, u)| u.starts_with("GPU-") || u.starts_with("MIG-"))
                .map(|(p, u)| (p, u.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_and_stat() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0\n";
        let tcp6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n";
        let mut inodes = HashSet::new();
        listening_inodes(tcp.as_bytes(), 8080, &mut inodes);
        listening_inodes(tcp6.as_bytes(), 8080, &mut inodes);
        // the connected socket (state 01) and port 80 are not port 8080's listeners
        assert_eq!(inodes, HashSet::from([4242, 777]));
        let long = format!("{}\n{tcp}", "x".repeat(MAX_LINE * 3));
        let mut again = HashSet::new();
        listening_inodes(long.as_bytes(), 8080, &mut again);
        assert_eq!(again, HashSet::from([4242]), "an over-long line is skipped");
        assert_eq!(parse_ppid("12 (a) b) (c) S 7 12 12 0 -1"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn finds_this_process_listening() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id();
        // A child of the listener (as vLLM's engine core is) and its parent (a launcher).
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let procs = server_processes(Path::new("/proc"), port, 0).unwrap();
        let up = std::os::unix::process::parent_id();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(procs.listeners, [me]);
        assert!(procs.pids.contains(&me), "{procs:?}");
        assert!(procs.pids.contains(&child.id()), "a descendant: {procs:?}");
        assert!(
            up <= 1 || procs.pids.contains(&up),
            "an ancestor: {procs:?}"
        );
        assert!(!procs.pids.contains(&1));
        // benchkeep itself (here: the child standing for it) and its subtree are left out
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let without = server_processes(Path::new("/proc"), port, child.id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(!without.pids.contains(&child.id()), "{without:?}");
        let e = server_processes(Path::new("/proc"), port, me).unwrap_err();
        assert!(e.contains("benchkeep itself"), "{e}");
        drop(l);
        let e = server_processes(Path::new("/proc"), port, 0).unwrap_err();
        assert!(e.contains("nothing listens"), "{e}");
    }

    #[test]
    fn selects_the_servers_gpus() {
        let procs = ServerProcs {
            listeners: vec![100],
            pids: BTreeSet::from([90, 100, 101]),
        };
        let apps = parse_compute_apps(
            "pid, gpu_uuid\n101, GPU-bbb\n555, GPU-aaa\n100, GPU-bbb\nNo running processes found\n",
        );
        assert_eq!(apps.len(), 3);
        let v = select(&procs, &apps).unwrap();
        assert_eq!(
            v.describe(),
            "server process 100 on GPU-bbb (compute in process 101)"
        );
        let e = select(&procs, &apps[1..2]).unwrap_err();
        assert!(e.contains("no GPU lists a compute process"), "{e}");
    }
}
