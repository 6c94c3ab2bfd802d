//! How the host reaches a driver: one interface, [`Driver`], whatever runs
//! the driver's code.
//!
//! A call is a [`DriverRequest`] answered by a [`DriverResponse`]: plain,
//! serializable data, so the same call can be served in this process
//! ([`InProcessDriver`]) or shipped to a worker process over a channel
//! ([`WorkerDriver`], the default). Callers use the typed methods of
//! [`DriverExt`] and never see which.
//!
//! - `calls`: the driver's entry points, listed once; the request and
//!   response enums, `dispatch` and `DriverExt` are generated from the list.
//! - `protocol`: the worker channel's frames and messages.
//! - `worker`: the worker process (`southbound __worker`).
//! - `supervisor`: the host side: restart with backoff, quarantine,
//!   retirement ([`WorkerDriver`]).
//! - `process`: one worker process as the host holds it: its start and
//!   handshake, its calls and their deadlines, its exit and its cause.
//! - `launch`: starting the process inside its fences; naming how it ended.
//! - `output`: the worker's stdout and stderr, forwarded to the host's log,
//!   bounded and lossily.
//! - `sandbox`, `memory`, `containment`, `namespace`: what fences a worker
//!   in (process group and seccomp; memory cgroup or address-space limit;
//!   Landlock and its PID namespace).

mod calls;
pub mod containment;
mod in_process;
mod launch;
pub mod memory;
pub mod namespace;
mod output;
mod process;
pub mod protocol;
pub mod sandbox;
mod supervisor;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult};

pub use calls::{dispatch, DriverExt, DriverRequest, DriverResponse};
pub use in_process::InProcessDriver;
pub use process::KILL_GRACE;
pub use supervisor::WorkerDriver;

/// Where a driver's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a supervised worker process (the default): the host survives
    /// anything the driver does.
    Worker,
    /// In the host process: for trusted drivers, and to measure what isolation
    /// costs. A crash or hang in the driver takes the host with it.
    InProcess,
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Worker => "worker",
            Self::InProcess => "in-process",
        })
    }
}

/// How one driver is run and supervised.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverSettings {
    /// Worker process or in-process.
    pub isolation: Isolation,
    /// Longest a call may take; past it the worker is killed.
    pub call_timeout: Duration,
    /// Memory a worker may use, MiB (see `memory`).
    pub memory_limit_mib: u64,
    /// Bound it with a memory cgroup where the host can make one (else,
    /// or when false, with an address-space limit).
    pub memory_cgroup: bool,
    /// How long a stopping worker gets to finish before it is killed.
    pub shutdown_grace: Duration,
    /// First restart delay after a worker dies; doubles up to `restart_backoff_max`.
    pub restart_backoff: Duration,
    /// Longest restart delay.
    pub restart_backoff_max: Duration,
    /// This many deaths within `crash_loop_window` quarantine the driver.
    pub crash_loop_limit: u32,
    /// See `crash_loop_limit`.
    pub crash_loop_window: Duration,
    /// Longest a worker may take to load its driver.
    pub handshake_timeout: Duration,
    /// Largest answer a worker may send, MiB (a `large` ScaleIO system's
    /// biggest answer, its 2,048 hosts, is under 300 KiB).
    pub max_answer_mib: u64,
    /// Refuse signals a worker aims outside itself: at the host (seccomp;
    /// see `sandbox`) and at any other process (Landlock; see `containment`).
    pub signal_filter: bool,
    /// Give each worker a PID namespace of its own (see `namespace`).
    pub pid_namespace: bool,
}

