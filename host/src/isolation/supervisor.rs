//! The host side of worker isolation: a [`WorkerDriver`] runs one driver in
//! a `southbound __worker` child process and supervises it.
//!
//! Invariants:
//! - A call never outlives its deadline: the host waits the call's timeout
//!   plus [`KILL_GRACE`] (so a cooperative driver can report its own
//!   timeout), then kills the worker; the call fails "timed out after N s".
//! - A worker that dies fails every call in flight with the cause named
//!   (signal, exit code, out of memory), and is restarted with exponential
//!   backoff; [`DriverSettings::crash_loop_limit`] deaths within the window
//!   quarantine the driver until it is replaced.
//! - Workers die with the host: `PR_SET_PDEATHSIG` (SIGKILL) covers every way
//!   the host can die, and a worker also exits when its channel closes.
//!   Workers are spawned from async tasks, never from `spawn_blocking`
//!   threads: the death signal follows the *thread* that forked.
//! - Credentials travel only in `Call` frames on the channel: never in argv
//!   or the environment.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use southbound_sdk::log::Level;
use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult, SDK_VERSION};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{oneshot, watch, Notify};

use super::containment::{Containment, Fences};
use super::memory::{MemoryFence, WorkerCgroup, MALLOC_ARENAS};
use super::protocol::{
    decode_handshake, read_body_async, read_incoming_async, widen_answer_buffer, write_frame_async,
    EncodedAnswer, HostMessage, Incoming, WorkerMessage, PROTOCOL_VERSION, WORKER_CHANNEL_FD,
};
use super::sandbox;
use crate::loader::Refusal;

use super::{Driver, DriverRequest, DriverResponse, DriverSettings, DriverStatus, Isolation};

