//! The host side of worker isolation: a [`WorkerDriver`] runs one driver in
//! a `southbound __worker` child process ([`process`](super::process)) and
//! supervises it.
//!
//! Invariants:
//! - A worker that dies is restarted with exponential backoff (reset once a
//!   worker has lived through a crash-loop window); calls wait for the new
//!   worker until their own deadline.
//! - [`DriverSettings::crash_loop_limit`] deaths within the window
//!   quarantine the driver until it is replaced: calls fail at once, not
//!   retryable.
//! - A retired driver (replaced, or the host stopping) lets its calls in
//!   flight finish, then its worker exits; it is never restarted.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult};
use tokio::sync::Notify;

use super::process::{spawn, Worker};
use super::{
    lock, seconds, Driver, DriverRequest, DriverResponse, DriverSettings, DriverStatus, Isolation,
};
use crate::loader::Refusal;

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
