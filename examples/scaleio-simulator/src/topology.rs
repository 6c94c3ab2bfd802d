//! What the simulated system contains: a [`TopologySpec`] (small, large, or
//! a JSON file) generates an [`Inventory`] of ScaleIO objects with stable,
//! deterministic ids.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// KiB in one GiB.
pub const GIB: u64 = 1024 * 1024;
/// ScaleIO allocates volumes in 8 GiB steps.
pub const ALLOCATION_UNIT: u64 = 8 * GIB;

/// A topology description: protection domains with their SDSs, devices and
/// pools, plus the SDCs of the system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Protection domains.
    pub protection_domains: Vec<PdSpec>,
    /// Number of SDCs (hosts).
    pub sdcs: usize,
    /// Every `n`th SDC is disconnected from the MDM (0: none).
    #[serde(default)]
    pub disconnected_sdc_every: usize,
    /// Object indexes start after this one, so several simulators (several
    /// ScaleIO systems) serve distinct ids, as real clusters do.
    #[serde(default)]
    pub first_index: usize,
}

/// One protection domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdSpec {
    /// Name.
    pub name: String,
    /// SDSs in the domain.
    pub sds: usize,
    /// Fault sets; SDSs are spread over them round-robin (0: none).
    #[serde(default)]
    pub fault_sets: usize,
    /// Devices per SDS; device `j` of every SDS joins pool `j % pools`.
    pub devices_per_sds: usize,
    /// Raw capacity of each device, GiB.
    pub device_capacity_gib: u64,
    /// Every `n`th SDS is disconnected from the MDM (0: none).
    #[serde(default)]
    pub disconnected_sds_every: usize,
    /// Storage pools.
    pub pools: Vec<PoolSpec>,
}

/// One storage pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Name.
    pub name: String,
    /// `HDD`, `SSD` or `Transitional` (3.x+).
    #[serde(default = "default_media")]
    pub media_type: String,
    /// `MediumGranularity` or `FineGranularity` (3.x+).
    #[serde(default = "default_layout")]
    pub data_layout: String,
    /// Zero padding enabled.
    #[serde(default)]
    pub zero_padding: bool,
    /// Spare capacity, percent of raw.
    #[serde(default = "default_spare")]
    pub spare_percentage: u64,
    /// Volumes.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
}

/// One volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Size, GiB (a multiple of 8).
    pub size_gib: u64,
    /// Thin (true) or thick.
    pub thin: bool,
    /// Data written, GiB (thin volumes; thick ones are fully allocated).
    #[serde(default)]
    pub used_gib: u64,
}

fn default_media() -> String {
    "HDD".into()
}
fn default_layout() -> String {
    "MediumGranularity".into()
}
fn default_spare() -> u64 {
    10
}

/// A topology that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Unreadable file.
    #[error("cannot read topology file {0}: {1}")]
    Read(String, std::io::Error),
    /// Not a valid topology document.
    #[error("invalid topology file {0}: {1}")]
    Parse(String, serde_json::Error),
    /// Neither a named topology nor an existing file.
    #[error("unknown topology '{0}': use small, large, or the path of a topology file (JSON)")]
    Unknown(String),
    /// Violates a ScaleIO rule.
    #[error("invalid topology: {0}")]
    Invalid(String),
}

impl TopologySpec {
    /// The reference deployment of CoprHD's ScaleIO driver: one protection
    /// domain, one pool with thin and thick volumes, three SDSs, three SDCs.
    pub fn small() -> Self {
        Self {
            protection_domains: vec![PdSpec {
                name: "domain1".into(),
                sds: 3,
                fault_sets: 0,
                devices_per_sds: 2,
                device_capacity_gib: 512,
                disconnected_sds_every: 0,
                pools: vec![PoolSpec {
                    name: "pool1".into(),
                    media_type: "HDD".into(),
                    data_layout: "MediumGranularity".into(),
                    zero_padding: true,
                    spare_percentage: 10,
                    volumes: vec![
                        VolumeSpec {
                            size_gib: 64,
                            thin: true,
                            used_gib: 24,
                        },
                        VolumeSpec {
                            size_gib: 64,
                            thin: true,
                            used_gib: 8,
                        },
                        VolumeSpec {
                            size_gib: 128,
                            thin: false,
                            used_gib: 0,
                        },
                    ],
                }],
            }],
            sdcs: 3,
            disconnected_sdc_every: 0,
            first_index: 0,
        }
    }

