//! Process identity (RELIABILITY P12): a run's writer is recorded as pid + start time +
//! boot id + host, so that a pid the kernel has since given to another process, or a pid
//! from before a reboot, never makes a dead run look alive.

use std::fs;

use crate::schema::{HostInfo, ProcessIdentity};

/// The identity of the process `pid` as this host sees it now (start time and boot id
/// are `None` where `/proc` cannot tell them).
pub fn identity_of(pid: u32) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        start_time: start_time(pid),
        boot_id: boot_id(),
        host: HostInfo::this().hostname,
    }
}

/// This process's identity.
pub fn this() -> ProcessIdentity {
    identity_of(std::process::id())
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks after boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the comm may hold spaces and ')'; fields resume after the last
    // ')', with field 3 (the state) first, so field 22 is the 20th from there.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Whether the process that wrote `pid` (and, when recorded, `recorded`) still runs on
/// this host. A pid that exists but belongs to another process (another start time, or a
/// boot since) counts as gone. Without a recorded identity (metadata from before it was
/// recorded), the pid alone decides, as it always did.
pub fn owner_alive(pid: u32, recorded: Option<&ProcessIdentity>) -> bool {
    if !super::verify::pid_alive(pid) {
        return false;
    }
    let Some(rec) = recorded.filter(|r| r.pid == pid) else {
        return true;
    };
    same_process(rec, &identity_of(pid))
}

/// Whether `now` (what this host says about a live pid) is the process `rec` describes.
pub fn same_process(rec: &ProcessIdentity, now: &ProcessIdentity) -> bool {
    if let (Some(a), Some(b)) = (&rec.boot_id, &now.boot_id)
        && a != b
    {
        return false;
    }
    if let (Some(a), Some(b)) = (rec.start_time, now.start_time)
        && a != b
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_itself_and_a_reused_pid_is_not() {
        let me = this();
        assert!(owner_alive(me.pid, Some(&me)));
        assert!(owner_alive(me.pid, None), "old metadata: the pid decides");
        if cfg!(target_os = "linux") {
            assert!(me.start_time.is_some() && me.boot_id.is_some(), "{me:?}");
            let other_start = ProcessIdentity {
                start_time: me.start_time.map(|t| t + 1),
                ..me.clone()
            };
            assert!(!owner_alive(me.pid, Some(&other_start)));
            let other_boot = ProcessIdentity {
                boot_id: Some("another-boot".into()),
                ..me.clone()
            };
            assert!(!owner_alive(me.pid, Some(&other_boot)));
        }
    }
}
