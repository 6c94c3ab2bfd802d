//! The driver side of discovery: the calls, in CoprHD's order, and the
//! object rules applied to their answers. No storage here: `probe` prints
//! what these return, and the workflow (`service::workflow`) writes it.
//!
//! - [`scan_provider`]: which systems a provider manages.
//! - [`discover_system`]: one system's details, pools, ports, host
//!   components and capability definitions. Run per system, so one failing
//!   system does not fail its siblings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use southbound_sdk::{
    CallContext, CapabilityDefinition, DriverError, ProviderScan, StorageProvider, StorageSystem,
    SystemInventory,
};

use crate::isolation::{Driver, DriverExt};
use crate::validation::{self, Problem};

/// A failed step: which one, for which system, and the driver's error.
#[derive(Debug, Clone, thiserror::Error)]
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

/// A scan that passed the rules.
#[derive(Debug, Clone, Serialize)]
pub struct ScanResult {
    /// The provider's details and its valid systems.
    pub scan: ProviderScan,
    /// Systems dropped, and why.
    pub problems: Vec<Problem>,
}

/// Scans a provider; systems that break a rule are dropped and reported.
pub async fn scan_provider(
    driver: &dyn Driver,
    provider: &StorageProvider,
    call_timeout: Duration,
) -> Result<ScanResult, DiscoveryError> {
    let ctx = CallContext::with_timeout(request_id("scan"), call_timeout);
    let mut scan = driver
        .scan_provider(ctx, provider)
        .await
        .map_err(|error| DiscoveryError {
            step: "scan_provider",
            system: None,
            error,
        })?;
    let problems = validation::check_scan(&driver.info().storage_system_types, &mut scan);
    Ok(ScanResult { scan, problems })
}

/// The driver calls of one system's discovery, in the order they are made.
pub const DISCOVERY_CALLS: [&str; 5] = [
    "discover_system",
    "discover_pools",
    "discover_ports",
    "discover_host_components",
    "capability_definitions",
];

/// One system's discovery, after the rules.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SystemDiscovery {
    /// The system with its valid pools, ports and host components.
    pub inventory: SystemInventory,
    /// The capability definitions that apply to it (valid ones).
    pub capability_definitions: Vec<CapabilityDefinition>,
    /// Objects dropped, and why.
    pub problems: Vec<Problem>,
}

/// One system's answers exactly as the driver gave them, before the rules.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawDiscovery {
    /// The system with its pools, ports and host components.
    pub inventory: SystemInventory,
    /// The capability definitions the driver gave for the system, followed
    /// by those declared in its info and not repeated.
    pub capability_definitions: Vec<CapabilityDefinition>,
}

/// Makes the calls of one system's discovery ([`DISCOVERY_CALLS`], each
/// bounded by `call_timeout`) and returns the answers unchecked. The
/// conformance suite judges these; [`discover_system`] applies the rules.
pub async fn fetch_system(
    driver: &dyn Driver,
    provider: &StorageProvider,
    scanned: &StorageSystem,
    call_timeout: Duration,
) -> Result<RawDiscovery, DiscoveryError> {
    let ctx = || CallContext::with_timeout(request_id("discovery"), call_timeout);
    let fail = |step, system: &StorageSystem| {
        let system = Some(system.native_id.to_string());
        move |error| DiscoveryError {
            step,
            system,
            error,
        }
    };
    let mut system = driver
        .discover_system(ctx(), provider, scanned)
        .await
        .map_err(fail("discover_system", scanned))?;
    if system.native_id != scanned.native_id {
        return Err(fail("discover_system", scanned)(DriverError::protocol(
            format!(
                "asked for system '{}', the driver answered with system '{}'",
                scanned.native_id, system.native_id
            ),
        )));
    }
    if system.system_type.is_empty() {
        system.system_type = scanned.system_type.clone();
    }
    let pools = driver
        .discover_pools(ctx(), provider, &system)
        .await
        .map_err(fail("discover_pools", &system))?;
    let ports = driver
        .discover_ports(ctx(), provider, &system)
        .await
        .map_err(fail("discover_ports", &system))?;
    let host_components = driver
        .discover_host_components(ctx(), provider, &system)
        .await
        .map_err(fail("discover_host_components", &system))?;
    let mut capability_definitions: Vec<CapabilityDefinition> = driver
        .capability_definitions(ctx(), provider, &system)
        .await
        .map_err(fail("capability_definitions", &system))?
        .into_iter()
        .collect();
    // Definitions the driver declared in its info count as declared too.
    for declared in &driver.info().capability_definitions {
        if !capability_definitions.iter().any(|d| d.uid == declared.uid) {
            capability_definitions.push(declared.clone());
        }
    }
    Ok(RawDiscovery {
        inventory: SystemInventory {
            system,
            pools,
            ports,
            host_components,
        },
        capability_definitions,
    })
}

