//! Starting a worker process inside its fences, and naming how it ended.
//!
//! Invariants:
//! - Workers die with the host: `PR_SET_PDEATHSIG` (SIGKILL) covers every way
//!   the host can die, and a worker also exits when its channel closes.
//!   Workers are started from async tasks, never from `spawn_blocking`
//!   threads: the death signal follows the *thread* that forked.
//! - The child is fenced in before `exec` (its channel on fd 3, its memory
//!   bound, its own session, the seccomp filter): the driver's first
//!   instruction already runs inside.
//! - Everything that can fail is done before the memory cgroup is made: from
//!   [`launch`]'s return on, the caller owns the process and its cgroup.
//! - Credentials are never in argv or the environment: they travel only in
//!   `Call` frames on the channel.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use super::containment::Fences;
use super::memory::{MemoryFence, WorkerCgroup, MALLOC_ARENAS};
use super::protocol::{widen_answer_buffer, WORKER_CHANNEL_FD};
use super::{sandbox, worker_refusal, DriverSettings};
use crate::loader::Refusal;

/// A worker process just started.
pub(super) struct Launched {
    /// The process (killed if dropped).
    pub child: tokio::process::Child,
    /// Its memory bound: the cgroup to end once it has exited, if any.
    pub memory: MemoryFence,
    /// How its memory is bounded, as `drivers list` shows it.
    pub memory_limit: String,
}

/// Starts `exe` in worker mode for the driver file `path`, with
/// `child_end` as its channel (fd 3), answers of at most `max_answer` bytes,
/// and the fences `settings` ask for.
pub(super) async fn launch(
    exe: &Path,
    path: &Path,
    settings: &DriverSettings,
    max_answer: usize,
    child_end: UnixStream,
) -> Result<Launched, Refusal> {
    let child_fd = child_end.as_raw_fd();
    if let Err(e) = widen_answer_buffer(&child_end, max_answer) {
        // Answers still pass, only in more writes.
        tracing::debug!("cannot widen the worker channel's send buffer: {e}");
    }
    let parent = std::process::id() as libc::pid_t;

    let filter = if settings.signal_filter {
        // SAFETY: getpgrp(2) cannot fail.
        let host_pgid = unsafe { libc::getpgrp() };
        Some(sandbox::signal_filter(parent, host_pgid).map_err(|e| {
            worker_refusal(format!("cannot build the worker's seccomp filter: {e}"))
        })?)
    } else {
        None
    };
    let memory = MemoryFence::for_worker(settings.memory_limit_mib, settings.memory_cgroup);
    let memory_limit = memory.describe(settings.memory_limit_mib);
    // What the child does with it: join the cgroup, or limit its address space.
    let (cgroup_procs, address_space) = match &memory {
        MemoryFence::Cgroup(cgroup) => (Some(cgroup.procs().to_owned()), None),
        MemoryFence::AddressSpace => (
            None,
            Some(settings.memory_limit_mib.saturating_mul(1024 * 1024) as libc::rlim_t),
        ),
    };
    let mut cmd = tokio::process::Command::new(exe);
    if address_space.is_some() {
        cmd.env("MALLOC_ARENA_MAX", MALLOC_ARENAS);
    }
    cmd.args(super::worker::worker_args(
        WORKER_CHANNEL_FD,
        max_answer,
        Fences {
            pid_namespace: settings.pid_namespace,
            signal_scope: settings.signal_filter,
        },
        path,
    ))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if child_fd == WORKER_CHANNEL_FD {
                if libc::fcntl(child_fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(child_fd, WORKER_CHANNEL_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The host may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if let Some(procs) = &cgroup_procs {
                WorkerCgroup::join(procs)?;
            }
            if let Some(limit) = address_space {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &rlimit) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Its own session and process group (see `sandbox`).
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(filter) = &filter {
                sandbox::apply(filter)?;
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            if let MemoryFence::Cgroup(cgroup) = memory {
                cgroup.end().await;
            }
            return Err(worker_refusal(format!(
                "cannot start a worker ({}): {e}",
                exe.display()
            )));
        }
    };
    // The child has its copy (fd 3); the host's would keep the channel open
    // after the worker died.
    drop(child_end);
    Ok(Launched {
        child,
        memory,
        memory_limit,
    })
}

/// The name of the signals a worker commonly dies of.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

/// How a worker ended, as the calls it fails and the logs name it: the
/// signal or exit code, a channel the driver broke, and whether it ran out
/// of memory first (its own report, or the cgroup's OOM kill count).
pub(super) fn describe_exit(
    status: std::io::Result<std::process::ExitStatus>,
    out_of_memory: bool,
    memory_limit_mib: u64,
) -> String {
    let base = match status {
        Err(e) => format!("could not be waited for: {e}"),
        Ok(s) => match (s.signal(), s.code()) {
            (Some(sig), _) => format!("was killed by signal {sig} ({})", signal_name(sig)),
            (None, Some(code)) if code == i32::from(super::worker::EXIT_CHANNEL_BROKEN) => format!(
                "exited with code {code}: channel broken (the driver closed or replaced the worker's channel)"
            ),
            (None, Some(code)) => format!("exited with code {code}"),
            (None, None) => "ended".into(),
        },
    };
    if out_of_memory {
        format!("ran out of memory (limit {memory_limit_mib} MiB) and {base}")
    } else {
        base
    }
}