    /// A large system within ScaleIO's published limits: 8 protection
    /// domains of 64 SDSs (512), 8 fault sets and 8 pools each (64 pools),
    /// 8 devices per SDS (4096 devices, 64 per pool), 2048 SDCs.
    pub fn large() -> Self {
        let pd = |i: usize| PdSpec {
            name: format!("pd-{i:02}"),
            sds: 64,
            fault_sets: 8,
            devices_per_sds: 8,
            device_capacity_gib: 1788,
            disconnected_sds_every: 29,
            pools: (0..8)
                .map(|p| PoolSpec {
                    name: format!("pd{i:02}-pool{p}"),
                    media_type: if p % 2 == 0 { "SSD" } else { "HDD" }.into(),
                    data_layout: if p == 7 {
                        "FineGranularity"
                    } else {
                        "MediumGranularity"
                    }
                    .into(),
                    zero_padding: p == 7,
                    spare_percentage: 10,
                    volumes: (0..4)
                        .map(|v| VolumeSpec {
                            size_gib: 1024 * (v as u64 + 1),
                            thin: p == 7 || v % 2 == 0,
                            used_gib: 256 * (v as u64 + 1),
                        })
                        .collect(),
                })
                .collect(),
        };
        Self {
            protection_domains: (0..8).map(pd).collect(),
            sdcs: 2048,
            disconnected_sdc_every: 97,
            first_index: 0,
        }
    }

    /// Reads a topology file (JSON, the shape of this struct).
    pub fn from_file(path: &Path) -> Result<Self, TopologyError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| TopologyError::Read(name.clone(), e))?;
        serde_json::from_str(&text).map_err(|e| TopologyError::Parse(name, e))
    }

    /// `small`, `large`, or a path to a topology file.
    pub fn named_or_file(name: &str) -> Result<Self, TopologyError> {
        match name {
            "small" => Ok(Self::small()),
            "large" => Ok(Self::large()),
            path if !Path::new(path).exists() => Err(TopologyError::Unknown(path.to_string())),
            path => Self::from_file(Path::new(path)),
        }
    }
}

/// An id in ScaleIO's format: 16 lower-case hex digits, stable for a kind and index.
pub fn object_id(kind: &str, index: usize) -> String {
    // FNV-1a of the kind gives each object kind its own prefix.
    let prefix = kind.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{prefix:08x}{index:08x}")
}

/// The system object.
#[derive(Debug, Clone)]
pub struct System {
    pub id: String,
    pub name: String,
    pub install_id: String,
}

/// A protection domain.
#[derive(Debug, Clone)]
pub struct ProtectionDomain {
    pub id: String,
    pub name: String,
    pub state: String,
}

/// A fault set.
#[derive(Debug, Clone)]
pub struct FaultSet {
    pub id: String,
    pub name: String,
    pub protection_domain_id: String,
}

/// A storage pool.
#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub protection_domain_id: String,
    pub media_type: String,
    pub data_layout: String,
    pub zero_padding: bool,
    pub spare_percentage: u64,
}

/// An SDS (a storage server: the system's "port").
#[derive(Debug, Clone)]
pub struct Sds {
    pub id: String,
    pub name: String,
    pub protection_domain_id: String,
    pub fault_set_id: Option<String>,
    pub ip: String,
    pub port: u16,
    pub sds_state: String,
    pub membership_state: String,
    pub mdm_connection_state: String,
}

/// An SDC (a host).
#[derive(Debug, Clone)]
pub struct Sdc {
    pub id: String,
    pub name: Option<String>,
    pub ip: String,
    pub guid: String,
    pub os_type: String,
    pub mdm_connection_state: String,
}

/// A device (a disk of an SDS, in a pool).
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub sds_id: String,
    pub storage_pool_id: String,
    pub path: String,
    pub capacity_kib: u64,
}

/// A volume.
#[derive(Debug, Clone)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub storage_pool_id: String,
    pub size_kib: u64,
    pub thin: bool,
    pub used_kib: u64,
    pub mapped_sdc_ids: Vec<String>,
    pub creation_time: u64,
}

/// Every object of the simulated system.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub system: System,
    pub protection_domains: Vec<ProtectionDomain>,
    pub fault_sets: Vec<FaultSet>,
    pub pools: Vec<Pool>,
    pub sds: Vec<Sds>,
    pub sdcs: Vec<Sdc>,
    pub devices: Vec<Device>,
    pub volumes: Vec<Volume>,
    /// Next index per kind, so objects added later get fresh ids.
    pub next_index: usize,
}

