//! scaleio-driver: discovers ScaleIO / VxFlex OS / PowerFlex systems through
//! the gateway REST API (API 2.x, 3.x and 4.x).
//!
//! Mapping (as in CoprHD's ScaleIO support):
//!
//! | ScaleIO | Southbound |
//! |---|---|
//! | gateway of the primary MDM | storage provider |
//! | protection domain | storage system (type `scaleio`, native id = PD id) |
//! | storage pool | storage pool |
//! | SDS of the PD | storage port (network id = SDS id, HA zone = fault set) |
//! | SDC | host component (native id = SDC GUID) with one ScaleIO initiator (port = SDC id) |
//!
//! Pool capacities are **usable** KiB: `total = (maxCapacityInKb −
//! spareCapacityInKb) / 2` (after spare and two-copy mirroring), `free =
//! capacityAvailableForVolumeAllocationInKb` (never above total),
//! `subscribed = primaryVacInKb` (the sum of volume sizes).
//!
//! Cost: `scan_provider` reads `GET /api/instances` and one
//! `querySelectedStatistics`; the other calls of the cycle reuse that
//! snapshot (see [`client::SNAPSHOT_MAX_AGE`]), so a full discovery costs the
//! same number of requests whatever the system's size. A system's discovery
//! that does not follow a scan at once (a scheduled rediscovery) starts
//! with a fresh read ([`client::DISCOVERY_START_MAX_AGE`]).

mod api;
pub mod client;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use southbound_sdk::{
    async_trait, export_driver, CallContext, CapabilityCategory, CapabilityDefinition,
    CapabilityInstance, DiscoveryDriver, DriveType, DriverError, DriverInfo, DriverResult,
    HostOsType, Initiator, InitiatorProtocol, OperationalStatus, PoolOperationalStatus, PortType,
    Protocol, ProviderDetails, ProviderScan, ROption, ResourceType, StorageHostComponent,
    StoragePool, StoragePort, StorageProvider, StorageSystem, TransportType,
};

use client::{Gateway, Snapshot};

/// The storage system type this driver serves.
pub const SYSTEM_TYPE: &str = "scaleio";
/// The provider type (a ScaleIO gateway).
pub const PROVIDER_TYPE: &str = "scaleioapi";
const GIB: u64 = 1024 * 1024;
/// ScaleIO volumes come in 8 GiB steps.
const MIN_VOLUME_KIB: u64 = 8 * GIB;
/// The commonly cited 1 PB volume limit (CoprHD's `maxVolumeSize` 1048576, in GB).
const MAX_VOLUME_KIB: u64 = 1_048_576 * GIB;

/// The driver: one gateway session per provider, reused across calls and cycles.
#[derive(Default)]
pub struct ScaleioDriver {
    gateways: Mutex<HashMap<String, Arc<Gateway>>>,
}

impl ScaleioDriver {
    fn gateway(&self, provider: &StorageProvider) -> DriverResult<Arc<Gateway>> {
        let key = client::session_key(provider);
        let mut gateways = self
            .gateways
            .lock()
            .map_err(|_| DriverError::internal("the gateway session table is poisoned"))?;
        if let Some(gateway) = gateways.get(&key) {
            if gateway.has_password(&provider.password) {
                return Ok(Arc::clone(gateway));
            }
        }
        let gateway = Arc::new(Gateway::new(provider)?);
        gateways.insert(key, Arc::clone(&gateway));
        Ok(gateway)
    }

    async fn snapshot(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        max_age: std::time::Duration,
    ) -> DriverResult<Arc<Snapshot>> {
        self.gateway(provider)?.snapshot(ctx, max_age).await
    }
}

/// Capability definitions the driver reports for pools.
fn capability_definitions() -> Vec<CapabilityDefinition> {
    vec![
        CapabilityDefinition::new(
            "provisioningType",
            CapabilityCategory::DATA_STORAGE,
            &["PROVISIONING_TYPE"],
        )
        .with_description("Volume provisioning the pool supports (THIN, THICK)"),
        CapabilityDefinition::new(
            "mediaType",
            CapabilityCategory::DATA_STORAGE,
            &["MEDIA_TYPE"],
        )
        .with_description("ScaleIO media type of the pool's devices (HDD, SSD, Transitional)"),
        CapabilityDefinition::new(
            "dataLayout",
            CapabilityCategory::DATA_STORAGE,
            &["DATA_LAYOUT"],
        )
        .with_description("ScaleIO data layout (MediumGranularity, FineGranularity)"),
        CapabilityDefinition::new(
            "volumeCompression",
            CapabilityCategory::DATA_STORAGE,
            &["ENABLED", "METHOD"],
        )
        .with_description("Whether volumes of the pool can be compressed, and how"),
        CapabilityDefinition::new(
            "zeroPadding",
            CapabilityCategory::DATA_STORAGE,
            &["ENABLED"],
        )
        .with_description("Whether the pool zero-pads new allocations"),
    ]
}