/// How long past a call's deadline the host waits before killing the worker.
pub const KILL_GRACE: Duration = Duration::from_secs(1);
/// How long a broken channel waits for the worker's own exit before the
/// host kills it (and names the broken channel as the cause).
const CHANNEL_BREAK_GRACE: Duration = Duration::from_millis(250);
/// The state letter of a process (`R`, `S`, `T` for stopped, ...), from
/// `/proc/<pid>/stat`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ...`: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// What Rust's allocation-failure handler prints before aborting.
fn is_out_of_memory_line(line: &str) -> bool {
    line.contains("memory allocation of") && line.contains("failed")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `2`, `0.5`: seconds to one decimal, without a trailing `.0`.
fn seconds(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

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

/// One worker process and its channel.
struct Worker {
    /// The process serving calls, as the host sees it: the host's child
    /// until the handshake names the worker proper inside its PID namespace.
    pid: Arc<AtomicU32>,
    /// How its processes are contained (from the handshake).
    containment: std::sync::OnceLock<Containment>,
    /// How its memory is bounded, as `drivers list` shows it.
    memory_limit: String,
    label: Label,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Calls waiting for their answer (decoded by the waiting call).
    pending: Mutex<HashMap<u64, oneshot::Sender<DriverResult<EncodedAnswer>>>>,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    idle: Notify,
    kill: Mutex<Option<oneshot::Sender<String>>>,
    exit: watch::Receiver<Option<String>>,
    started: Instant,
    /// The worker reported an allocation failure on its stderr.
    out_of_memory: Arc<AtomicBool>,
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlight<'a>(&'a Worker);

impl<'a> InFlight<'a> {
    fn new(worker: &'a Worker) -> Self {
        worker.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(worker)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Worker {
    fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    fn name(&self) -> String {
        lock(&self.label).clone()
    }

    /// The error of a call the worker died under: internal (a driver bug), or
    /// unavailable when the host killed it for another call's sake.
    fn death_error(&self, cause: &str, killed_by_host: bool) -> DriverError {
        let message = format!(
            "driver {}: worker (pid {}) {cause}",
            self.name(),
            self.pid()
        );
        if killed_by_host {
            DriverError::unavailable(message)
        } else {
            DriverError::internal(message)
        }
    }

    /// Alive and not being killed: a worker the host has decided to kill
    /// takes no new calls, even before its exit is seen.
    fn is_alive(&self) -> bool {
        self.exit.borrow().is_none() && lock(&self.kill).is_some()
    }

    /// Kills the process; `reason` says why (shown to the calls in flight).
    fn kill(&self, reason: String) {
        if let Some(kill) = lock(&self.kill).take() {
            let _ = kill.send(reason);
        }
    }

    /// The channel is unusable: if the worker is ending by itself, its own
    /// cause (a signal, an exit code) is the one to name, so give its exit a
    /// moment to show; otherwise kill it for `reason`. Returns the cause, and
    /// whether the host killed it.
    async fn ended_or_killed(&self, reason: &str) -> (String, bool) {
        if let Ok(cause) = tokio::time::timeout(CHANNEL_BREAK_GRACE, self.exited()).await {
            return (cause, false);
        }
        tracing::warn!(driver = %self.name(), pid = self.pid(), "worker {reason}");
        self.kill(reason.to_string());
        (self.exited().await, true)
    }

    /// Waits for the process to end; returns the cause.
    async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        loop {
            if let Some(cause) = exit.borrow_and_update().clone() {
                return cause;
            }
            if exit.changed().await.is_err() {
                return "ended".into();
            }
        }
    }

    /// Sends one call and waits for its reply until `deadline` plus
    /// [`KILL_GRACE`]; `timeout` is the call's nominal timeout, for the message.
    async fn call(
        &self,
        ctx: CallContext,
        request: DriverRequest,
        timeout: Duration,
        deadline: tokio::time::Instant,
    ) -> DriverResult<DriverResponse> {
        let name = request.name();
        let _in_flight = InFlight::new(self);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let died = self.exit.borrow().clone();
        if let Some(cause) = died {
            // Died before the call was registered: the waiter will not answer it.
            lock(&self.pending).remove(&id);
            return Err(self.death_error(&cause, false));
        }
        let sent = write_frame_async(
            &mut *self.writer.lock().await,
            &HostMessage::Call {
                id,
                ctx,
                request: Box::new(request),
            },
        )
        .await;
        if let Err(e) = sent {
            if e.kind() == std::io::ErrorKind::Other {
                // Could not even be encoded: the worker never saw it.
                lock(&self.pending).remove(&id);
                return Err(DriverError::internal(format!(
                    "{name}: cannot send the call to the worker: {e}"
                )));
            }
            // A broken channel means the worker is dying: its cause will answer below.
        }
        match tokio::time::timeout_at(deadline + KILL_GRACE, rx).await {
            Ok(Ok(Ok(answer))) => match answer.decode() {
                Ok(result) => result.map_err(super::bounded_error),
                // Junk in place of an answer: the channel cannot be trusted.
                Err(e) => {
                    let (cause, killed) =
                        self.ended_or_killed(&format!("channel broken: {e}")).await;
                    Err(self.death_error(&cause, killed))
                }
            },
            Ok(Ok(Err(death))) => Err(death),
            Ok(Err(_)) => Err(DriverError::unavailable(format!(
                "driver {}: worker (pid {}) went away during {name}",
                self.name(),
                self.pid()
            ))),
            Err(_) => {
                lock(&self.pending).remove(&id);
                let secs = seconds(timeout);
                // Why it did not answer, when the system can tell.
                let why = if process_state(self.pid()) == Some('T') {
                    "; the worker was stopped (SIGSTOP)"
                } else if self.out_of_memory.load(Ordering::SeqCst) {
                    "; the worker had reported running out of memory"
                } else {
                    ""
                };
                self.kill(format!("{name} timed out after {secs} s{why}"));
                Err(DriverError::timeout(format!(
                    "driver {}: {name} timed out after {secs} s{why}; worker (pid {}) killed",
                    self.name(),
                    self.pid()
                )))
            }
        }
    }

    /// Lets the calls in flight finish, asks the worker to exit, and kills
    /// it if it has not within `grace`.
    async fn shutdown(&self, grace: Duration) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 || !self.is_alive() {
                break;
            }
            idle.await;
        }
        let _ = write_frame_async(&mut *self.writer.lock().await, &HostMessage::Shutdown).await;
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            self.kill(format!(
                "did not exit within the {} s shutdown grace period",
                seconds(grace)
            ));
            self.exited().await;
        }
    }
}

