//! hello-driver: the smallest complete Southbound driver.
//!
//! It "discovers" an array described by a JSON file whose path is the
//! provider's host field (see `array.json` beside this crate). Copy it, then
//! replace [`load_array`] with calls to your device's API.

use serde::Deserialize;
use southbound_sdk::{
    async_trait, export_driver, CallContext, CapabilityCategory, CapabilityDefinition,
    CapabilityInstance, DiscoveryDriver, DriveType, DriverError, DriverInfo, DriverResult,
    HostOsType, Initiator, InitiatorProtocol, OperationalStatus, PoolOperationalStatus, Protocol,
    ProviderDetails, ProviderScan, ROption, ResourceType, StorageHostComponent, StoragePool,
    StoragePort, StorageProvider, StorageSystem, TransportType,
};

/// The storage system type this driver serves.
pub const SYSTEM_TYPE: &str = "hello";
const GIB_IN_KIB: u64 = 1024 * 1024;

/// The driver. Stateless: everything it needs arrives with each call.
#[derive(Default)]
pub struct HelloDriver;

#[async_trait]
impl DiscoveryDriver for HelloDriver {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(
            "hello-driver",
            env!("CARGO_PKG_VERSION"),
            "Southbound examples",
        )
        .with_system_type(SYSTEM_TYPE)
        .with_provider_type("hello-file")
        .with_capability(
            CapabilityDefinition::new(
                "deduplication",
                CapabilityCategory::DATA_STORAGE,
                &["ENABLED"],
            )
            .with_description("The pool deduplicates data"),
        )
        .with_capability(
            CapabilityDefinition::new(
                "autoTieringPolicy",
                CapabilityCategory::STORAGE_PERFORMANCE,
                &["POLICY_ID", "PROVISIONING_TYPE"],
            )
            .with_description("The pool moves data between tiers under a named policy"),
        )
    }

    async fn scan_provider(
        &self,
        _ctx: &CallContext,
        provider: &StorageProvider,
    ) -> DriverResult<ProviderScan> {
        let array = load_array(provider).await?;
        Ok(ProviderScan {
            details: ProviderDetails {
                provider_version: array.firmware.clone().into(),
                manufacturer: "Hello Storage".into(),
                description: format!("array description file {}", provider.host).into(),
                is_supported_version: true,
            },
            systems: array.systems.iter().map(|s| s.to_system(&array)).collect(),
        })
    }

    async fn discover_system(
        &self,
        _ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<StorageSystem> {
        let array = load_array(provider).await?;
        Ok(find_system(&array, system)?.to_system(&array))
    }

    async fn discover_pools(
        &self,
        _ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePool>> {
        let array = load_array(provider).await?;
        let sys = find_system(&array, system)?;
        Ok(sys.pools.iter().map(|p| p.to_pool(&sys.id)).collect())
    }

    async fn discover_ports(
        &self,
        _ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StoragePort>> {
        let array = load_array(provider).await?;
        let sys = find_system(&array, system)?;
        Ok(sys.ports.iter().map(|p| p.to_port(&sys.id)).collect())
    }

    async fn discover_host_components(
        &self,
        _ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> DriverResult<Vec<StorageHostComponent>> {
        let array = load_array(provider).await?;
        let sys = find_system(&array, system)?;
        Ok(sys.hosts.iter().map(ArrayHost::to_host).collect())
    }
}

export_driver!(HelloDriver);

/// The array description file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Array {
    /// Credentials the "array" accepts; none means any.
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    firmware: String,
    systems: Vec<ArraySystem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArraySystem {
    id: String,
    name: String,
    model: String,
    #[serde(default)]
    pools: Vec<ArrayPool>,
    #[serde(default)]
    ports: Vec<ArrayPort>,
    #[serde(default)]
    hosts: Vec<ArrayHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrayPool {
    id: String,
    name: String,
    total_gib: u64,
    free_gib: u64,
    subscribed_gib: u64,
    media: DriveType,
    provisioning: ResourceType,
    #[serde(default)]
    dedup: bool,
    #[serde(default)]
    tiering_policy: Option<String>,
    #[serde(default = "yes")]
    online: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrayPort {
    id: String,
    ip: String,
    #[serde(default = "iscsi_port")]
    tcp_port: u16,
    #[serde(default)]
    zone: String,
    #[serde(default = "yes")]
    up: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrayHost {
    name: String,
    iqn: String,
    #[serde(default)]
    os: Option<HostOsType>,
}

fn yes() -> bool {
    true
}

fn iscsi_port() -> u16 {
    3260
}

/// Reads and checks the array description: the one place a real driver
/// would talk to its device.
async fn load_array(provider: &StorageProvider) -> DriverResult<Array> {
    let path = provider.host.as_str();
    if path.is_empty() {
        return Err(DriverError::invalid_input(
            "provider host must be the path of an array description file",
        ));
    }
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        DriverError::unavailable(format!("cannot read array description {path}: {e}"))
    })?;
    let array: Array = serde_json::from_str(&text)
        .map_err(|e| DriverError::protocol(format!("array description {path} is invalid: {e}")))?;
    let user_ok = array
        .username
        .as_deref()
        .is_none_or(|u| u == provider.username.as_str());
    let password_ok = array
        .password
        .as_deref()
        .is_none_or(|p| p == provider.password.expose());
    if !(user_ok && password_ok) {
        return Err(DriverError::authentication(format!(
            "array {path} rejected the credentials of user '{}'",
            provider.username
        )));
    }
    Ok(array)
}

fn find_system<'a>(array: &'a Array, system: &StorageSystem) -> DriverResult<&'a ArraySystem> {
    array
        .systems
        .iter()
        .find(|s| s.id == system.native_id.as_str())
        .ok_or_else(|| {
            DriverError::not_found(format!("no system '{}' in the array", system.native_id))
        })
}

impl ArraySystem {
    fn to_system(&self, array: &Array) -> StorageSystem {
        let mut version = array.firmware.splitn(3, '.');
        StorageSystem {
            native_id: self.id.clone().into(),
            system_type: SYSTEM_TYPE.into(),
            name: self.name.clone().into(),
            serial_number: self.id.clone().into(),
            model: self.model.clone().into(),
            firmware_version: array.firmware.clone().into(),
            major_version: version.next().unwrap_or_default().into(),
            minor_version: version.next().unwrap_or_default().into(),
            protocols: vec![Protocol::ISCSI].into(),
            is_supported_version: true,
            provisioning_type: ResourceType::THIN_AND_THICK,
            ..StorageSystem::default()
        }
    }
}

impl ArrayPool {
    fn to_pool(&self, system_id: &str) -> StoragePool {
        let mut capabilities = vec![CapabilityInstance::new("deduplication", "deduplication")
            .with_property("ENABLED", [if self.dedup { "true" } else { "false" }])];
        if let Some(policy) = &self.tiering_policy {
            capabilities.push(
                CapabilityInstance::new("autoTieringPolicy", policy)
                    .with_property("POLICY_ID", [policy.as_str()])
                    .with_property(
                        "PROVISIONING_TYPE",
                        [provisioning_policy_type(self.provisioning)],
                    ),
            );
        }
        StoragePool {
            native_id: self.id.clone().into(),
            storage_system_id: system_id.into(),
            name: self.name.clone().into(),
            total_capacity_kib: self.total_gib * GIB_IN_KIB,
            free_capacity_kib: self.free_gib * GIB_IN_KIB,
            subscribed_capacity_kib: self.subscribed_gib * GIB_IN_KIB,
            supported_drive_types: vec![self.media].into(),
            resource_type: self.provisioning,
            protocols: vec![Protocol::ISCSI].into(),
            operational_status: if self.online {
                PoolOperationalStatus::READY
            } else {
                PoolOperationalStatus::NOT_READY
            },
            minimum_thin_volume_size_kib: ROption::RSome(GIB_IN_KIB),
            maximum_thin_volume_size_kib: ROption::RSome(self.total_gib * GIB_IN_KIB),
            minimum_thick_volume_size_kib: ROption::RSome(GIB_IN_KIB),
            maximum_thick_volume_size_kib: ROption::RSome(self.total_gib * GIB_IN_KIB),
            capabilities: capabilities.into(),
        }
    }
}

/// CoprHD's `AutoTieringPolicyProvisioningType` for a pool's provisioning.
fn provisioning_policy_type(provisioning: ResourceType) -> &'static str {
    match provisioning {
        ResourceType::THIN => "ThinlyProvisioned",
        ResourceType::THICK => "ThicklyProvisioned",
        _ => "All",
    }
}

impl ArrayPort {
    fn to_port(&self, system_id: &str) -> StoragePort {
        StoragePort {
            native_id: self.id.clone().into(),
            storage_system_id: system_id.into(),
            name: self.id.clone().into(),
            port_network_id: format!("{}:{}", self.ip, self.tcp_port).into(),
            transport_type: TransportType::IP,
            network_id: "hello-lan".into(),
            ip_address: self.ip.clone().into(),
            tcp_port: ROption::RSome(self.tcp_port),
            port_group: system_id.into(),
            ha_zone: self.zone.clone().into(),
            operational_status: if self.up {
                OperationalStatus::OK
            } else {
                OperationalStatus::NOT_OK
            },
            ..StoragePort::default()
        }
    }
}

impl ArrayHost {
    fn to_host(&self) -> StorageHostComponent {
        StorageHostComponent {
            native_id: self.iqn.clone().into(),
            host_name: self.name.clone().into(),
            os_type: self.os.unwrap_or(HostOsType::OTHER),
            operational_status: OperationalStatus::OK,
            is_supported_version: true,
            initiators: vec![Initiator {
                native_id: self.iqn.clone().into(),
                port: self.iqn.clone().into(),
                protocol: InitiatorProtocol::ISCSI,
                host_name: self.name.clone().into(),
                ..Initiator::default()
            }]
            .into(),
        }
    }
}
