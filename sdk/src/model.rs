//! The object model: what a driver reports about storage.
//!
//! Follows CoprHD's southbound SDK model (`com.emc.storageos.storagedriver.model`).
//! Every type is `#[repr(C)]` + `StableAbi` (checked at load time) and serde
//! (the worker channel and the REST API carry the same types). Capacities are
//! in KiB, as CoprHD's pools are. Unset text is the empty string; unset
//! numbers are `ROption::RNone`.

use abi_stable::std_types::{RArc, ROption, RString, RVec};
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

use crate::capability::CapabilityInstance;
use crate::secret::Secret;

crate::open_enum! {
    /// Block and file protocols a pool or system serves.
    Protocol default ISCSI {
        /// iSCSI.
        ISCSI = 1 => "iSCSI",
        /// Fibre Channel.
        FC = 2 => "FC",
        /// Fibre Channel over Ethernet.
        FCOE = 3 => "FCoE",
        /// ScaleIO / PowerFlex native (SDC) protocol.
        SCALEIO = 4 => "ScaleIO",
        /// Ceph RBD.
        CEPH = 5 => "Ceph",
        /// NFS.
        NFS = 6 => "NFS",
        /// NFS version 4.
        NFSV4 = 7 => "NFSv4",
        /// SMB / CIFS.
        CIFS = 8 => "CIFS",
        /// NVMe over TCP.
        NVME_TCP = 9 => "NVMeTCP",
    }
}

crate::open_enum! {
    /// Which volume provisioning a pool or system supports.
    ResourceType default THIN_AND_THICK {
        /// Thin volumes only.
        THIN = 1 => "THIN",
        /// Thick volumes only.
        THICK = 2 => "THICK",
        /// Both thin and thick volumes.
        THIN_AND_THICK = 3 => "THIN_AND_THICK",
    }
}

crate::open_enum! {
    /// Drive technology behind a pool.
    DriveType default UNKNOWN {
        /// Not known.
        UNKNOWN = 0 => "UNKNOWN",
        /// Fibre Channel drives.
        FC = 1 => "FC",
        /// SAS drives.
        SAS = 2 => "SAS",
        /// SATA drives.
        SATA = 3 => "SATA",
        /// Near-line SAS drives.
        NL_SAS = 4 => "NL_SAS",
        /// Solid-state drives.
        SSD = 5 => "SSD",
        /// Spinning disks of unspecified interface.
        HDD = 6 => "HDD",
    }
}

crate::open_enum! {
    /// Whether a pool can take new volumes.
    PoolOperationalStatus default READY {
        /// Usable.
        READY = 1 => "READY",
        /// Not usable now.
        NOT_READY = 2 => "NOT_READY",
    }
}

crate::open_enum! {
    /// How a storage port carries data.
    TransportType default IP {
        /// Fibre Channel.
        FC = 1 => "FC",
        /// IP (iSCSI, NVMe/TCP, ...).
        IP = 2 => "IP",
        /// Plain Ethernet.
        ETHERNET = 3 => "Ethernet",
        /// ScaleIO / PowerFlex SDS data path.
        SCALEIO = 4 => "ScaleIO",
        /// Ceph.
        CEPH = 5 => "Ceph",
    }
}

crate::open_enum! {
    /// Health of a port or host component.
    OperationalStatus default UNKNOWN {
        /// Not known.
        UNKNOWN = 0 => "UNKNOWN",
        /// Working.
        OK = 1 => "OK",
        /// Not working.
        NOT_OK = 2 => "NOT_OK",
    }
}

crate::open_enum! {
    /// Which side of the array a port faces.
    PortType default FRONTEND {
        /// Not known.
        UNKNOWN = 0 => "Unknown",
        /// Host-facing.
        FRONTEND = 1 => "frontend",
        /// Disk- or peer-facing.
        BACKEND = 2 => "backend",
    }
}