fn log_line(label: &str, pid: u32, stream: &str, line: &str) {
    match southbound_sdk::log::parse_line(line) {
        Some((Level::Error, msg)) => tracing::error!(driver = label, pid, "{msg}"),
        Some((Level::Warn, msg)) => tracing::warn!(driver = label, pid, "{msg}"),
        Some((Level::Info, msg)) => tracing::info!(driver = label, pid, "{msg}"),
        Some((Level::Debug, msg)) => tracing::debug!(driver = label, pid, "{msg}"),
        None => tracing::info!(driver = label, pid, stream, "{line}"),
    }
}

/// The name log lines are tagged with: the file name until the handshake
/// tells the driver's name.
type Label = Arc<Mutex<String>>;

/// Longest log line the host keeps from a worker; the rest of the line is
/// dropped and the line ends with a marker saying how much.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// Reads one line of at most `max` bytes (the rest of a longer line is read
/// and counted, never kept); `None` at the end of the stream. Whatever the
/// bytes, memory stays bounded.
async fn bounded_line(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    let mut line = Vec::new();
    let mut dropped = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty() || dropped > 0).then_some((line, dropped)));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(end) => (&buf[..end], Some(end + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        dropped += chunk.len().saturating_sub(room);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some((line, dropped)));
        }
    }
}

/// Turns a worker's stdout or stderr into host log lines, noting whether the
/// worker reported an allocation failure (the cause of a following abort).
/// Lines are bounded ([`MAX_LOG_LINE`]) and decoded lossily: no byte a
/// driver writes stops the forwarding while the worker lives.
async fn forward_output(
    stream: impl tokio::io::AsyncRead + Unpin,
    label: Label,
    pid: Arc<AtomicU32>,
    name: &'static str,
    out_of_memory: Arc<AtomicBool>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let (bytes, dropped) = match bounded_line(&mut reader, MAX_LOG_LINE).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(
                    pid = pid.load(Ordering::SeqCst),
                    "worker {name} unreadable: {e}"
                );
                break;
            }
        };
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        if dropped > 0 {
            line.push_str(&format!(" [... {dropped} more bytes dropped]"));
        }
        let label = lock(&label).clone();
        log_line(&label, pid.load(Ordering::SeqCst), name, &line);
        if is_out_of_memory_line(&line) {
            out_of_memory.store(true, Ordering::SeqCst);
        }
    }
}

fn describe_exit(
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

/// Kills a worker whose start did not complete, however it ended (an error,
/// or the start's future dropped by a caller no longer interested).
struct AbandonGuard(Option<Arc<Worker>>);

impl AbandonGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(worker) = self.0.take() {
            worker.kill("its start was abandoned".into());
        }
    }
}

