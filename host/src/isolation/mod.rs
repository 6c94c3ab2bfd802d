//! How the host reaches a driver: one interface, [`Driver`], whatever runs
//! the driver's code.
//!
//! A call is a [`DriverRequest`] answered by a [`DriverResponse`]: plain,
//! serializable data, so the same call can be served in this process
//! ([`InProcessDriver`]) or shipped to a worker process over a channel
//! ([`WorkerDriver`], the default). Callers use the typed methods of
//! [`DriverExt`] and never see which.
//!
//! - `protocol`: the worker channel's frames and messages.
//! - `worker`: the worker process (`southbound __worker`).
//! - `supervisor`: the host side: spawn, deadlines, crash causes, restart
//!   with backoff, quarantine, retirement.

mod in_process;
pub mod protocol;
mod supervisor;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use southbound_sdk::abi::DriverBox;
use southbound_sdk::{
    CallContext, CapabilityDefinition, DriverError, DriverInfo, DriverResult, ProviderScan, RVec,
    StorageHostComponent, StoragePool, StoragePort, StorageProvider, StorageSystem,
};

pub use in_process::InProcessDriver;
pub use supervisor::{WorkerDriver, KILL_GRACE};

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
    /// Memory (data segment) a worker may use, MiB.
    pub memory_limit_mib: u64,
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
}

impl Default for DriverSettings {
    fn default() -> Self {
        Self {
            isolation: Isolation::Worker,
            call_timeout: Duration::from_secs(300),
            memory_limit_mib: 2048,
            shutdown_grace: Duration::from_secs(5),
            restart_backoff: Duration::from_millis(200),
            restart_backoff_max: Duration::from_secs(30),
            crash_loop_limit: 5,
            crash_loop_window: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(30),
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

/// One driver call, with its inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum DriverRequest {
    /// [`southbound_sdk::DiscoveryDriver::scan_provider`].
    ScanProvider { provider: StorageProvider },
    /// [`southbound_sdk::DiscoveryDriver::discover_system`].
    DiscoverSystem {
        provider: StorageProvider,
        system: StorageSystem,
    },
    /// [`southbound_sdk::DiscoveryDriver::discover_pools`].
    DiscoverPools {
        provider: StorageProvider,
        system: StorageSystem,
    },
    /// [`southbound_sdk::DiscoveryDriver::discover_ports`].
    DiscoverPorts {
        provider: StorageProvider,
        system: StorageSystem,
    },
    /// [`southbound_sdk::DiscoveryDriver::discover_host_components`].
    DiscoverHostComponents {
        provider: StorageProvider,
        system: StorageSystem,
    },
    /// [`southbound_sdk::DiscoveryDriver::capability_definitions`].
    CapabilityDefinitions {
        provider: StorageProvider,
        system: StorageSystem,
    },
}

impl DriverRequest {
    /// The call's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ScanProvider { .. } => "scan_provider",
            Self::DiscoverSystem { .. } => "discover_system",
            Self::DiscoverPools { .. } => "discover_pools",
            Self::DiscoverPorts { .. } => "discover_ports",
            Self::DiscoverHostComponents { .. } => "discover_host_components",
            Self::CapabilityDefinitions { .. } => "capability_definitions",
        }
    }
}

/// A successful answer to a [`DriverRequest`] of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", content = "result", rename_all = "snake_case")]
pub enum DriverResponse {
    /// Answer to `ScanProvider`.
    ScanProvider(ProviderScan),
    /// Answer to `DiscoverSystem`.
    DiscoverSystem(Box<StorageSystem>),
    /// Answer to `DiscoverPools`.
    DiscoverPools(RVec<StoragePool>),
    /// Answer to `DiscoverPorts`.
    DiscoverPorts(RVec<StoragePort>),
    /// Answer to `DiscoverHostComponents`.
    DiscoverHostComponents(RVec<StorageHostComponent>),
    /// Answer to `CapabilityDefinitions`.
    CapabilityDefinitions(RVec<CapabilityDefinition>),
}

