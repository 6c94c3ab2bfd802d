//! Drivers loaded into the host process: for trusted drivers, and for
//! measuring what isolation costs. A crash in such a driver ends the host.

use std::sync::Arc;

use async_trait::async_trait;
use southbound_sdk::abi::DriverBox;
use southbound_sdk::{CallContext, DriverError, DriverInfo, DriverResult};

use super::{dispatch, Driver, DriverRequest, DriverResponse, Isolation};

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