/// Starts a worker for `path` and waits for its handshake.
async fn spawn(
    exe: &Path,
    path: &Path,
    settings: &DriverSettings,
    label: &str,
) -> Result<(Arc<Worker>, DriverInfo), Refusal> {
    let (host_end, child_end) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| worker_refusal(format!("cannot create the worker channel: {e}")))?;
    let child_fd = child_end.as_raw_fd();
    let max_answer = settings.max_answer_bytes();
    if let Err(e) = widen_answer_buffer(&child_end, max_answer) {
        // Answers still pass, only in more writes.
        tracing::debug!("cannot widen the worker channel's send buffer: {e}");
    }
    // Everything that can fail is done before the memory cgroup is made: from
    // the spawn on, the waiter owns the process and its cgroup.
    host_end
        .set_nonblocking(true)
        .map_err(|e| worker_refusal(format!("cannot use the worker channel: {e}")))?;
    let stream = tokio::net::UnixStream::from_std(host_end)
        .map_err(|e| worker_refusal(format!("cannot use the worker channel: {e}")))?;
    let (mut reader, writer) = stream.into_split();
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
    let mut child = match cmd.spawn() {
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
    drop(child_end);
    let pid = child.id().unwrap_or(0);
    let served_by = Arc::new(AtomicU32::new(pid));

    let out_of_memory = Arc::new(AtomicBool::new(false));
    let log_label: Label = Arc::new(Mutex::new(label.to_owned()));
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_output(
            stdout,
            Arc::clone(&log_label),
            Arc::clone(&served_by),
            "stdout",
            Arc::new(AtomicBool::new(false)),
        ));
    }
    let stderr_task = child.stderr.take().map(|stderr| {
        tokio::spawn(forward_output(
            stderr,
            Arc::clone(&log_label),
            Arc::clone(&served_by),
            "stderr",
            Arc::clone(&out_of_memory),
        ))
    });

    let (kill_tx, kill_rx) = oneshot::channel::<String>();
    let (exit_tx, exit_rx) = watch::channel(None);
    let worker = Arc::new(Worker {
        pid: served_by,
        containment: std::sync::OnceLock::new(),
        memory_limit,
        label: Arc::clone(&log_label),
        writer: tokio::sync::Mutex::new(writer),
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
        kill: Mutex::new(Some(kill_tx)),
        exit: exit_rx,
        started: Instant::now(),
        out_of_memory: Arc::clone(&out_of_memory),
    });

    // The waiter owns the process: it kills on request, and when the process
    // ends it fails every call in flight with the cause.
    let memory_limit_mib = settings.memory_limit_mib;
    let waiter = Arc::clone(&worker);
    tokio::spawn(async move {
        let mut killed_because = None;
        let status = tokio::select! {
            status = child.wait() => status,
            reason = kill_rx => {
                killed_because = reason.ok();
                let _ = child.start_kill();
                child.wait().await
            }
        };
        // Whatever the driver started ends with its worker.
        sandbox::kill_group(pid);
        if let Some(task) = stderr_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        let mut killed_for_memory = false;
        if let MemoryFence::Cgroup(cgroup) = memory {
            // The kernel's OOM killer sends SIGKILL; a count left by a child
            // it killed earlier does not explain another death.
            let sigkill = status.as_ref().ok().and_then(|s| s.signal()) == Some(libc::SIGKILL);
            killed_for_memory = sigkill && cgroup.oom_kills() > 0;
            // Before the exit is published: a host that stops once its
            // workers have exited leaves no cgroup behind.
            cgroup.end().await;
        }
        let mut cause = describe_exit(
            status,
            out_of_memory.load(Ordering::SeqCst) || killed_for_memory,
            memory_limit_mib,
        );
        if let Some(reason) = &killed_because {
            cause = format!("was killed by the host: {reason}");
        }
        // Publish the exit before draining: a call registered after the drain
        // sees the worker dead (see `Worker::call`), so none waits in vain.
        let _ = exit_tx.send(Some(cause.clone()));
        let pending: Vec<_> = lock(&waiter.pending).drain().collect();
        for (_, reply) in pending {
            let _ = reply.send(Err(waiter.death_error(&cause, killed_because.is_some())));
        }
    });

    // A start abandoned before its handshake (its future dropped) kills the
    // worker; so does every failure below.
    let abandoned = AbandonGuard(Some(Arc::clone(&worker)));
    // The handshake is read loosely first, so that a worker of another
    // protocol version is named as such whatever its message format.
    let handshake = tokio::time::timeout(
        settings.handshake_timeout,
        read_body_async(&mut reader, max_answer),
    )
    .await;
    let first = match handshake {
        Ok(Ok(Some(body))) => match decode_handshake(&body) {
            Ok(value) => value,
            Err(e) => {
                worker.kill(format!("channel broken: {e}"));
                return Err(worker_refusal(format!(
                    "the worker's first message is not a handshake of channel protocol {PROTOCOL_VERSION}: {e}"
                )));
            }
        },
        Ok(Ok(None)) => {
            let (cause, _) = worker.ended_or_killed("its channel closed").await;
            return Err(worker_refusal(format!(
                "the worker {cause} while loading the driver"
            )));
        }
        Ok(Err(e)) => {
            let (cause, _) = worker
                .ended_or_killed(&format!("channel broken: {e}"))
                .await;
            return Err(worker_refusal(format!(
                "the worker {cause} while loading the driver"
            )));
        }
        Err(_) => {
            worker.kill("handshake timeout".into());
            return Err(worker_refusal(format!(
                "the worker did not finish loading the driver within {} s",
                seconds(settings.handshake_timeout)
            )));
        }
    };
    let protocol = ["ready", "refused"]
        .iter()
        .find_map(|kind| first.get(*kind))
        .unwrap_or(&first)
        .get("protocol")
        .and_then(serde_json::Value::as_u64);
    if protocol != Some(u64::from(PROTOCOL_VERSION)) {
        worker.kill("protocol mismatch".into());
        return Err(worker_refusal(match protocol {
            Some(p) => format!("the worker speaks channel protocol {p}; this host speaks {PROTOCOL_VERSION}"),
            None => format!("the worker's first message is not a handshake of channel protocol {PROTOCOL_VERSION}"),
        }));
    }
    let info = match serde_json::from_value::<WorkerMessage>(first) {
        Ok(WorkerMessage::Ready {
            sdk_version,
            info,
            pid: proper_pid,
            containment,
            ..
        }) => {
            if sdk_version != SDK_VERSION {
                worker.kill("SDK mismatch".into());
                return Err(worker_refusal(format!(
                    "the worker was built with southbound-sdk {sdk_version}; this host with {SDK_VERSION}"
                )));
            }
            *lock(&log_label) = info.name.to_string();
            worker.pid.store(proper_pid, Ordering::SeqCst);
            if let Some(warning) = containment.warning() {
                tracing::warn!(driver = %info.name, "{warning}");
            }
            let _ = worker.containment.set(containment);
            info
        }
        Ok(WorkerMessage::Refused { reason, .. }) => {
            worker.exited().await;
            return Err(reason);
        }
        Ok(WorkerMessage::Reply { .. }) => {
            worker.kill("protocol violation".into());
            return Err(worker_refusal(
                "the worker answered before its handshake".into(),
            ));
        }
        Err(e) => {
            worker.kill(format!(
                "channel broken: a handshake that does not decode: {e}"
            ));
            return Err(worker_refusal(format!(
                "the worker's handshake does not decode: {e}"
            )));
        }
    };

    let replies = Arc::clone(&worker);
    tokio::spawn(async move {
        loop {
            match read_incoming_async(&mut reader, max_answer).await {
                // Nobody waits for an unknown id: dropped undecoded.
                Ok(Some(Incoming::Reply { id, answer })) => {
                    if let Some(reply) = lock(&replies.pending).remove(&id) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Ok(Some(Incoming::Other(other))) => {
                    tracing::warn!(driver = %replies.name(), pid = replies.pid(), "unexpected worker message: {other:?}")
                }
                // The worker closed its channel but may live on: it can take
                // no call any more.
                Ok(None) => {
                    replies
                        .ended_or_killed("channel broken: the worker closed its channel")
                        .await;
                    break;
                }
                Err(e) => {
                    replies
                        .ended_or_killed(&format!("channel broken: {e}"))
                        .await;
                    break;
                }
            }
        }
    });
    abandoned.disarm();
    tracing::debug!(driver = %info.name, pid, "worker ready");
    Ok((worker, info))
}