const VOLUME_CREATION_TIME: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

impl Inventory {
    /// Builds the objects a spec describes; checks ScaleIO's rules.
    pub fn generate(spec: &TopologySpec) -> Result<Self, TopologyError> {
        let mut inv = Inventory {
            system: System {
                id: object_id("System", spec.first_index),
                name: "sim-cluster".into(),
                install_id: object_id("Install", spec.first_index),
            },
            protection_domains: Vec::new(),
            fault_sets: Vec::new(),
            pools: Vec::new(),
            sds: Vec::new(),
            sdcs: Vec::new(),
            devices: Vec::new(),
            volumes: Vec::new(),
            next_index: spec.first_index,
        };
        if spec.protection_domains.is_empty() {
            return Err(TopologyError::Invalid(
                "a system needs at least one protection domain".into(),
            ));
        }
        for pd in &spec.protection_domains {
            inv.add_protection_domain(pd)?;
        }
        for i in 0..spec.sdcs {
            let connected =
                spec.disconnected_sdc_every == 0 || (i + 1) % spec.disconnected_sdc_every != 0;
            inv.add_sdc(connected);
        }
        // Map each volume to one SDC, round-robin, so relationships are populated.
        let sdc_ids: Vec<String> = inv.sdcs.iter().map(|s| s.id.clone()).collect();
        for (i, volume) in inv.volumes.iter_mut().enumerate() {
            if let Some(sdc) = sdc_ids.get(i % sdc_ids.len().max(1)) {
                volume.mapped_sdc_ids.push(sdc.clone());
            }
        }
        Ok(inv)
    }

    fn take_index(&mut self) -> usize {
        self.next_index += 1;
        self.next_index
    }

    /// Adds a protection domain with its fault sets, SDSs, devices, pools
    /// and volumes; returns its id.
    pub fn add_protection_domain(&mut self, spec: &PdSpec) -> Result<String, TopologyError> {
        if spec.pools.is_empty() || spec.sds < 3 || spec.devices_per_sds == 0 {
            return Err(TopologyError::Invalid(format!(
                "protection domain '{}' needs at least one pool, three SDSs and one device per SDS",
                spec.name
            )));
        }
        if spec.sds > 128 {
            return Err(TopologyError::Invalid(format!(
                "protection domain '{}' has {} SDSs; ScaleIO allows 128",
                spec.name, spec.sds
            )));
        }
        let pd_index = self.take_index();
        let pd_id = object_id("ProtectionDomain", pd_index);
        self.protection_domains.push(ProtectionDomain {
            id: pd_id.clone(),
            name: spec.name.clone(),
            state: "Active".into(),
        });
        let fault_sets: Vec<String> = (0..spec.fault_sets)
            .map(|f| {
                let id = object_id("FaultSet", self.take_index());
                self.fault_sets.push(FaultSet {
                    id: id.clone(),
                    name: format!("{}-fs{f}", spec.name),
                    protection_domain_id: pd_id.clone(),
                });
                id
            })
            .collect();
        let pool_ids: Vec<String> = spec
            .pools
            .iter()
            .map(|p| self.add_pool_object(&pd_id, p))
            .collect();
        for s in 0..spec.sds {
            let connected =
                spec.disconnected_sds_every == 0 || (s + 1) % spec.disconnected_sds_every != 0;
            let fault_set =
                (!fault_sets.is_empty()).then(|| fault_sets[s % fault_sets.len()].clone());
            let sds_id = self.add_sds_object(&pd_id, fault_set, connected);
            for d in 0..spec.devices_per_sds {
                self.add_device(
                    &sds_id,
                    &pool_ids[d % pool_ids.len()],
                    spec.device_capacity_gib * GIB,
                    d,
                );
            }
        }
        for (pool_id, pool) in pool_ids.iter().zip(&spec.pools) {
            if pool.volumes.is_empty() {
                continue;
            }
            let devices = self
                .devices
                .iter()
                .filter(|d| &d.storage_pool_id == pool_id)
                .count();
            if devices > 300 {
                return Err(TopologyError::Invalid(format!(
                    "pool '{}' has {devices} devices; ScaleIO allows 300",
                    pool.name
                )));
            }
            for v in &pool.volumes {
                self.add_volume(pool_id, v)?;
            }
        }
        Ok(pd_id)
    }