crate::open_enum! {
    /// How an initiator reaches the storage.
    InitiatorProtocol default ISCSI {
        /// Fibre Channel (port is a WWPN).
        FC = 1 => "FC",
        /// iSCSI (port is an IQN or EUI).
        ISCSI = 2 => "iSCSI",
        /// IPv4 address.
        IPV4 = 3 => "IPV4",
        /// IPv6 address.
        IPV6 = 4 => "IPV6",
        /// ScaleIO / PowerFlex SDC (port is the SDC id or GUID).
        SCALEIO = 5 => "ScaleIO",
        /// NVMe (port is the host NQN).
        NVME = 6 => "NVMe",
    }
}

crate::open_enum! {
    /// Operating system of a host.
    HostOsType default OTHER {
        /// Windows.
        WINDOWS = 1 => "Windows",
        /// HP-UX.
        HPUX = 2 => "HPUX",
        /// Linux.
        LINUX = 3 => "Linux",
        /// VMware ESXi.
        ESX = 4 => "Esx",
        /// AIX.
        AIX = 5 => "AIX",
        /// AIX VIO server.
        AIXVIO = 6 => "AIXVIO",
        /// Solaris with Veritas cluster.
        SUNVCS = 7 => "SUNVCS",
        /// No operating system.
        NO_OS = 8 => "No_OS",
        /// Anything else, or not known.
        OTHER = 9 => "Other",
    }
}

/// Connection settings of a storage provider (a management endpoint such as
/// a ScaleIO gateway), plus what a scan learns about it.
///
/// The password is a [`Secret`]: it prints as `***`.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageProvider {
    /// Provider type, as the driver's [`DriverInfo::provider_type`](crate::DriverInfo::provider_type) names it.
    pub provider_type: RString,
    /// Host name or IP address of the management endpoint.
    pub host: RString,
    /// TCP port of the management endpoint.
    pub port: u16,
    /// User name.
    pub username: RString,
    /// Password; never printed.
    pub password: Secret,
    /// Use TLS.
    pub use_ssl: bool,
    /// TLS pins to trust instead of the system roots: PEM certificates and/or
    /// `sha256:` fingerprint lines ([`crate::pins`]).
    pub ca_certificate_pem: ROption<RString>,
    /// Skip TLS verification. Only ever honoured when set explicitly.
    pub insecure: bool,
    /// What the last scan learnt about the provider (driver output).
    pub details: ProviderDetails,
}

/// What a scan reports about the provider itself (CoprHD's provider outputs).
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderDetails {
    /// Software version of the provider.
    pub provider_version: RString,
    /// Maker of the provider.
    pub manufacturer: RString,
    /// Free-form description.
    pub description: RString,
    /// Whether the driver supports this provider version.
    pub is_supported_version: bool,
}

/// The result of scanning a provider: its details and the systems it manages.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderScan {
    /// What the provider reports about itself.
    pub details: ProviderDetails,
    /// Every storage system the provider manages, with at least `native_id`,
    /// `system_type`, `name` and `serial_number` set.
    pub systems: RVec<StorageSystem>,
}

/// A storage system (an array; for ScaleIO, a protection domain).
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSystem {
    /// The driver's id for the system; unique among the systems of its type.
    pub native_id: RString,
    /// Storage system type (`scaleio`, `hello`, ...).
    pub system_type: RString,
    /// Display name.
    pub name: RString,
    /// Serial number.
    pub serial_number: RString,
    /// Model name.
    pub model: RString,
    /// Firmware or software version.
    pub firmware_version: RString,
    /// Major version, if the driver splits it out.
    pub major_version: RString,
    /// Minor version, if the driver splits it out.
    pub minor_version: RString,
    /// Management address.
    pub ip_address: RString,
    /// Management port.
    pub port_number: ROption<u16>,
    /// Protocols the system serves.
    pub protocols: RVec<Protocol>,
    /// Whether the driver supports this firmware. False makes the system INCOMPATIBLE.
    pub is_supported_version: bool,
    /// Provisioning the system supports.
    pub provisioning_type: ResourceType,
    /// Capabilities of the whole system.
    pub capabilities: RVec<CapabilityInstance>,
}

