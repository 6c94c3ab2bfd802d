//! One full discovery of a provider through a driver: scan, then for each
//! system its details, pools, ports, host components and capability
//! definitions. `probe` runs it without a database; the scheduled
//! discovery builds on the same steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use southbound_sdk::{
    CallContext, CapabilityDefinition, DriverError, StorageProvider, StorageSystem, SystemInventory,
};

use crate::isolation::{Driver, DriverExt};

/// Everything one discovery found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    /// Each system with its pools, ports and host components.
    pub systems: Vec<SystemInventory>,
    /// The capability definitions of all systems, once per uid.
    pub capability_definitions: Vec<CapabilityDefinition>,
}

/// A failed step: which one, for which system, and the driver's error.
#[derive(Debug, thiserror::Error)]
#[error("{step}{} failed: {error}", system.as_deref().map(|s| format!(" of system '{s}'")).unwrap_or_default())]
pub struct DiscoveryError {
    /// The driver call that failed.
    pub step: &'static str,
    /// The system it was about, if any.
    pub system: Option<String>,
    /// What the driver said.
    pub error: DriverError,
}

/// A fresh request id: process-unique and sortable by time.
pub fn request_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{ms:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs one full discovery. `call_timeout` bounds each driver call.
pub async fn discover_provider(
    driver: &dyn Driver,
    provider: &StorageProvider,
    call_timeout: Duration,
) -> Result<DiscoveryReport, DiscoveryError> {
    let ctx = || CallContext::with_timeout(request_id("discovery"), call_timeout);
    let fail = |step, system: Option<&StorageSystem>| {
        let system = system.map(|s| s.native_id.to_string());
        move |error| DiscoveryError {
            step,
            system,
            error,
        }
    };

    let scan = driver
        .scan_provider(ctx(), provider)
        .await
        .map_err(fail("scan_provider", None))?;
    let mut report = DiscoveryReport::default();
    for scanned in &scan.systems {
        let system = driver
            .discover_system(ctx(), provider, scanned)
            .await
            .map_err(fail("discover_system", Some(scanned)))?;
        let pools = driver
            .discover_pools(ctx(), provider, &system)
            .await
            .map_err(fail("discover_pools", Some(&system)))?;
        let mut ports = driver
            .discover_ports(ctx(), provider, &system)
            .await
            .map_err(fail("discover_ports", Some(&system)))?;
        // CoprHD skips ports without a network id; so do we, loudly.
        ports.retain(|port| {
            let keep = !port.port_network_id.trim().is_empty();
            if !keep {
                tracing::warn!(system = %system.native_id, port = %port.native_id, "port has no port_network_id; skipped");
            }
            keep
        });
        let host_components = driver
            .discover_host_components(ctx(), provider, &system)
            .await
            .map_err(fail("discover_host_components", Some(&system)))?;
        let definitions = driver
            .capability_definitions(ctx(), provider, &system)
            .await
            .map_err(fail("capability_definitions", Some(&system)))?;
        for definition in definitions {
            if !report
                .capability_definitions
                .iter()
                .any(|d| d.uid == definition.uid)
            {
                report.capability_definitions.push(definition);
            }
        }
        report.systems.push(SystemInventory {
            system,
            pools,
            ports,
            host_components,
        });
    }
    Ok(report)
}
