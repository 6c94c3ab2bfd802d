//! `DriverTask`: the state of an operation, with CoprHD's statuses.

use abi_stable::std_types::{ROption, RString};
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// Status of a [`DriverTask`], as in CoprHD's `DriverTask.TaskStatus`.
    TaskStatus default QUEUED {
        /// Accepted, not started.
        QUEUED = 1 => "QUEUED",
        /// Running.
        PROVISIONING = 2 => "PROVISIONING",
        /// Completed successfully.
        READY = 3 => "READY",
        /// Failed.
        FAILED = 4 => "FAILED",
        /// Part of the request failed.
        PARTIALLY_FAILED = 5 => "PARTIALLY_FAILED",
        /// Completed with a warning.
        WARNING = 6 => "WARNING",
        /// Aborted.
        ABORTED = 7 => "ABORTED",
    }
}

impl TaskStatus {
    /// Whether the task will not change any more.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, Self::QUEUED | Self::PROVISIONING)
    }

    /// Whether the task completed successfully. Only READY counts: CoprHD
    /// treats WARNING, PARTIALLY_FAILED and ABORTED as failures when polling.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::READY)
    }
}

/// An operation and its progress.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct DriverTask {
    /// Unique id of the task.
    pub task_id: RString,
    /// Current status.
    pub status: TaskStatus,
    /// Progress in percent (0-100).
    pub progress: u8,
    /// Human-readable message; for failures, why.
    pub message: RString,
    /// Start, in milliseconds since the Unix epoch.
    pub start_time_ms: ROption<u64>,
    /// End, in milliseconds since the Unix epoch; set once terminal.
    pub end_time_ms: ROption<u64>,
}