impl DriverSettings {
    /// [`DriverSettings::max_answer_mib`] in bytes.
    pub fn max_answer_bytes(&self) -> usize {
        usize::try_from(self.max_answer_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

impl Default for DriverSettings {
    fn default() -> Self {
        Self {
            isolation: Isolation::Worker,
            call_timeout: Duration::from_secs(300),
            memory_limit_mib: 2048,
            memory_cgroup: true,
            shutdown_grace: Duration::from_secs(5),
            restart_backoff: Duration::from_millis(200),
            restart_backoff_max: Duration::from_secs(30),
            crash_loop_limit: 5,
            crash_loop_window: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(30),
            max_answer_mib: 64,
            signal_filter: true,
            pid_namespace: true,
        }
    }
}

/// Health of a loaded driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DriverStatus {
    /// Serving calls.
    Ready,
    /// Its worker died and is being restarted.
    Restarting {
        /// Why the worker died last.
        last_crash: String,
    },
    /// Its worker died too often; calls fail until the file is replaced.
    Quarantined {
        /// Why.
        reason: String,
    },
}

/// Longest driver error message the host keeps.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// A driver's error with its message cut to [`MAX_ERROR_MESSAGE`] bytes and
/// a marker saying how much was dropped.
pub fn bounded_error(mut error: DriverError) -> DriverError {
    if error.message.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !error.message.is_char_boundary(end) {
            end -= 1;
        }
        let dropped = error.message.len() - end;
        error.message = format!(
            "{} [... {dropped} more bytes dropped]",
            &error.message[..end]
        )
        .into();
    }
    error
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a plain read or assignment).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

/// Why a worker could not serve a file.
fn worker_refusal(error: String) -> crate::loader::Refusal {
    crate::loader::Refusal::Worker { error }
}

/// Starts the driver in file `path` as `settings` say: loaded into this
/// process, or in a worker process running `worker_exe` (a binary that calls
/// [`worker::run_if_worker`] first). The host's catalog and the conformance
/// suite both start drivers here.
pub async fn start(
    path: &std::path::Path,
    settings: DriverSettings,
    worker_exe: &std::path::Path,
) -> Result<std::sync::Arc<dyn Driver>, crate::loader::Refusal> {
    Ok(match settings.isolation {
        Isolation::InProcess => {
            let (driver, info) = in_process::load(path, settings.handshake_timeout).await?;
            std::sync::Arc::new(InProcessDriver::new(driver, info))
        }
        Isolation::Worker => {
            // Cheap refusals first; the host itself never maps the library.
            crate::loader::check_object_format(path)?;
            std::sync::Arc::new(WorkerDriver::start(worker_exe, path, settings).await?)
        }
    })
}

/// The host's one interface to a driver, wherever its code runs.
#[async_trait]
pub trait Driver: Send + Sync {
    /// What the driver reported about itself when it was loaded.
    fn info(&self) -> &DriverInfo;

    /// Performs one call.
    async fn call(&self, ctx: CallContext, request: DriverRequest) -> DriverResult<DriverResponse>;

    /// Where the driver runs.
    fn isolation(&self) -> Isolation;

    /// Health now.
    fn status(&self) -> DriverStatus {
        DriverStatus::Ready
    }

    /// Pid of the worker process serving the driver, if it runs in one.
    fn worker_pid(&self) -> Option<u32> {
        None
    }

    /// How the driver's worker processes are contained (`PID namespace`, or
    /// the process group only and why), if it runs in one.
    fn containment(&self) -> Option<String> {
        None
    }

    /// How the driver's worker's memory is bounded (`256 MiB memory (cgroup
    /// v1)`), if it runs in one.
    fn memory_limit(&self) -> Option<String> {
        None
    }

    /// How many times the driver's worker has been restarted.
    fn restarts(&self) -> u64 {
        0
    }

    /// Why the driver's worker died last, if it ever did.
    fn last_crash(&self) -> Option<String> {
        None
    }

    /// Stops taking calls, lets the ones in flight finish, then releases the
    /// driver (a worker exits; an in-process library stays mapped).
    async fn retire(&self) {}

    /// Waits for the next change of [`Driver::status`]; `false` once the
    /// driver is retired (no more changes). Drivers whose status never
    /// changes wait forever.
    async fn status_changed(&self) -> bool {
        std::future::pending().await
    }
}