#[async_trait]
impl DiscoveryDriver for ScaleioDriver {
    fn info(&self) -> DriverInfo {
        let info = DriverInfo::new("scaleio-driver", env!("CARGO_PKG_VERSION"), "Southbound")
            .with_system_type(SYSTEM_TYPE)
            .with_provider_type(PROVIDER_TYPE);
        capability_definitions()
            .into_iter()
            .fold(info, DriverInfo::with_capability)
    }

    async fn scan_provider(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
    ) -> DriverResult<ProviderScan> {
        let snapshot = self.snapshot(ctx, provider, Duration::ZERO).await?;
        let system = system_of(&snapshot)?;
        let product = Product::parse(system.system_version_name.as_deref().unwrap_or_default());
        let api_major = snapshot
            .api_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        let systems = snapshot
            .bulk
            .protection_domain_list
            .iter()
            .flatten()
            .map(|pd| map_system(&snapshot, provider, pd))
            .collect::<DriverResult<Vec<_>>>()?;
        Ok(ProviderScan {
            details: ProviderDetails {
                provider_version: snapshot.api_version.clone().into(),
                manufacturer: "Dell".into(),
                description: format!(
                    "{} gateway of system {} ({})",
                    product.name,
                    system.id,
                    system.name.as_deref().unwrap_or("unnamed")
                )
                .into(),
                is_supported_version: api_major.is_some_and(|m| (2..=4).contains(&m)),
            },
            systems: systems.into(),
        })
    }

