//! The checks, in the order they run. Each has a stable name
//! (`category.check`) that reports, `--focus` and `--skip` use; never rename
//! one, add a new one instead.
//!
//! - [`identity`]: the file loads, its SDK is compatible, it describes itself.
//! - [`objects`]: the scan and each system's objects keep the object rules
//!   (the host's own `validation` code).
//! - [`behaviour`]: determinism and concurrency.
//! - [`errors`]: error kinds and deadlines.
//! - [`hygiene`]: crash containment and what is left after shutdown.

pub mod behaviour;
pub mod errors;
pub mod hygiene;
pub mod identity;
pub mod objects;

use southbound_host::validation::Problem;

use crate::suite::{Check, Outcome};

macro_rules! check {
    ($name:literal, $description:literal, $run:path) => {
        Check {
            name: $name,
            description: $description,
            run: |session| Box::pin($run(session)),
        }
    };
}

/// Every check, in order.
pub static CHECKS: &[Check] = &[
    check!("identity.loads", "The file is a cdylib driver library that loads", identity::loads),
    check!("identity.sdk-version", "The driver's SDK version is one this host accepts", identity::sdk_version),
    check!("identity.info", "DriverInfo is complete: name, semver version, at least one system type (the one checked among them)", identity::info),
    check!("identity.capability-definitions", "Declared capability definitions have unique uids and unique, non-empty property names", identity::capability_definitions),
    check!("scan.succeeds", "scan_provider succeeds and finds at least one system", objects::scan_succeeds),
    check!("scan.native-ids", "Scanned systems have non-empty, unique native ids", objects::scan_native_ids),
    check!("scan.system-types", "Each scanned system's type is one the driver declared", objects::scan_system_types),
    check!("scan.required-fields", "Each scanned system has a name and a serial number", objects::scan_required_fields),
    check!("objects.discover", "Each scanned system is discovered: system, pools, ports, host components, capability definitions", objects::discover),
    check!("objects.native-ids", "Pools, ports and host components have non-empty native ids, unique within their system", objects::native_ids),
    check!("objects.belong-to-system", "Every pool and port names the system it was discovered for", objects::belong_to_system),
    check!("objects.capacities", "Pool capacities: free does not exceed total", objects::capacities),
    check!("objects.port-network-ids", "Every port has a network id", objects::port_network_ids),
    check!("objects.capabilities", "Capability instances fill in declared definitions with declared properties", objects::capabilities),
    check!("determinism.repeat-scan", "A second scan finds the same systems", behaviour::repeat_scan),
    check!("determinism.repeat-discovery", "A second discovery returns the same objects and ids (free and subscribed capacity excepted)", behaviour::repeat_discovery),
    check!("concurrency.parallel-discovery", "Discoveries run in parallel (the same system twice, and every system) agree with serial ones", behaviour::parallel_discovery),
    check!("errors.wrong-credentials", "A wrong password gives an authentication error (not success, a crash or a timeout)", errors::wrong_credentials),
    check!("errors.unreachable", "An unreachable address gives an unavailable error within the deadline", errors::unreachable),
    check!("errors.unknown-system", "Discovering a system the target does not have gives a not-found error", errors::unknown_system),
    check!("deadlines.short-deadline", "A call with a short deadline returns promptly: within its deadline, or with a timeout error just after it", errors::short_deadline),
    check!("containment.crash-reported", "A worker killed under the driver is reported as a crash, and the driver answers again after its restart", hygiene::crash_reported),
    check!("hygiene.shutdown", "After shutdown nothing of the driver is left: no worker process (worker), no thread or file descriptor (in-process)", hygiene::shutdown),
];

/// Lists `problems` (at most ten) as a failure, or passes with `passed`.
fn judge<'a>(problems: impl IntoIterator<Item = (String, &'a Problem)>, passed: String) -> Outcome {
    let lines: Vec<String> = problems
        .into_iter()
        .map(|(place, p)| format!("{place}{} '{}': {}", p.object, p.native_id, p.message))
        .collect();
    if lines.is_empty() {
        return Outcome::Passed(passed);
    }
    let shown = lines
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    Outcome::Failed(if lines.len() > 10 {
        format!("{shown}; and {} more", lines.len() - 10)
    } else {
        shown
    })
}

/// `1 system`, `3 systems`.
fn systems(n: usize) -> String {
    if n == 1 {
        "1 system".into()
    } else {
        format!("{n} systems")
    }
}