/// Serves one request with a loaded driver library: the single place that
/// maps requests onto the ABI (used in-process, and by worker processes).
pub fn dispatch(
    driver: &DriverBox,
    ctx: &CallContext,
    request: &DriverRequest,
) -> DriverResult<DriverResponse> {
    use DriverRequest as Rq;
    use DriverResponse as Rs;
    let response = match request {
        Rq::ScanProvider { provider } => driver
            .scan_provider(ctx, provider)
            .into_result()
            .map(Rs::ScanProvider),
        Rq::DiscoverSystem { provider, system } => driver
            .discover_system(ctx, provider, system)
            .into_result()
            .map(|s| Rs::DiscoverSystem(Box::new(s))),
        Rq::DiscoverPools { provider, system } => driver
            .discover_pools(ctx, provider, system)
            .into_result()
            .map(Rs::DiscoverPools),
        Rq::DiscoverPorts { provider, system } => driver
            .discover_ports(ctx, provider, system)
            .into_result()
            .map(Rs::DiscoverPorts),
        Rq::DiscoverHostComponents { provider, system } => driver
            .discover_host_components(ctx, provider, system)
            .into_result()
            .map(Rs::DiscoverHostComponents),
        Rq::CapabilityDefinitions { provider, system } => driver
            .capability_definitions(ctx, provider, system)
            .into_result()
            .map(Rs::CapabilityDefinitions),
    }?;
    Ok(response)
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

    /// How many times the driver's worker has been restarted.
    fn restarts(&self) -> u64 {
        0
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

/// Typed calls on any [`Driver`].
#[async_trait]
pub trait DriverExt: Driver {
    /// Scans a provider.
    async fn scan_provider(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
    ) -> DriverResult<ProviderScan> {
        let request = DriverRequest::ScanProvider {
            provider: provider.clone(),
        };
        expect_response!(self.call(ctx, request).await?, ScanProvider)
    }

    /// Discovers a system's details.
    async fn discover_system(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<StorageSystem> {
        let request = DriverRequest::DiscoverSystem {
            provider: provider.clone(),
            system: system.clone(),
        };
        expect_response!(self.call(ctx, request).await?, DiscoverSystem).map(|s| *s)
    }

    /// Discovers a system's pools.
    async fn discover_pools(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<RVec<StoragePool>> {
        let request = DriverRequest::DiscoverPools {
            provider: provider.clone(),
            system: system.clone(),
        };
        expect_response!(self.call(ctx, request).await?, DiscoverPools)
    }

    /// Discovers a system's ports.
    async fn discover_ports(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<RVec<StoragePort>> {
        let request = DriverRequest::DiscoverPorts {
            provider: provider.clone(),
            system: system.clone(),
        };
        expect_response!(self.call(ctx, request).await?, DiscoverPorts)
    }

    /// Discovers the hosts a system knows.
    async fn discover_host_components(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<RVec<StorageHostComponent>> {
        let request = DriverRequest::DiscoverHostComponents {
            provider: provider.clone(),
            system: system.clone(),
        };
        expect_response!(self.call(ctx, request).await?, DiscoverHostComponents)
    }

    /// The capability definitions that apply to a system.
    async fn capability_definitions(
        &self,
        ctx: CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<RVec<CapabilityDefinition>> {
        let request = DriverRequest::CapabilityDefinitions {
            provider: provider.clone(),
            system: system.clone(),
        };
        expect_response!(self.call(ctx, request).await?, CapabilityDefinitions)
    }
}

impl<D: Driver + ?Sized> DriverExt for D {}

/// Unwraps the expected response variant; any other is a host bug or a
/// corrupted channel, reported as an internal error.
macro_rules! expect_response {
    ($response:expr, $variant:ident) => {
        match $response {
            DriverResponse::$variant(value) => Ok(value),
            other => Err(DriverError::internal(format!(
                "driver answered {} with a response to another call: {other:?}",
                stringify!($variant)
            ))),
        }
    };
}
use expect_response;
