//! One worker process as the host holds it: [`spawn`] starts it (through
//! [`launch`](super::launch)) and reads its handshake; a [`Worker`] carries
//! its calls and learns its exit.
//!
//! Invariants:
//! - A call never outlives its deadline: the host waits the call's timeout
//!   plus [`KILL_GRACE`] (so a cooperative driver can report its own
//!   timeout), then kills the worker; the call fails "timed out after N s",
//!   naming a stopped worker (SIGSTOP) or one that reported running out of
//!   memory.
//! - A worker that dies fails every call in flight at once, with the cause
//!   named (signal, exit code, out of memory, broken channel); whatever it
//!   started is killed with it.
//! - One task reads the channel and routes each reply by its call id,
//!   undecoded; the waiting call decodes it ([`protocol`](super::protocol)),
//!   or takes the worker's last shared answer again when the bytes are the
//!   same ([`AnswerCache`]).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult, SDK_VERSION};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch, Notify};

use super::containment::Containment;
use super::launch::{describe_exit, launch, Launched};
use super::memory::MemoryFence;
use super::output::{self, Label};
use super::protocol::{
    decode_handshake, read_body_async, read_incoming_async, write_frame_async, AnswerCache,
    EncodedAnswer, HostMessage, Incoming, WorkerMessage, PROTOCOL_VERSION,
};
use super::{
    lock, sandbox, seconds, worker_refusal, DriverRequest, DriverResponse, DriverSettings,
};
use crate::loader::Refusal;

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

/// One worker process and its channel.
pub(super) struct Worker {
    /// The process serving calls, as the host sees it: the host's child
    /// until the handshake names the worker proper inside its PID namespace.
    pid: Arc<AtomicU32>,
    /// How its processes are contained (from the handshake).
    pub(super) containment: std::sync::OnceLock<Containment>,
    /// How its memory is bounded, as `drivers list` shows it.
    pub(super) memory_limit: String,
    label: Label,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Calls waiting for their answer (decoded by the waiting call).
    pending: Mutex<HashMap<u64, oneshot::Sender<DriverResult<EncodedAnswer>>>>,
    /// The last shared answer, handed out again when it comes back.
    answers: AnswerCache,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    idle: Notify,
    kill: Mutex<Option<oneshot::Sender<String>>>,
    pub(super) exit: watch::Receiver<Option<String>>,
    pub(super) started: Instant,
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
    pub(super) fn pid(&self) -> u32 {
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
    pub(super) fn is_alive(&self) -> bool {
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
    pub(super) async fn exited(&self) -> String {
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
    pub(super) async fn call(
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
            Ok(Ok(Ok(answer))) => match answer.decode(&self.answers) {
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
    pub(super) async fn shutdown(&self, grace: Duration) {
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
pub(super) async fn spawn(
    exe: &Path,
    path: &Path,
    settings: &DriverSettings,
    label: &str,
) -> Result<(Arc<Worker>, DriverInfo), Refusal> {
    let (host_end, child_end) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| worker_refusal(format!("cannot create the worker channel: {e}")))?;
    let max_answer = settings.max_answer_bytes();
    // Everything that can fail is done before the worker starts: from then
    // on, the waiter owns the process and its cgroup.
    host_end
        .set_nonblocking(true)
        .map_err(|e| worker_refusal(format!("cannot use the worker channel: {e}")))?;
    let stream = tokio::net::UnixStream::from_std(host_end)
        .map_err(|e| worker_refusal(format!("cannot use the worker channel: {e}")))?;
    let (mut reader, writer) = stream.into_split();
    let Launched {
        mut child,
        memory,
        memory_limit,
    } = launch(exe, path, settings, max_answer, child_end).await?;
    let pid = child.id().unwrap_or(0);
    let served_by = Arc::new(AtomicU32::new(pid));
    let log_label: Label = Arc::new(Mutex::new(label.to_owned()));
    let (stderr_task, out_of_memory) = output::forward(&mut child, &log_label, &served_by);

    let (kill_tx, kill_rx) = oneshot::channel::<String>();
    let (exit_tx, exit_rx) = watch::channel(None);
    let worker = Arc::new(Worker {
        pid: served_by,
        containment: std::sync::OnceLock::new(),
        memory_limit,
        label: Arc::clone(&log_label),
        writer: tokio::sync::Mutex::new(writer),
        pending: Mutex::new(HashMap::new()),
        answers: AnswerCache::default(),
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
    let info = handshake(&worker, &mut reader, settings.handshake_timeout, max_answer).await?;

    // The reader: routes each reply to the call waiting for it.
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

/// Reads the worker's handshake (within `timeout`): the driver's info, or
/// why the file cannot be served. The worker is killed on any failure.
async fn handshake(
    worker: &Worker,
    reader: &mut OwnedReadHalf,
    timeout: Duration,
    max_answer: usize,
) -> Result<DriverInfo, Refusal> {
    // Read loosely first, so that a worker of another protocol version is
    // named as such whatever its message format.
    let handshake = tokio::time::timeout(timeout, read_body_async(reader, max_answer)).await;
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
                seconds(timeout)
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
    match serde_json::from_value::<WorkerMessage>(first) {
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
            *lock(&worker.label) = info.name.to_string();
            worker.pid.store(proper_pid, Ordering::SeqCst);
            if let Some(warning) = containment.warning() {
                tracing::warn!(driver = %info.name, "{warning}");
            }
            let _ = worker.containment.set(containment);
            Ok(info)
        }
        Ok(WorkerMessage::Refused { reason, .. }) => {
            worker.exited().await;
            Err(reason)
        }
        Ok(WorkerMessage::Reply { .. }) => {
            worker.kill("protocol violation".into());
            Err(worker_refusal(
                "the worker answered before its handshake".into(),
            ))
        }
        Err(e) => {
            worker.kill(format!(
                "channel broken: a handshake that does not decode: {e}"
            ));
            Err(worker_refusal(format!(
                "the worker's handshake does not decode: {e}"
            )))
        }
    }
}