    async fn discover_system(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<StorageSystem> {
        let snapshot = self
            .snapshot(ctx, provider, client::DISCOVERY_START_MAX_AGE)
            .await?;
        let pd = find_pd(&snapshot, system)?;
        map_system(&snapshot, provider, pd)
    }

    async fn discover_pools(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePool>> {
        let snapshot = self
            .snapshot(ctx, provider, client::SNAPSHOT_MAX_AGE)
            .await?;
        let pd = find_pd(&snapshot, system)?;
        Ok(snapshot
            .bulk
            .storage_pool_list
            .iter()
            .flatten()
            .filter(|p| p.protection_domain_id.as_deref() == Some(pd.id.as_str()))
            .map(|p| map_pool(&snapshot, p))
            .collect())
    }

    async fn discover_ports(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePort>> {
        let snapshot = self
            .snapshot(ctx, provider, client::SNAPSHOT_MAX_AGE)
            .await?;
        let pd = find_pd(&snapshot, system)?;
        let fault_sets: HashMap<&str, &str> = snapshot
            .bulk
            .fault_set_list
            .iter()
            .flatten()
            .map(|f| (f.id.as_str(), f.name.as_deref().unwrap_or(f.id.as_str())))
            .collect();
        let network = network_id(&snapshot)?;
        Ok(snapshot
            .bulk
            .sds_list
            .iter()
            .flatten()
            .filter(|s| s.protection_domain_id.as_deref() == Some(pd.id.as_str()))
            .map(|s| map_port(s, &pd.id, &network, &fault_sets))
            .collect())
    }

    async fn discover_host_components(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StorageHostComponent>> {
        let snapshot = self
            .snapshot(ctx, provider, client::SNAPSHOT_MAX_AGE)
            .await?;
        find_pd(&snapshot, system)?;
        let network = network_id(&snapshot)?;
        // SDCs belong to the whole ScaleIO system: every protection domain
        // can serve every SDC, so each system reports all of them.
        Ok(snapshot
            .bulk
            .sdc_list
            .iter()
            .flatten()
            .filter(|s| s.host_type.as_deref().is_none_or(|t| t != "NVMeHost"))
            .map(|s| map_host(s, &network))
            .collect())
    }
}

export_driver!(ScaleioDriver);

fn system_of(snapshot: &Snapshot) -> DriverResult<&api::System> {
    snapshot
        .bulk
        .system
        .as_ref()
        .ok_or_else(|| DriverError::protocol("GET /api/instances: the answer has no System object"))
}

fn network_id(snapshot: &Snapshot) -> DriverResult<String> {
    let system = system_of(snapshot)?;
    Ok(system
        .install_id
        .clone()
        .unwrap_or_else(|| system.id.clone()))
}

fn find_pd<'a>(
    snapshot: &'a Snapshot,
    system: &StorageSystem,
) -> DriverResult<&'a api::ProtectionDomain> {
    snapshot
        .bulk
        .protection_domain_list
        .iter()
        .flatten()
        .find(|pd| pd.id == system.native_id.as_str())
        .ok_or_else(|| {
            DriverError::not_found(format!(
                "protection domain {} is not on the gateway any more",
                system.native_id
            ))
        })
}

/// Product name and version from `systemVersionName`
/// (`"DellEMC PowerFlex Version: R3_6.200.104"` -> PowerFlex, 3.6.200.104).
struct Product {
    name: String,
    version: String,
    major: Option<u32>,
    minor: Option<u32>,
}

impl Product {
    fn parse(system_version_name: &str) -> Self {
        let (prefix, version) = system_version_name
            .split_once("Version:")
            .unwrap_or((system_version_name, ""));
        let name = prefix.trim().trim_start_matches("DellEMC").trim();
        let version = version.trim().trim_start_matches('R').replace('_', ".");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
        Self {
            name: if name.is_empty() {
                "ScaleIO".into()
            } else {
                name.into()
            },
            major: parts.next().flatten(),
            minor: parts.next().flatten(),
            version,
        }
    }
}

fn map_system(
    snapshot: &Snapshot,
    provider: &StorageProvider,
    pd: &api::ProtectionDomain,
) -> DriverResult<StorageSystem> {
    let system = system_of(snapshot)?;
    let product = Product::parse(system.system_version_name.as_deref().unwrap_or_default());
    Ok(StorageSystem {
        native_id: pd.id.clone().into(),
        system_type: SYSTEM_TYPE.into(),
        name: pd.name.clone().unwrap_or_else(|| pd.id.clone()).into(),
        serial_number: format!("{}-{}", system.id, pd.id).into(),
        model: product.name.clone().into(),
        firmware_version: product.version.clone().into(),
        major_version: product
            .major
            .map(|m| m.to_string())
            .unwrap_or_default()
            .into(),
        minor_version: product
            .minor
            .map(|m| m.to_string())
            .unwrap_or_default()
            .into(),
        ip_address: provider.host.clone(),
        port_number: ROption::RSome(provider.port),
        protocols: vec![Protocol::SCALEIO].into(),
        is_supported_version: product.major.is_some_and(|m| (2..=4).contains(&m)),
        provisioning_type: ResourceType::THIN_AND_THICK,
        capabilities: Default::default(),
    })
}

fn map_pool(snapshot: &Snapshot, pool: &api::StoragePool) -> StoragePool {
    let stats = snapshot.pool_statistics.get(&pool.id);
    let stat = |name| stats.and_then(|s| api::stat_u64(s, name)).unwrap_or(0);
    if stats.is_none() {
        southbound_sdk::log::warn(format!(
            "no statistics for pool {}; capacities reported as 0",
            pool.id
        ));
    }
    let raw = stat("maxCapacityInKb");
    let spare = stat("spareCapacityInKb");
    // Usable: what is left after the spare reserve, halved for two-copy mirroring.
    let total = raw.saturating_sub(spare) / 2;
    let free = stat("capacityAvailableForVolumeAllocationInKb").min(total);
    let fine_granularity = pool.data_layout.as_deref() == Some("FineGranularity");
    let resource_type = if fine_granularity {
        ResourceType::THIN
    } else {
        ResourceType::THIN_AND_THICK
    };
    let drive_type = match pool.media_type.as_deref() {
        Some("SSD") => DriveType::SSD,
        Some("HDD") => DriveType::HDD,
        _ => DriveType::UNKNOWN,
    };
    let provisioning: &[&str] = if fine_granularity {
        &["THIN"]
    } else {
        &["THIN", "THICK"]
    };
    let mut capabilities = vec![
        CapabilityInstance::new("provisioningType", "provisioningType")
            .with_property("PROVISIONING_TYPE", provisioning.iter().copied()),
    ];
    if let Some(media) = &pool.media_type {
        capabilities.push(
            CapabilityInstance::new("mediaType", "mediaType")
                .with_property("MEDIA_TYPE", [media.as_str()]),
        );
    }
    if let Some(layout) = &pool.data_layout {
        capabilities.push(
            CapabilityInstance::new("dataLayout", "dataLayout")
                .with_property("DATA_LAYOUT", [layout.as_str()]),
        );
    }
    if let Some(method) = &pool.compression_method {
        let enabled = !matches!(method.as_str(), "None" | "Invalid");
        capabilities.push(
            CapabilityInstance::new("volumeCompression", "volumeCompression")
                .with_property("ENABLED", [if enabled { "true" } else { "false" }])
                .with_property("METHOD", [method.as_str()]),
        );
    }
    if let Some(zero) = pool.zero_padding_enabled {
        capabilities.push(
            CapabilityInstance::new("zeroPadding", "zeroPadding")
                .with_property("ENABLED", [if zero { "true" } else { "false" }]),
        );
    }
    StoragePool {
        native_id: pool.id.clone().into(),
        storage_system_id: pool.protection_domain_id.clone().unwrap_or_default().into(),
        name: pool.name.clone().unwrap_or_else(|| pool.id.clone()).into(),
        total_capacity_kib: total,
        free_capacity_kib: free,
        subscribed_capacity_kib: stat("primaryVacInKb"),
        supported_drive_types: vec![drive_type].into(),
        resource_type,
        protocols: vec![Protocol::SCALEIO].into(),
        operational_status: if stats.is_some() {
            PoolOperationalStatus::READY
        } else {
            PoolOperationalStatus::NOT_READY
        },
        minimum_thin_volume_size_kib: ROption::RSome(MIN_VOLUME_KIB),
        maximum_thin_volume_size_kib: ROption::RSome(MAX_VOLUME_KIB),
        minimum_thick_volume_size_kib: if fine_granularity {
            ROption::RNone
        } else {
            ROption::RSome(MIN_VOLUME_KIB)
        },
        maximum_thick_volume_size_kib: if fine_granularity {
            ROption::RNone
        } else {
            ROption::RSome(MAX_VOLUME_KIB)
        },
        capabilities: capabilities.into(),
    }
}

/// Health from the SDS's states: every state present must be the healthy one.
fn sds_status(sds: &api::Sds) -> OperationalStatus {
    let checks = [
        (sds.sds_state.as_deref(), "Normal"),
        (sds.membership_state.as_deref(), "Joined"),
        (sds.mdm_connection_state.as_deref(), "Connected"),
    ];
    let present: Vec<bool> = checks
        .iter()
        .filter_map(|(state, good)| state.map(|s| s == *good))
        .collect();
    match present.as_slice() {
        [] => OperationalStatus::UNKNOWN,
        all if all.iter().all(|ok| *ok) => OperationalStatus::OK,
        _ => OperationalStatus::NOT_OK,
    }
}

fn map_port(
    sds: &api::Sds,
    pd_id: &str,
    network: &str,
    fault_sets: &HashMap<&str, &str>,
) -> StoragePort {
    // Hosts reach an SDS on its "all" or "sdcOnly" addresses; "sdsOnly" is back end.
    let ips = sds.ip_list.as_deref().unwrap_or_default();
    let ip = ips
        .iter()
        .find(|e| matches!(e.role.as_deref(), Some("all" | "sdcOnly") | None))
        .or_else(|| ips.first())
        .map(|e| e.ip.clone())
        .unwrap_or_default();
    let ha_zone = sds
        .fault_set_id
        .as_deref()
        .map(|id| fault_sets.get(id).copied().unwrap_or(id).to_owned())
        .unwrap_or_default();
    StoragePort {
        native_id: sds.id.clone().into(),
        storage_system_id: pd_id.into(),
        name: sds.name.clone().unwrap_or_else(|| sds.id.clone()).into(),
        port_network_id: sds.id.clone().into(),
        transport_type: TransportType::SCALEIO,
        network_id: network.into(),
        ip_address: ip.into(),
        tcp_port: sds.port.map(ROption::RSome).unwrap_or(ROption::RNone),
        speed_gbps: ROption::RNone,
        port_group: pd_id.into(),
        port_sub_group: Default::default(),
        ha_zone: ha_zone.into(),
        operational_status: sds_status(sds),
        port_type: PortType::FRONTEND,
        capabilities: Default::default(),
    }
}

fn map_host(sdc: &api::Sdc, network: &str) -> StorageHostComponent {
    let host_name = sdc
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| sdc.sdc_ip.clone())
        .unwrap_or_else(|| sdc.id.clone());
    let identity = sdc.sdc_guid.clone().unwrap_or_else(|| sdc.id.clone());
    let status = match sdc.mdm_connection_state.as_deref() {
        Some("Connected") => OperationalStatus::OK,
        Some(_) => OperationalStatus::NOT_OK,
        None => OperationalStatus::UNKNOWN,
    };
    let os_type = sdc
        .os_type
        .as_deref()
        .and_then(|os| os.parse::<HostOsType>().ok())
        .unwrap_or(HostOsType::OTHER);
    StorageHostComponent {
        native_id: identity.clone().into(),
        host_name: host_name.clone().into(),
        os_type,
        operational_status: status,
        is_supported_version: true,
        initiators: vec![Initiator {
            native_id: identity.into(),
            port: sdc.id.clone().into(),
            protocol: InitiatorProtocol::SCALEIO,
            host_name: host_name.into(),
            network_id: network.into(),
            ..Initiator::default()
        }]
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_version_from_system_version_name() {
        let p = Product::parse("DellEMC PowerFlex Version: R3_6.200.104");
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.major, p.minor),
            ("PowerFlex", "3.6.200.104", Some(3), Some(6))
        );
        let p = Product::parse("DellEMC ScaleIO Version: R2_6.12000.101");
        assert_eq!((p.name.as_str(), p.major), ("ScaleIO", Some(2)));
        let p = Product::parse("");
        assert_eq!((p.name.as_str(), p.major), ("ScaleIO", None));
    }