#[derive(Default)]
struct SupervisorState {
    worker: Option<Arc<Worker>>,
    quarantine: Option<String>,
    last_crash: Option<String>,
    crashes: VecDeque<Instant>,
    retired: bool,
    restarts: u64,
}

struct Supervisor {
    exe: PathBuf,
    path: PathBuf,
    label: String,
    settings: DriverSettings,
    state: Mutex<SupervisorState>,
    changed: Notify,
}

impl SupervisorState {
    /// Why the worker died last: the current worker's exit if the supervisor
    /// has not recorded it yet (it dies first, then the supervisor notices),
    /// else the last recorded death.
    fn last_death(&self) -> String {
        let unrecorded = self.worker.as_ref().and_then(|w| {
            w.exit
                .borrow()
                .as_ref()
                .map(|cause| format!("worker (pid {}) {cause}", w.pid()))
        });
        unrecorded
            .or_else(|| self.last_crash.clone())
            .unwrap_or_default()
    }
}

impl Supervisor {
    /// Records a death; returns the quarantine reason if it makes a crash loop.
    fn record_crash(&self, cause: &str) -> Option<String> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        state.crashes.push_back(now);
        let window = self.settings.crash_loop_window;
        while state
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            state.crashes.pop_front();
        }
        state.last_crash = Some(cause.to_owned());
        if state.crashes.len() as u32 >= self.settings.crash_loop_limit {
            let reason = format!(
                "its worker died {} times within {} s; last: {cause}",
                state.crashes.len(),
                seconds(window)
            );
            state.quarantine = Some(reason.clone());
            state.worker = None;
            return Some(reason);
        }
        None
    }

    async fn supervise(self: Arc<Self>, first: Arc<Worker>) {
        let mut worker = first;
        let mut backoff = self.settings.restart_backoff;
        loop {
            let cause = worker.exited().await;
            {
                let mut state = lock(&self.state);
                state.worker = None;
                if state.retired {
                    return;
                }
            }
            if worker.started.elapsed() > self.settings.crash_loop_window {
                backoff = self.settings.restart_backoff; // it had been healthy
            }
            let mut cause = format!("worker (pid {}) {cause}", worker.pid());
            loop {
                if let Some(reason) = self.record_crash(&cause) {
                    tracing::error!(driver = %self.label, "driver quarantined: {reason}");
                    self.changed.notify_waiters();
                    return;
                }
                tracing::warn!(driver = %self.label, "{cause}; restarting in {} ms", backoff.as_millis());
                self.changed.notify_waiters();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.settings.restart_backoff_max);
                if lock(&self.state).retired {
                    return;
                }
                match spawn(&self.exe, &self.path, &self.settings, &self.label).await {
                    Ok((restarted, _)) => {
                        tracing::info!(driver = %self.label, pid = restarted.pid(), "worker restarted");
                        let mut state = lock(&self.state);
                        state.restarts += 1;
                        state.worker = Some(Arc::clone(&restarted));
                        drop(state);
                        self.changed.notify_waiters();
                        worker = restarted;
                        break;
                    }
                    Err(reason) => cause = format!("worker failed to restart: {reason}"),
                }
            }
        }
    }

    /// The running worker; waits (until `deadline`) while one restarts.
    async fn worker(&self, deadline: tokio::time::Instant) -> DriverResult<Arc<Worker>> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = lock(&self.state);
                if let Some(reason) = &state.quarantine {
                    return Err(DriverError::unavailable(format!(
                        "driver {} is quarantined: {reason}",
                        self.label
                    ))
                    .with_retryable(false));
                }
                if state.retired {
                    return Err(DriverError::unavailable(format!(
                        "driver {} has been replaced or stopped",
                        self.label
                    )));
                }
                if let Some(worker) = state.worker.as_ref().filter(|w| w.is_alive()) {
                    return Ok(Arc::clone(worker));
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let last = lock(&self.state).last_death();
                return Err(DriverError::unavailable(format!(
                    "driver {}: no worker was ready before the deadline (restarting after: {last})",
                    self.label
                )));
            }
        }
    }
}