/// Applies the object rules to one system's answers: drops what breaks them.
pub fn check_discovery(raw: RawDiscovery) -> SystemDiscovery {
    let RawDiscovery {
        mut inventory,
        mut capability_definitions,
    } = raw;
    let mut problems = validation::check_definitions(&mut capability_definitions);
    problems.extend(validation::check_inventory(
        &mut inventory,
        &capability_definitions,
    ));
    SystemDiscovery {
        inventory,
        capability_definitions,
        problems,
    }
}

/// Discovers one system found by a scan ([`fetch_system`]), then applies the
/// rules ([`check_discovery`]); what they drop is logged and reported.
pub async fn discover_system(
    driver: &dyn Driver,
    provider: &StorageProvider,
    scanned: &StorageSystem,
    call_timeout: Duration,
) -> Result<SystemDiscovery, DiscoveryError> {
    let found = check_discovery(fetch_system(driver, provider, scanned, call_timeout).await?);
    for problem in &found.problems {
        tracing::warn!(driver = %driver.info().name, "{problem}");
    }
    Ok(found)
}

/// Everything a one-shot discovery (`probe`) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    /// Each system with its pools, ports and host components.
    pub systems: Vec<SystemInventory>,
    /// The capability definitions of all systems, once per uid.
    pub capability_definitions: Vec<CapabilityDefinition>,
    /// Objects the rules dropped, and why.
    pub problems: Vec<Problem>,
}

/// A full discovery without a database: scan, then the systems, up to
/// `parallel` at a time, each on a task of its own (as the controller's
/// `max_parallel_jobs` discovers them), each system's calls still in
/// CoprHD's order. The report lists the systems in scan order; the first
/// failing system (in that order) fails the whole discovery, and the
/// systems still running are cancelled.
pub async fn discover_provider(
    driver: &Arc<dyn Driver>,
    provider: &StorageProvider,
    call_timeout: Duration,
    parallel: usize,
) -> Result<DiscoveryReport, DiscoveryError> {
    let scanned = scan_provider(driver.as_ref(), provider, call_timeout).await?;
    let mut report = DiscoveryReport {
        problems: scanned.problems,
        ..Default::default()
    };
    let systems = &scanned.scan.systems;
    // Dropping the set (at an error) cancels what still runs.
    let mut running = tokio::task::JoinSet::new();
    let mut finished: Vec<Option<Result<SystemDiscovery, DiscoveryError>>> =
        systems.iter().map(|_| None).collect();
    let (mut started, mut next) = (0, 0);
    while next < systems.len() {
        while started < systems.len() && running.len() < parallel.max(1) {
            let (driver, provider) = (Arc::clone(driver), provider.clone());
            let system = systems[started].clone();
            let index = started;
            running.spawn(async move {
                let found = discover_system(driver.as_ref(), &provider, &system, call_timeout);
                (index, found.await)
            });
            started += 1;
        }
        let Some(found) = finished[next].take() else {
            // `next` has started and not finished: something is running.
            match running.join_next().await {
                Some(Ok((index, found))) => finished[index] = Some(found),
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => unreachable!("a system's discovery was cancelled: {e}"),
                None => unreachable!("system {next} neither finished nor running"),
            }
            continue;
        };
        let found = found?;
        for definition in found.capability_definitions {
            if !report
                .capability_definitions
                .iter()
                .any(|d| d.uid == definition.uid)
            {
                report.capability_definitions.push(definition);
            }
        }
        report.problems.extend(found.problems);
        report.systems.push(found.inventory);
        next += 1;
    }
    Ok(report)
}