/// A storage pool. Capacities in KiB.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct StoragePool {
    /// The driver's id for the pool, unique within its system.
    pub native_id: RString,
    /// `native_id` of the owning system.
    pub storage_system_id: RString,
    /// Display name.
    pub name: RString,
    /// Usable capacity in KiB.
    pub total_capacity_kib: u64,
    /// Capacity left for new volumes in KiB; never above `total_capacity_kib`.
    pub free_capacity_kib: u64,
    /// Capacity promised to volumes (provisioned) in KiB; may exceed total when thin.
    pub subscribed_capacity_kib: u64,
    /// Drive technologies behind the pool.
    pub supported_drive_types: RVec<DriveType>,
    /// Thin, thick or both.
    pub resource_type: ResourceType,
    /// Protocols volumes of this pool are served over.
    pub protocols: RVec<Protocol>,
    /// Whether the pool can take volumes.
    pub operational_status: PoolOperationalStatus,
    /// Smallest thin volume in KiB.
    pub minimum_thin_volume_size_kib: ROption<u64>,
    /// Largest thin volume in KiB.
    pub maximum_thin_volume_size_kib: ROption<u64>,
    /// Smallest thick volume in KiB.
    pub minimum_thick_volume_size_kib: ROption<u64>,
    /// Largest thick volume in KiB.
    pub maximum_thick_volume_size_kib: ROption<u64>,
    /// What the pool offers (provisioning, media, compression, ...).
    pub capabilities: RVec<CapabilityInstance>,
}

/// A storage port: where hosts reach the array.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct StoragePort {
    /// The driver's id for the port, unique within its system.
    pub native_id: RString,
    /// `native_id` of the owning system.
    pub storage_system_id: RString,
    /// Display name.
    pub name: RString,
    /// Network identity of the port (WWPN, IQN, IP interface id, SDS id).
    /// **Mandatory**: the host skips ports without it, as CoprHD does.
    pub port_network_id: RString,
    /// How the port carries data.
    pub transport_type: TransportType,
    /// The network (fabric, VLAN, ScaleIO installation) the port sits on.
    pub network_id: RString,
    /// IP address, for IP-based transports.
    pub ip_address: RString,
    /// TCP port, for IP-based transports.
    pub tcp_port: ROption<u16>,
    /// Port speed in Gbit/s.
    pub speed_gbps: ROption<u64>,
    /// Group (director, controller, SDS) the port belongs to.
    pub port_group: RString,
    /// Sub-group within the group.
    pub port_sub_group: RString,
    /// Failure domain (HA zone, fault set).
    pub ha_zone: RString,
    /// Health.
    pub operational_status: OperationalStatus,
    /// Front end or back end.
    pub port_type: PortType,
    /// Capabilities of the port.
    pub capabilities: RVec<CapabilityInstance>,
}

/// A host known to the storage system (for ScaleIO, an SDC).
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageHostComponent {
    /// Global identity of the host (for ScaleIO, the SDC GUID); the host
    /// links one host to every system that reports it.
    pub native_id: RString,
    /// Host name or address.
    pub host_name: RString,
    /// Operating system.
    pub os_type: HostOsType,
    /// Health of the host's connection to the storage.
    pub operational_status: OperationalStatus,
    /// Whether the driver supports the host's software version.
    pub is_supported_version: bool,
    /// The host's initiators.
    pub initiators: RVec<Initiator>,
}

/// One endpoint through which a host reaches storage.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct Initiator {
    /// The driver's id for the initiator.
    pub native_id: RString,
    /// Identity on the wire: WWPN, IQN, NQN, IP address or SDC id.
    pub port: RString,
    /// Protocol.
    pub protocol: InitiatorProtocol,
    /// Owning host.
    pub host_name: RString,
    /// Cluster the host belongs to.
    pub cluster_name: RString,
    /// Node name (FC WWNN).
    pub node: RString,
    /// Network the initiator sits on.
    pub network_id: RString,
}

/// Everything one discovery of one system returns.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemInventory {
    /// The system's details.
    pub system: StorageSystem,
    /// Its pools.
    pub pools: RVec<StoragePool>,
    /// Its ports.
    pub ports: RVec<StoragePort>,
    /// Hosts it reports. Shared: host components are not owned by a
    /// system (a host is linked to every system that reports it), so the
    /// same list often comes back for every system of a provider, and the
    /// host keeps one copy of it.
    pub host_components: RArc<RVec<StorageHostComponent>>,
}
