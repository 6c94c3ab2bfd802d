//! Drivers loaded into the host process: for trusted drivers, and for
//! measuring what isolation costs. A crash in such a driver ends the host.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use southbound_sdk::abi::DriverBox;
use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult};

use super::{dispatch, Driver, DriverRequest, DriverResponse, Isolation};
use crate::loader::{load_library, Refusal};

/// Loads the library at `path` into this process, on a thread of its own:
/// a driver that hangs while loading holds up neither the host's runtime nor,
/// past `timeout`, the command that needed it. Such a thread is left behind
/// (code that still runs cannot be unloaded) and ends with the process.
pub async fn load(path: &Path, timeout: Duration) -> Result<(DriverBox, DriverInfo), Refusal> {
    let (loaded_tx, loaded) = tokio::sync::oneshot::channel();
    let file = path.to_owned();
    std::thread::Builder::new()
        .name("driver-load".into())
        .spawn(move || {
            // A load that ends after the timeout has no one to answer: the
            // driver is dropped here.
            let _ = loaded_tx.send(load_library(&file));
        })
        .map_err(|e| Refusal::CannotLoad {
            error: format!("cannot start a thread to load it: {e}"),
        })?;
    match tokio::time::timeout(timeout, loaded).await {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(_)) => Err(Refusal::CannotLoad {
            error: "its loading thread ended without an answer".into(),
        }),
        Err(_) => Err(Refusal::LoadTimedOut {
            seconds: timeout.as_secs(),
        }),
    }
}

/// A driver library loaded in this process.
pub struct InProcessDriver {
    driver: Arc<DriverBox>,
    info: DriverInfo,
}

impl InProcessDriver {
    /// Wraps an instantiated driver and the info it reported.
    pub fn new(driver: DriverBox, info: DriverInfo) -> Self {
        Self {
            driver: Arc::new(driver),
            info,
        }
    }
}

#[async_trait]
impl Driver for InProcessDriver {
    fn info(&self) -> &DriverInfo {
        &self.info
    }

    async fn call(&self, ctx: CallContext, request: DriverRequest) -> DriverResult<DriverResponse> {
        // The ABI is synchronous and blocks on the plugin's own runtime:
        // never run it on one of the host runtime's worker threads.
        let driver = Arc::clone(&self.driver);
        let name = request.name();
        tokio::task::spawn_blocking(move || dispatch(&driver, &ctx, &request))
            .await
            .map_err(|e| DriverError::internal(format!("{name} did not complete: {e}")))?
            .map_err(super::bounded_error)
    }

    fn isolation(&self) -> Isolation {
        Isolation::InProcess
    }
}
