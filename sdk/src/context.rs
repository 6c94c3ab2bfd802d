//! `CallContext`: the deadline and request id every driver call carries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

/// Per-call context. The deadline is absolute wall-clock time so that it
/// means the same on both sides of the worker channel (one machine).
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, StableAbi, Serialize, Deserialize)]
pub struct CallContext {
    /// Id to put in every log line about this call.
    pub request_id: RString,
    /// The call must finish by then: milliseconds since the Unix epoch.
    pub deadline_unix_ms: u64,
}

impl CallContext {
    /// A context whose deadline is `timeout` from now.
    pub fn with_timeout(request_id: impl Into<String>, timeout: Duration) -> Self {
        let deadline = SystemTime::now() + timeout;
        Self {
            request_id: RString::from(request_id.into()),
            deadline_unix_ms: unix_ms(deadline),
        }
    }

    /// The deadline as a `SystemTime`.
    pub fn deadline(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.deadline_unix_ms)
    }

    /// Time left before the deadline; zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
