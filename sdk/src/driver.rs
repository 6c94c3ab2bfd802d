//! The vendor-facing trait.

use async_trait::async_trait;

use crate::capability::CapabilityDefinition;
use crate::context::CallContext;
use crate::error::DriverResult;
use crate::info::DriverInfo;
use crate::model::{
    ProviderScan, StorageHostComponent, StoragePool, StoragePort, StorageProvider, StorageSystem,
};

/// A discovery driver: what a vendor implements, then exports with
/// [`export_driver!`](crate::export_driver).
///
/// The methods follow CoprHD's `DiscoveryDriver`, minus its in/out
/// parameters: inputs are borrowed, outputs returned. Every call gets the
/// provider's connection settings (drivers keep no per-system state the host
/// does not give them) and a [`CallContext`] whose deadline the SDK glue
/// enforces. The methods run on a tokio runtime owned by the plugin, so
/// `tokio`, `reqwest` and friends work as in any async program.
///
/// A panic in any method is caught and reported as
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked); it never unwinds into the host.
#[async_trait]
pub trait DiscoveryDriver: Send + Sync + 'static {
    /// Who the driver is and what it serves. Called once at load time;
    /// must be cheap and must not touch the network.
    fn info(&self) -> DriverInfo;

    /// Scans a provider: its details and every storage system it manages.
    async fn scan_provider(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
    ) -> DriverResult<ProviderScan>;

    /// Full details of one system returned by a scan.
    async fn discover_system(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<StorageSystem>;

    /// The system's storage pools.
    async fn discover_pools(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePool>>;

    /// The system's storage ports. Each must have a `port_network_id`.
    async fn discover_ports(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePort>>;

    /// Hosts the system knows (ScaleIO SDCs, registered initiators).
    /// Defaults to none.
    async fn discover_host_components(
        &self,
        _ctx: &CallContext,
        _provider: &StorageProvider,
        _system: &StorageSystem,
    ) -> DriverResult<Vec<StorageHostComponent>> {
        Ok(Vec::new())
    }

    /// Capability definitions that apply to this system. Defaults to the
    /// ones declared in [`DiscoveryDriver::info`].
    async fn capability_definitions(
        &self,
        _ctx: &CallContext,
        _provider: &StorageProvider,
        _system: &StorageSystem,
    ) -> DriverResult<Vec<CapabilityDefinition>> {
        Ok(self.info().capability_definitions.into_vec())
    }
}