    fn add_pool_object(&mut self, pd_id: &str, spec: &PoolSpec) -> String {
        let id = object_id("StoragePool", self.take_index());
        self.pools.push(Pool {
            id: id.clone(),
            name: spec.name.clone(),
            protection_domain_id: pd_id.into(),
            media_type: spec.media_type.clone(),
            data_layout: spec.data_layout.clone(),
            zero_padding: spec.zero_padding,
            spare_percentage: spec.spare_percentage,
        });
        id
    }

    /// Adds a pool (without devices) to a protection domain.
    pub fn add_pool(&mut self, pd_id: &str, spec: &PoolSpec) -> Result<String, TopologyError> {
        if !self.protection_domains.iter().any(|p| p.id == pd_id) {
            return Err(TopologyError::Invalid(format!(
                "no protection domain {pd_id}"
            )));
        }
        Ok(self.add_pool_object(pd_id, spec))
    }

    fn add_sds_object(
        &mut self,
        pd_id: &str,
        fault_set_id: Option<String>,
        connected: bool,
    ) -> String {
        let index = self.take_index();
        let id = object_id("Sds", index);
        let ip = format!(
            "10.{}.{}.{}",
            100 + (index >> 16) % 100,
            (index >> 8) & 255,
            index & 255
        );
        self.sds.push(Sds {
            id: id.clone(),
            name: format!("SDS_[{ip}]"),
            protection_domain_id: pd_id.into(),
            fault_set_id,
            ip,
            port: 7072,
            sds_state: "Normal".into(),
            membership_state: "Joined".into(),
            mdm_connection_state: if connected {
                "Connected"
            } else {
                "Disconnected"
            }
            .into(),
        });
        id
    }

    /// Adds an SDS to a protection domain, with `devices` devices of
    /// `device_capacity_gib` spread over the domain's pools.
    pub fn add_sds(
        &mut self,
        pd_id: &str,
        devices: usize,
        device_capacity_gib: u64,
    ) -> Result<String, TopologyError> {
        let pools: Vec<String> = self
            .pools
            .iter()
            .filter(|p| p.protection_domain_id == pd_id)
            .map(|p| p.id.clone())
            .collect();
        if pools.is_empty() {
            return Err(TopologyError::Invalid(format!(
                "no protection domain {pd_id} with pools"
            )));
        }
        let id = self.add_sds_object(pd_id, None, true);
        for d in 0..devices {
            self.add_device(&id, &pools[d % pools.len()], device_capacity_gib * GIB, d);
        }
        Ok(id)
    }

    fn add_device(
        &mut self,
        sds_id: &str,
        pool_id: &str,
        capacity_kib: u64,
        slot: usize,
    ) -> String {
        let id = object_id("Device", self.take_index());
        let letter = char::from(b'b' + (slot % 24) as u8);
        self.devices.push(Device {
            id: id.clone(),
            name: format!("sd{letter}"),
            sds_id: sds_id.into(),
            storage_pool_id: pool_id.into(),
            path: format!("/dev/sd{letter}"),
            capacity_kib,
        });
        id
    }

    /// Adds an SDC; returns its id.
    pub fn add_sdc(&mut self, connected: bool) -> String {
        let index = self.take_index();
        let id = object_id("Sdc", index);
        let ip = format!(
            "10.{}.{}.{}",
            200 + (index >> 16) % 50,
            (index >> 8) & 255,
            index & 255
        );
        let n = self.sdcs.len();
        let guid_hash = object_id("SdcGuid", index);
        self.sdcs.push(Sdc {
            id: id.clone(),
            // Real gateways return null for SDCs nobody named; every fourth one here.
            name: (n % 4 != 3).then(|| format!("host-{n:04}")),
            ip,
            guid: format!(
                "{}-{}-4{}-A{}-{}{:04X}",
                &guid_hash[..8].to_uppercase(),
                &guid_hash[8..12].to_uppercase(),
                &guid_hash[13..16].to_uppercase(),
                &guid_hash[1..4].to_uppercase(),
                &guid_hash[4..12].to_uppercase(),
                index & 0xffff
            ),
            os_type: ["Linux", "Linux", "Windows", "Esx"][n % 4].into(),
            mdm_connection_state: if connected {
                "Connected"
            } else {
                "Disconnected"
            }
            .into(),
        });
        id
    }

