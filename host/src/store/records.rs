//! What the store hands out: one record type per table, serialized as the
//! REST API's JSON. Times are milliseconds since the Unix epoch (UTC).

use serde::{Deserialize, Serialize};
use southbound_sdk::{
    CapabilityDefinition, StorageHostComponent, StoragePool, StoragePort, StorageSystem,
};
use utoipa::ToSchema;

/// A registered storage provider. The password is never part of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderRecord {
    /// Opaque id.
    pub id: String,
    /// Unique display name.
    pub name: String,
    /// Storage system type; picks the driver.
    pub system_type: String,
    /// Management address.
    pub host: String,
    /// Management port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// TLS on.
    pub use_ssl: bool,
    /// A CA certificate is pinned.
    pub ca_certificate_pinned: bool,
    /// TLS verification off.
    pub insecure: bool,
    /// INITIALIZING, CONNECTED or NOTCONNECTED.
    pub connection_status: String,
    /// UNKNOWN, COMPATIBLE or INCOMPATIBLE.
    pub compatibility: String,
    /// Provider software version, from the last scan.
    pub version: String,
    /// Maker, from the last scan.
    pub manufacturer: String,
    /// CREATED, SCHEDULED, IN_PROGRESS, COMPLETE or ERROR.
    pub scan_status: String,
    /// Last scan (ms).
    pub last_scan_at: Option<i64>,
    /// Last successful scan (ms).
    pub last_scan_success_at: Option<i64>,
    /// Next scheduled scan (ms).
    pub next_scan_at: Option<i64>,
    /// Error of the last scan, if it failed.
    pub last_scan_error: Option<String>,
    /// Registration time (ms).
    pub created_at: i64,
}

/// A storage system (for ScaleIO, a protection domain).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemRecord {
    /// Opaque id.
    pub id: String,
    /// `<type>+<native id>`.
    pub native_guid: String,
    /// The provider that manages it (none once the provider is removed).
    pub provider_id: Option<String>,
    /// Storage system type.
    pub system_type: String,
    /// The driver's id.
    pub native_id: String,
    /// Display name.
    pub name: String,
    /// Serial number.
    pub serial_number: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// UNKNOWN, COMPATIBLE or INCOMPATIBLE (firmware the driver does not support).
    pub compatibility: String,
    /// Whether its provider reported it at the last scan and its last discovery succeeded.
    pub reachable: bool,
    /// CREATED, SCHEDULED, IN_PROGRESS, COMPLETE or ERROR.
    pub discovery_status: String,
    /// Last discovery (ms).
    pub last_discovery_at: Option<i64>,
    /// Last successful discovery (ms).
    pub last_discovery_success_at: Option<i64>,
    /// Next scheduled discovery (ms).
    pub next_discovery_at: Option<i64>,
    /// Error of the last discovery, if it failed.
    pub last_discovery_error: Option<String>,
    /// Everything the driver reported about the system.
    #[schema(value_type = Object)]
    pub details: StorageSystem,
    /// First seen (ms).
    pub created_at: i64,
}

/// VISIBLE or NOT_VISIBLE: whether the last discovery still reported an object.
pub const VISIBLE: &str = "VISIBLE";
/// See [`VISIBLE`].
pub const NOT_VISIBLE: &str = "NOT_VISIBLE";

/// A storage pool of a system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolRecord {
    /// Opaque id.
    pub id: String,
    /// Owning system's id.
    pub system_id: String,
    /// `<system guid>+POOL+<native id>`.
    pub native_guid: String,
    /// VISIBLE or NOT_VISIBLE.
    pub discovery_status: String,
    /// The pool as the driver reported it last (capacities in KiB).
    #[schema(value_type = Object)]
    pub pool: StoragePool,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A storage port of a system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PortRecord {
    /// Opaque id.
    pub id: String,
    /// Owning system's id.
    pub system_id: String,
    /// `<system guid>+PORT+<native id>`.
    pub native_guid: String,
    /// VISIBLE or NOT_VISIBLE.
    pub discovery_status: String,
    /// The port as the driver reported it last.
    #[schema(value_type = Object)]
    pub port: StoragePort,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A system that reports a host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostLink {
    /// The system's id.
    pub system_id: String,
    /// The system's native GUID.
    pub system_guid: String,
    /// VISIBLE or NOT_VISIBLE: whether the system still reports the host.
    pub discovery_status: String,
}

/// A host (for ScaleIO, an SDC), once, with the systems that report it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostRecord {
    /// Opaque id.
    pub id: String,
    /// The host's own identity (SDC GUID).
    pub native_id: String,
    /// Host name.
    pub host_name: String,
    /// The host as last reported, with its initiators.
    #[schema(value_type = Object)]
    pub host: StorageHostComponent,
    /// The systems that report it.
    pub systems: Vec<HostLink>,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A capability definition, with the systems that declare it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CapabilityDefinitionRecord {
    /// The definition.
    #[schema(value_type = Object)]
    pub definition: CapabilityDefinition,
    /// Ids of the systems whose driver declares it.
    pub system_ids: Vec<String>,
}

/// An operation and its progress, with CoprHD's statuses (QUEUED,
/// PROVISIONING, READY, FAILED, WARNING, ...).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskRecord {
    /// Opaque id; poll `/api/v1/tasks/{id}`.
    pub id: String,
    /// `scan` or `discover`.
    pub operation: String,
    /// `provider` or `system`.
    pub target_kind: String,
    /// The target's id.
    pub target_id: String,
    /// The target's name, for people.
    pub target_name: String,
    /// QUEUED, PROVISIONING, READY, WARNING or FAILED.
    pub status: String,
    /// Percent.
    pub progress: u8,
    /// What happened, or why it failed.
    pub message: String,
    /// `user` or `scheduler`.
    pub origin: String,
    /// The host node that ran it.
    pub node: Option<String>,
    /// Created (ms).
    pub created_at: i64,
    /// Started (ms).
    pub started_at: Option<i64>,
    /// Ended (ms).
    pub ended_at: Option<i64>,
}

impl TaskRecord {
    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        !matches!(self.status.as_str(), "QUEUED" | "PROVISIONING")
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list has.
    pub total: i64,
    /// Index of the first item.
    pub offset: i64,
    /// Most items a page holds.
    pub limit: i64,
}

/// Paging of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items to skip.
    pub offset: i64,
    /// Most items to return.
    pub limit: i64,
}

impl PageRequest {
    /// Largest page.
    pub const MAX_LIMIT: i64 = 10_000;
    /// Default page.
    pub const DEFAULT_LIMIT: i64 = 500;

    /// Everything (for internal callers).
    pub const ALL: Self = Self {
        offset: 0,
        limit: i64::MAX,
    };
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}
