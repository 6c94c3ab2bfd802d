//! What fences a worker in, set up between `fork` and `exec`:
//!
//! - its own session and process group (`setsid`): a driver's `kill(0, ..)`
//!   reaches only its own processes, and the host kills the whole group when
//!   the worker ends, so what a driver started ends with it;
//! - its memory bound: it joins its memory cgroup, or gets an address-space
//!   limit ([`memory`](super::memory) says which and why);
//! - a seccomp filter (seccompiler) refusing, with `EPERM`, the signals aimed
//!   at the host: `kill`/`tkill`/`tgkill`/`rt_(tg)sigqueueinfo` of its pid,
//!   `kill(-1)` and `kill` of its process group, `pidfd_open` of its pid.
//!   A static filter cannot tell another worker's pid from the driver's own
//!   children: Landlock's signal scoping, which the worker sets up itself
//!   after `exec` ([`containment`](super::containment)), refuses those.
//!
//! Everything here that runs in the child is async-signal-safe: the filter is
//! compiled in the parent, before `fork`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// The seccomp program refusing signals aimed at the host (`host_pid`, its
/// process group `host_pgid`).
pub fn signal_filter(host_pid: i32, host_pgid: i32) -> Result<BpfProgram, String> {
    // pid_t arguments are compared as 32-bit words.
    let word = |value: i32| u64::from(value as u32);
    let arg0_is = |value: i32| -> Result<SeccompRule, String> {
        let condition =
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, word(value))
                .map_err(|e| e.to_string())?;
        SeccompRule::new(vec![condition]).map_err(|e| e.to_string())
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(
        libc::SYS_kill,
        vec![arg0_is(host_pid)?, arg0_is(-1)?, arg0_is(-host_pgid)?],
    );
    for syscall in [
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_pidfd_open,
    ] {
        rules.insert(syscall, vec![arg0_is(host_pid)?]);
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Installs `filter` in the calling process (the child, after `fork`).
pub fn apply(filter: &BpfProgram) -> std::io::Result<()> {
    seccompiler::apply_filter(filter).map_err(|e| match e {
        seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => io,
        _ => std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// Kills every process left in the worker's process group (`pgid` is the
/// worker's pid: it leads its own session).
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: a plain kill(2) of a process group this host created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}