    /// Adds a volume to a pool, checking it fits.
    pub fn add_volume(
        &mut self,
        pool_id: &str,
        spec: &VolumeSpec,
    ) -> Result<String, TopologyError> {
        let size_kib = spec.size_gib * GIB;
        if size_kib == 0 || !size_kib.is_multiple_of(ALLOCATION_UNIT) {
            return Err(TopologyError::Invalid(format!(
                "volume size {} GiB is not a positive multiple of 8 GiB",
                spec.size_gib
            )));
        }
        if spec.thin && spec.used_gib > spec.size_gib {
            return Err(TopologyError::Invalid(
                "a thin volume cannot hold more than its size".into(),
            ));
        }
        let used_kib = if spec.thin {
            spec.used_gib * GIB
        } else {
            size_kib
        };
        let stats = crate::stats::pool_capacity(self, pool_id);
        if stats.in_use + 2 * used_kib + stats.spare > stats.max {
            return Err(TopologyError::Invalid(format!(
                "pool {pool_id} has no room for a {} GiB volume",
                spec.size_gib
            )));
        }
        let index = self.take_index();
        let id = object_id("Volume", index);
        self.volumes.push(Volume {
            id: id.clone(),
            name: format!("vol-{index:05}"),
            storage_pool_id: pool_id.into(),
            size_kib,
            thin: spec.thin,
            used_kib,
            mapped_sdc_ids: Vec::new(),
            creation_time: VOLUME_CREATION_TIME + index as u64,
        });
        Ok(id)
    }

    /// Removes the object of `kind` with `id` and what hangs off it. Returns
    /// whether it existed.
    pub fn remove(&mut self, kind: ObjectKind, id: &str) -> bool {
        match kind {
            ObjectKind::Sds => {
                let found = self.sds.iter().any(|s| s.id == id);
                self.sds.retain(|s| s.id != id);
                self.devices.retain(|d| d.sds_id != id);
                found
            }
            ObjectKind::Sdc => {
                let found = self.sdcs.iter().any(|s| s.id == id);
                self.sdcs.retain(|s| s.id != id);
                for v in &mut self.volumes {
                    v.mapped_sdc_ids.retain(|s| s != id);
                }
                found
            }
            ObjectKind::Pool => {
                let found = self.pools.iter().any(|p| p.id == id);
                self.pools.retain(|p| p.id != id);
                self.devices.retain(|d| d.storage_pool_id != id);
                self.volumes.retain(|v| v.storage_pool_id != id);
                found
            }
            ObjectKind::ProtectionDomain => {
                let found = self.protection_domains.iter().any(|p| p.id == id);
                let pools: Vec<String> = self
                    .pools
                    .iter()
                    .filter(|p| p.protection_domain_id == id)
                    .map(|p| p.id.clone())
                    .collect();
                for pool in pools {
                    self.remove(ObjectKind::Pool, &pool);
                }
                let sds: Vec<String> = self
                    .sds
                    .iter()
                    .filter(|s| s.protection_domain_id == id)
                    .map(|s| s.id.clone())
                    .collect();
                for s in sds {
                    self.remove(ObjectKind::Sds, &s);
                }
                self.fault_sets.retain(|f| f.protection_domain_id != id);
                self.protection_domains.retain(|p| p.id != id);
                found
            }
        }
    }
}

/// Object kinds the control API can remove.
#[derive(Debug, Clone, Copy)]
pub enum ObjectKind {
    /// SDS.
    Sds,
    /// SDC.
    Sdc,
    /// Storage pool.
    Pool,
    /// Protection domain.
    ProtectionDomain,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_topology_names_the_valid_ones() {
        let err = TopologySpec::named_or_file("medium").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown topology 'medium': use small, large, or the path of a topology file (JSON)"
        );
        assert!(TopologySpec::named_or_file("small").is_ok());
    }

    #[test]
    fn first_index_gives_another_cluster_other_ids() {
        let one = Inventory::generate(&TopologySpec::small()).unwrap();
        let two = Inventory::generate(&TopologySpec {
            first_index: 1_000_000,
            ..TopologySpec::small()
        })
        .unwrap();
        assert_ne!(one.system.id, two.system.id);
        assert_ne!(one.protection_domains[0].id, two.protection_domains[0].id);
        assert_eq!(one.pools.len(), two.pools.len());
    }
}
