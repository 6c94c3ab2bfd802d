//! Text rendering of what the CLI prints: tables the way CoprHD's UI lists
//! storage (Physical Assets > Storage Systems, then pools, ports, hosts).
//! Rendering only: the data comes from the service layer (through the API)
//! or from a probe.

use southbound_sdk::{ROption, StoragePool, StoragePort, SystemInventory};

use super::table::Table;
use crate::catalog::PluginEntry;
use crate::discovery::DiscoveryReport;
use crate::service::InventoryView;
use crate::store::{HostRecord, PoolRecord, PortRecord, ProviderRecord, SystemRecord, TaskRecord};
pub use crate::units::{capacity, initiators, time};
use crate::validation::Problem;

fn join<'a, S: AsRef<str> + 'a>(items: impl IntoIterator<Item = &'a S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(",")
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn opt<T: std::fmt::Display>(value: &ROption<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The drivers of a plugins directory.
pub fn drivers(entries: &[PluginEntry]) -> String {
    let mut table = Table::new(&[
        "NAME",
        "VERSION",
        "SDK",
        "TYPES",
        "ISOLATION",
        "STATUS",
        "FILE",
        "SHA-256",
    ]);
    for entry in entries {
        let isolation = match (entry.isolation, entry.worker_pid) {
            (Some(i), Some(pid)) => {
                let details: Vec<&str> = [&entry.memory_limit, &entry.containment]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if details.is_empty() {
                    format!("{i} (pid {pid})")
                } else {
                    format!("{i} (pid {pid}, {})", details.join(", "))
                }
            }
            (Some(i), None) => i.to_string(),
            (None, _) => "-".into(),
        };
        let (info, status) = (entry.status.info(), entry.status.describe());
        let mut cells = match info {
            Some(info) => vec![
                info.name.to_string(),
                info.version.to_string(),
                info.sdk_version.to_string(),
                join(info.storage_system_types.iter()),
            ],
            None => vec!["-".into(), "-".into(), "-".into(), "-".into()],
        };
        cells.extend([
            isolation,
            status,
            entry.path.display().to_string(),
            entry.sha256.clone(),
        ]);
        table.row(cells);
    }
    table.render()
}

fn pool_rows(table: &mut Table, pool: &StoragePool, status: &str) {
    table.row(vec![
        pool.name.to_string(),
        pool.native_id.to_string(),
        capacity(pool.total_capacity_kib),
        capacity(pool.free_capacity_kib),
        capacity(pool.subscribed_capacity_kib),
        pool.resource_type.to_string(),
        list(&pool.supported_drive_types),
        pool.operational_status.to_string(),
        status.to_string(),
    ]);
}

const POOL_HEADER: &[&str] = &[
    "NAME",
    "NATIVE ID",
    "TOTAL",
    "FREE",
    "SUBSCRIBED",
    "PROVISIONING",
    "DRIVE TYPES",
    "STATUS",
    "DISCOVERY",
];

fn port_rows(table: &mut Table, port: &StoragePort, status: &str) {
    table.row(vec![
        port.name.to_string(),
        port.port_network_id.to_string(),
        port.transport_type.to_string(),
        port.ip_address.to_string(),
        opt(&port.tcp_port),
        port.ha_zone.to_string(),
        port.operational_status.to_string(),
        status.to_string(),
    ]);
}

const PORT_HEADER: &[&str] = &[
    "NAME",
    "NETWORK ID",
    "TRANSPORT",
    "IP ADDRESS",
    "TCP PORT",
    "HA ZONE",
    "STATUS",
    "DISCOVERY",
];

fn problems(problems: &[Problem]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let mut out = format!("\nInvalid objects, not written ({})\n", problems.len());
    for p in problems {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

/// A probe's report.
pub fn report(report: &DiscoveryReport) -> String {
    let mut out = String::new();
    let mut systems = Table::new(&[
        "NAME",
        "NATIVE ID",
        "TYPE",
        "SERIAL",
        "MODEL",
        "FIRMWARE",
        "SUPPORTED",
    ]);
    for inv in &report.systems {
        let s = &inv.system;
        systems.row(vec![
            s.name.to_string(),
            s.native_id.to_string(),
            s.system_type.to_string(),
            s.serial_number.to_string(),
            s.model.to_string(),
            s.firmware_version.to_string(),
            if s.is_supported_version { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&format!(
        "Storage systems ({})\n{}",
        report.systems.len(),
        systems.render()
    ));
    for inv in &report.systems {
        out.push_str(&probed_inventory(inv));
    }
    let mut caps = Table::new(&["UID", "CATEGORY", "PROPERTIES"]);
    for d in &report.capability_definitions {
        caps.row(vec![
            d.uid.to_string(),
            d.category.to_string(),
            join(d.property_names.iter()),
        ]);
    }
    out.push_str(&format!(
        "\nCapability definitions ({})\n{}",
        report.capability_definitions.len(),
        caps.render()
    ));
    out.push_str(&problems(&report.problems));
    out
}

fn probed_inventory(inv: &SystemInventory) -> String {
    let name = if inv.system.name.is_empty() {
        &inv.system.native_id
    } else {
        &inv.system.name
    };
    let mut pools = Table::new(POOL_HEADER);
    for p in &inv.pools {
        pool_rows(&mut pools, p, "-");
    }
    let mut ports = Table::new(PORT_HEADER);
    for p in &inv.ports {
        port_rows(&mut ports, p, "-");
    }
    let mut hosts = Table::new(&["HOST", "NATIVE ID", "OS", "INITIATORS", "STATUS"]);
    for h in inv.host_components.iter() {
        hosts.row(vec![
            h.host_name.to_string(),
            h.native_id.to_string(),
            h.os_type.to_string(),
            initiators(h),
            h.operational_status.to_string(),
        ]);
    }
    format!(
        "\nStorage pools of {name} ({})\n{}\nStorage ports of {name} ({})\n{}\nHosts of {name} ({})\n{}",
        inv.pools.len(),
        pools.render(),
        inv.ports.len(),
        ports.render(),
        inv.host_components.len(),
        hosts.render()
    )
}

/// Registered providers.
pub fn providers(providers: &[ProviderRecord]) -> String {
    let mut table = Table::new(&[
        "NAME",
        "TYPE",
        "ADDRESS",
        "CONNECTION",
        "VERSION",
        "COMPATIBILITY",
        "LAST SCAN",
        "NEXT SCAN",
        "ERROR",
        "ID",
    ]);
    for p in providers {
        table.row(vec![
            p.name.clone(),
            p.system_type.clone(),
            format!("{}:{}", p.host, p.port),
            p.connection_status.clone(),
            p.version.clone(),
            p.compatibility.clone(),
            time(p.last_scan_at),
            time(p.next_scan_at),
            p.last_scan_error.clone().unwrap_or_default(),
            p.id.clone(),
        ]);
    }
    table.render()
}

/// Storage systems.
pub fn systems(systems: &[SystemRecord]) -> String {
    let mut table = Table::new(&[
        "NAME",
        "NATIVE GUID",
        "SERIAL",
        "MODEL",
        "FIRMWARE",
        "COMPATIBILITY",
        "REACHABLE",
        "DISCOVERY",
        "LAST DISCOVERY",
        "NEXT DISCOVERY",
        "ERROR",
    ]);
    for s in systems {
        table.row(vec![
            s.name.clone(),
            s.native_guid.clone(),
            s.serial_number.clone(),
            s.model.clone(),
            s.firmware_version.clone(),
            s.compatibility.clone(),
            if s.reachable { "yes" } else { "no" }.into(),
            s.discovery_status.clone(),
            time(s.last_discovery_at),
            time(s.next_discovery_at),
            s.last_discovery_error.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}

/// A system's pools.
pub fn pools(pools: &[PoolRecord], hide_not_visible: bool) -> String {
    let mut table = Table::new(POOL_HEADER);
    for p in pools
        .iter()
        .filter(|p| !hide_not_visible || p.discovery_status == "VISIBLE")
    {
        pool_rows(&mut table, &p.pool, &p.discovery_status);
    }
    table.render()
}

/// A system's ports.
pub fn ports(ports: &[PortRecord], hide_not_visible: bool) -> String {
    let mut table = Table::new(PORT_HEADER);
    for p in ports
        .iter()
        .filter(|p| !hide_not_visible || p.discovery_status == "VISIBLE")
    {
        port_rows(&mut table, &p.port, &p.discovery_status);
    }
    table.render()
}

/// Hosts, each once, with the systems that report them.
pub fn hosts(hosts: &[HostRecord]) -> String {
    let mut table = Table::new(&["HOST", "NATIVE ID", "OS", "INITIATORS", "STATUS", "SYSTEMS"]);
    for h in hosts {
        let systems = h
            .systems
            .iter()
            .map(|l| {
                if l.discovery_status == "VISIBLE" {
                    l.system_guid.clone()
                } else {
                    format!("{} (NOT_VISIBLE)", l.system_guid)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            h.host_name.clone(),
            h.native_id.clone(),
            h.host.os_type.to_string(),
            initiators(&h.host),
            h.host.operational_status.to_string(),
            systems,
        ]);
    }
    table.render()
}

/// Tasks.
pub fn tasks(tasks: &[TaskRecord]) -> String {
    let mut table = Table::new(&[
        "ID",
        "OPERATION",
        "TARGET",
        "STATUS",
        "PROGRESS",
        "STARTED",
        "ENDED",
        "NODE",
        "MESSAGE",
    ]);
    for t in tasks {
        table.row(vec![
            t.id.clone(),
            t.operation.clone(),
            t.target_name.clone(),
            t.status.clone(),
            format!("{}%", t.progress),
            time(t.started_at),
            time(t.ended_at),
            t.node.clone().unwrap_or_default(),
            t.message.clone(),
        ]);
    }
    table.render()
}

/// The whole inventory the way CoprHD's UI lists it, each host once.
pub fn inventory(view: &InventoryView, hide_not_visible: bool) -> String {
    let records: Vec<SystemRecord> = view.systems.iter().map(|s| s.system.clone()).collect();
    let pool_count: usize = view.systems.iter().map(|s| s.pools.len()).sum();
    let port_count: usize = view.systems.iter().map(|s| s.ports.len()).sum();
    let mut out = format!(
        "Inventory: {} providers, {} storage systems, {} pools, {} ports, {} hosts\n\n",
        view.providers.len(),
        view.systems.len(),
        pool_count,
        port_count,
        view.hosts.len()
    );
    out.push_str(&format!(
        "Storage providers ({})\n{}\nStorage systems ({})\n{}",
        view.providers.len(),
        providers(&view.providers),
        records.len(),
        systems(&records)
    ));
    for s in &view.systems {
        let name = &s.system.name;
        out.push_str(&format!(
            "\nStorage pools of {name} ({})\n{}\nStorage ports of {name} ({})\n{}",
            s.pools.len(),
            pools(&s.pools, hide_not_visible),
            s.ports.len(),
            ports(&s.ports, hide_not_visible)
        ));
    }
    out.push_str(&format!(
        "\nHosts ({})\n{}",
        view.hosts.len(),
        hosts(&view.hosts)
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn capacities_are_scaled_with_honest_units() {
        assert_eq!(super::capacity(0), "0.00 KiB");
        assert_eq!(super::capacity(512), "512.00 KiB");
        assert_eq!(super::capacity(1_449_551_462), "1.35 TiB");
        assert_eq!(super::capacity(1024 * 1024), "1.00 GiB");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(super::time(Some(0)), "1970-01-01 00:00:00Z");
        assert_eq!(super::time(Some(1_795_313_697_780)), "2026-11-22 02:14:57Z");
        assert_eq!(super::time(None), "-");
    }
}
