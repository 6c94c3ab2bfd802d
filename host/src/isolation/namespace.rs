//! The worker's own PID namespace, set up first thing after `exec`, while
//! the process is still single-threaded.
//!
//! Three processes per worker:
//!
//! ```text
//! host ── W: `southbound __worker` (the host's child; outside the namespace)
//!           └── I: PID 1 of the namespace; reaps orphans, reports P's end
//!                 └── P: PID 2, the worker proper: loads the driver, serves calls
//! ```
//!
//! Why:
//! - When a namespace's PID 1 ends, the kernel kills every process in it, so
//!   whatever a driver started ends with its worker, daemons that left the
//!   process group with `setsid` included, and even when the host is killed
//!   with SIGKILL (host → W → I by `PR_SET_PDEATHSIG`).
//! - Inside, no process outside is visible: a driver cannot signal the host
//!   or another worker by pid.
//! - P is not PID 1, so signals behave as usual for the driver's code
//!   (`abort` ends it with SIGABRT; an init would ignore that).
//! - W ends the way P ended (its exit code, or its signal), so the host
//!   reads the cause from its own child as before.
//!
//! Where no namespace can be made (a kernel or container that refuses
//! `unshare`), or `pid_namespace = false`, the worker runs in W itself,
//! fenced by its process group only, and says so in its handshake
//! ([`Containment`](super::containment::Containment)).

use std::io::{Error, Read};
use std::os::fd::{FromRawFd, RawFd};

/// Enters a new PID namespace (inside a new user namespace when not root).
/// Returns `Ok` in P, the worker proper; never returns in W and I. Returns
/// `Err` (in W, the only process) when no namespace can be made.
///
/// `keep_out` are descriptors that belong to P alone (the channel, stdout,
/// stderr): W and I close them, so that the host sees them close when P ends.
///
/// Must be called before any thread is started.
pub fn enter(keep_out: &[RawFd]) -> Result<(), String> {
    // SAFETY: plain syscalls on this process's own state; the process is
    // single-threaded (the caller's contract), so fork is safe.
    unsafe {
        let root = libc::geteuid() == 0;
        let (uid, gid) = (libc::geteuid(), libc::getegid());
        let flags = if root {
            libc::CLONE_NEWPID
        } else {
            libc::CLONE_NEWUSER | libc::CLONE_NEWPID
        };
        if libc::unshare(flags) == -1 {
            return Err(format!("unshare: {}", Error::last_os_error()));
        }
        if !root {
            map_own_ids(uid, gid)?;
        }
        let (lifeline, status) = (pipe()?, pipe()?);
        match libc::fork() {
            -1 => Err(format!("fork: {}", Error::last_os_error())),
            0 => {
                libc::close(lifeline.1);
                libc::close(status.0);
                init(lifeline.0, status.1, keep_out)
            }
            init_pid => {
                libc::close(lifeline.0);
                libc::close(status.1);
                outer(init_pid, status.0, keep_out)
            }
        }
    }
}

/// Maps this process's uid and gid to themselves in its new user namespace,
/// so the driver sees its real ids.
fn map_own_ids(uid: libc::uid_t, gid: libc::gid_t) -> Result<(), String> {
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|e| format!("cannot write {file}: {e}"))
    };
    write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    write("/proc/self/setgroups", "deny\n".into())?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(RawFd, RawFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(format!("pipe: {}", Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

/// Closes P's descriptors in W or I: stdout and stderr become /dev/null.
///
/// # Safety
/// Only for W and I, which never use these descriptors again.
unsafe fn let_go(keep_out: &[RawFd]) {
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    for &fd in keep_out {
        if (fd == libc::STDOUT_FILENO || fd == libc::STDERR_FILENO) && null >= 0 {
            libc::dup2(null, fd);
        } else {
            libc::close(fd);
        }
    }
    if null > libc::STDERR_FILENO {
        libc::close(null);
    }
}

/// W: waits for I and ends as P ended (I reports P's wait status on
/// `status`); if I ended without reporting, as I ended.
///
/// # Safety
/// Called once, in W after the fork.
unsafe fn outer(init_pid: libc::pid_t, status: RawFd, keep_out: &[RawFd]) -> ! {
    let_go(keep_out);
    let mut reported = [0u8; 4];
    let mut pipe = std::fs::File::from_raw_fd(status);
    let got = pipe.read_exact(&mut reported).is_ok();
    let mut init_status = 0;
    while libc::waitpid(init_pid, &mut init_status, 0) == -1
        && Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    end_as(if got {
        i32::from_ne_bytes(reported)
    } else {
        init_status
    })
}

/// I: PID 1 of the namespace. Dies with W; starts P; reaps every process
/// that ends in the namespace; when P ends, reports its wait status to W and
/// exits, which ends everything left in the namespace.
///
/// # Safety
/// Called once, in I after the fork.
unsafe fn init(lifeline: RawFd, status: RawFd, keep_out: &[RawFd]) -> Result<(), String> {
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
        libc::_exit(1);
    }
    // W may have died before the prctl: its end of the lifeline is then
    // closed, and the pipe reads as ended.
    let mut poll = libc::pollfd {
        fd: lifeline,
        events: libc::POLLIN,
        revents: 0,
    };
    if libc::poll(&mut poll, 1, 0) != 0 {
        libc::_exit(1);
    }
    libc::close(lifeline);
    let worker = libc::fork();
    if worker == -1 {
        libc::_exit(1);
    }
    if worker == 0 {
        libc::close(status);
        // Its own session and process group: the driver's `kill(0, ..)`
        // reaches only P and what it started.
        libc::setsid();
        return Ok(());
    }
    let_go(keep_out);
    loop {
        let mut wait_status = 0;
        let ended = libc::waitpid(-1, &mut wait_status, 0);
        if ended == worker {
            let bytes = wait_status.to_ne_bytes();
            libc::write(status, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
        if ended == -1 && Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            libc::_exit(1);
        }
    }
}

/// Ends this process the way a wait status says another one ended.
///
/// # Safety
/// Only at the end of W.
unsafe fn end_as(wait_status: i32) -> ! {
    if libc::WIFSIGNALED(wait_status) {
        let signal = libc::WTERMSIG(wait_status);
        // The same signal, without a core dump of W.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
        libc::raise(signal);
        libc::_exit(128 + signal);
    }
    libc::_exit(if libc::WIFEXITED(wait_status) {
        libc::WEXITSTATUS(wait_status)
    } else {
        1
    })
}

/// This process's pid as the host sees it (`/proc` is the host's mount).
pub fn host_pid() -> u32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(std::process::id)
}