fn worker_refusal(error: String) -> Refusal {
    Refusal::Worker { error }
}

/// A driver running in a supervised worker process.
pub struct WorkerDriver {
    info: DriverInfo,
    supervisor: Arc<Supervisor>,
}

impl WorkerDriver {
    /// Starts a worker for `path` (the `exe` binary in worker mode) and waits
    /// for its handshake. The error is the one-line reason the file cannot be
    /// served.
    pub async fn start(exe: &Path, path: &Path, settings: DriverSettings) -> Result<Self, Refusal> {
        let file_label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (worker, info) = spawn(exe, path, &settings, &file_label).await?;
        let supervisor = Arc::new(Supervisor {
            exe: exe.to_path_buf(),
            path: path.to_path_buf(),
            label: info.name.to_string(),
            settings,
            state: Mutex::new(SupervisorState {
                worker: Some(Arc::clone(&worker)),
                ..SupervisorState::default()
            }),
            changed: Notify::new(),
        });
        tokio::spawn(Arc::clone(&supervisor).supervise(worker));
        Ok(Self { info, supervisor })
    }
}

#[async_trait]
impl Driver for WorkerDriver {
    fn info(&self) -> &DriverInfo {
        &self.info
    }

    async fn call(&self, ctx: CallContext, request: DriverRequest) -> DriverResult<DriverResponse> {
        let timeout = ctx.remaining().min(self.supervisor.settings.call_timeout);
        let ctx = CallContext::with_timeout(ctx.request_id.to_string(), timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let worker = self.supervisor.worker(deadline).await?;
        worker.call(ctx, request, timeout, deadline).await
    }

    fn isolation(&self) -> Isolation {
        Isolation::Worker
    }

    fn status(&self) -> DriverStatus {
        let state = lock(&self.supervisor.state);
        if let Some(reason) = &state.quarantine {
            DriverStatus::Quarantined {
                reason: reason.clone(),
            }
        } else if state.worker.as_ref().is_some_and(|w| w.is_alive()) {
            DriverStatus::Ready
        } else {
            DriverStatus::Restarting {
                last_crash: state.last_death(),
            }
        }
    }

    fn restarts(&self) -> u64 {
        lock(&self.supervisor.state).restarts
    }

    fn last_crash(&self) -> Option<String> {
        Some(lock(&self.supervisor.state).last_death()).filter(|d| !d.is_empty())
    }

    fn worker_pid(&self) -> Option<u32> {
        lock(&self.supervisor.state)
            .worker
            .as_ref()
            .filter(|w| w.is_alive())
            .map(|w| w.pid())
    }

    fn containment(&self) -> Option<String> {
        lock(&self.supervisor.state)
            .worker
            .as_ref()
            .and_then(|w| w.containment.get().map(ToString::to_string))
    }

    fn memory_limit(&self) -> Option<String> {
        lock(&self.supervisor.state)
            .worker
            .as_ref()
            .map(|w| w.memory_limit.clone())
    }

    async fn status_changed(&self) -> bool {
        let changed = self.supervisor.changed.notified();
        if lock(&self.supervisor.state).retired {
            return false;
        }
        changed.await;
        !lock(&self.supervisor.state).retired
    }

    async fn retire(&self) {
        let worker = {
            let mut state = lock(&self.supervisor.state);
            state.retired = true;
            state.worker.take()
        };
        self.supervisor.changed.notify_waiters();
        if let Some(worker) = worker {
            worker
                .shutdown(self.supervisor.settings.shutdown_grace)
                .await;
        }
    }
}