    #[test]
    fn sds_health_needs_every_present_state_healthy() {
        let mut sds = api::Sds::default();
        assert_eq!(sds_status(&sds), OperationalStatus::UNKNOWN);
        sds.sds_state = Some("Normal".into());
        sds.mdm_connection_state = Some("Connected".into());
        assert_eq!(sds_status(&sds), OperationalStatus::OK);
        sds.mdm_connection_state = Some("Disconnected".into());
        assert_eq!(sds_status(&sds), OperationalStatus::NOT_OK);
    }

    #[test]
    fn a_ca_pem_without_certificates_is_invalid_input() {
        let provider = StorageProvider {
            host: "127.0.0.1".into(),
            port: 443,
            use_ssl: true,
            ca_certificate_pem: ROption::RSome("not a certificate".into()),
            ..StorageProvider::default()
        };
        let err = Gateway::new(&provider).err().expect("refused");
        assert_eq!(err.kind, southbound_sdk::ErrorKind::InvalidInput, "{err}");
    }

    /// A gateway answer with nulls, missing fields and fields this driver has
    /// never heard of still maps, with the gaps reported as unknown.
    #[test]
    fn sparse_and_unknown_fields_are_tolerated() {
        let bulk: api::Bulk = serde_json::from_value(serde_json::json!({
            "System": {"id": "s1", "name": null, "systemVersionName": null, "brandNewField": {"x": 1}},
            "protectionDomainList": [{"id": "pd1", "name": null}],
            "storagePoolList": [{"id": "p1", "protectionDomainId": "pd1", "mediaType": null, "futureKnob": true}],
            "sdsList": [{"id": "sds1", "protectionDomainId": "pd1", "ipList": null, "port": null}],
            "sdcList": [{"id": "sdc1", "name": null, "sdcIp": null, "sdcGuid": null}],
            "faultSetList": null,
            "rfcacheDeviceList": null,
            "someNewList": []
        }))
        .unwrap();
        let snapshot = Snapshot {
            api_version: "9.9".into(),
            bulk,
            pool_statistics: HashMap::new(),
        };
        let provider = StorageProvider {
            host: "gw".into(),
            port: 443,
            ..StorageProvider::default()
        };
        let pd = &snapshot.bulk.protection_domain_list.as_ref().unwrap()[0];
        let system = map_system(&snapshot, &provider, pd).unwrap();
        assert_eq!(
            (system.name.as_str(), system.model.as_str()),
            ("pd1", "ScaleIO")
        );
        assert!(
            !system.is_supported_version,
            "no version: not claimed supported"
        );

        let pool = map_pool(
            &snapshot,
            &snapshot.bulk.storage_pool_list.as_ref().unwrap()[0],
        );
        assert_eq!((pool.total_capacity_kib, pool.free_capacity_kib), (0, 0));
        assert_eq!(
            pool.operational_status,
            PoolOperationalStatus::NOT_READY,
            "no statistics"
        );
        assert_eq!(pool.supported_drive_types.as_slice(), &[DriveType::UNKNOWN]);

        let port = map_port(
            &snapshot.bulk.sds_list.as_ref().unwrap()[0],
            "pd1",
            "net",
            &HashMap::new(),
        );
        assert_eq!(
            (port.ip_address.as_str(), port.tcp_port),
            ("", ROption::RNone)
        );
        assert_eq!(port.operational_status, OperationalStatus::UNKNOWN);

        let host = map_host(&snapshot.bulk.sdc_list.as_ref().unwrap()[0], "net");
        assert_eq!(
            (host.native_id.as_str(), host.host_name.as_str()),
            ("sdc1", "sdc1")
        );
        assert_eq!(host.operational_status, OperationalStatus::UNKNOWN);
        assert_eq!(host.os_type, HostOsType::OTHER);
    }
}
