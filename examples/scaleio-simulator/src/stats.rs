//! Statistics, computed from devices and volumes so that they obey the
//! invariants real gateways show:
//! `maxCapacityInKb = capacityInUseInKb + unusedCapacityInKb + spareCapacityInKb`,
//! `capacityInUseInKb = thin + thick + snapshot in-use`, and
//! `capacityAvailableForVolumeAllocationInKb` in 8 GiB steps.

use serde_json::{json, Map, Value};

use crate::topology::{Inventory, ALLOCATION_UNIT};
use crate::version::ApiVersion;

/// Raw (two-copy) capacity figures of one pool, KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolCapacity {
    /// Σ device capacity.
    pub max: u64,
    /// Reserved spare.
    pub spare: u64,
    /// Raw used by thin volumes (both copies).
    pub thin_in_use: u64,
    /// Raw used by thick volumes (both copies).
    pub thick_in_use: u64,
    /// Raw used by snapshots (none are simulated).
    pub snap_in_use: u64,
    /// thin + thick + snapshots.
    pub in_use: u64,
    /// max − in_use − spare.
    pub unused: u64,
    /// Σ volume sizes (primary volume address capacity).
    pub primary_vac: u64,
    /// Thin volume address capacity allocated (both copies).
    pub thin_allocated: u64,
    /// Σ volume sizes of thin volumes and of thick volumes, counts.
    pub thin_volumes: u64,
    /// Number of thick volumes.
    pub thick_volumes: u64,
}

impl PoolCapacity {
    /// `capacityAvailableForVolumeAllocationInKb`: half of (raw − spare),
    /// floored to 8 GiB, minus what is allocated, in 8 GiB steps. 2.x counts
    /// allocated volume address space; 3.x and later count data in use.
    pub fn available_for_allocation(&self, version: ApiVersion) -> u64 {
        let usable = floor_unit(self.max.saturating_sub(self.spare) / 2);
        let allocated = if version.is_3x_or_later() {
            ceil_unit(self.in_use / 2)
        } else {
            ceil_unit(self.primary_vac)
        };
        usable.saturating_sub(allocated)
    }
}

fn floor_unit(kib: u64) -> u64 {
    kib / ALLOCATION_UNIT * ALLOCATION_UNIT
}

fn ceil_unit(kib: u64) -> u64 {
    kib.div_ceil(ALLOCATION_UNIT) * ALLOCATION_UNIT
}

/// Capacity figures of `pool_id`.
pub fn pool_capacity(inv: &Inventory, pool_id: &str) -> PoolCapacity {
    let mut c = PoolCapacity {
        max: inv
            .devices
            .iter()
            .filter(|d| d.storage_pool_id == pool_id)
            .map(|d| d.capacity_kib)
            .sum(),
        ..PoolCapacity::default()
    };
    let spare_percentage = inv
        .pools
        .iter()
        .find(|p| p.id == pool_id)
        .map_or(10, |p| p.spare_percentage);
    c.spare = c.max * spare_percentage / 100;
    for v in inv.volumes.iter().filter(|v| v.storage_pool_id == pool_id) {
        c.primary_vac += v.size_kib;
        if v.thin {
            c.thin_in_use += 2 * v.used_kib;
            c.thin_allocated += 2 * v.size_kib;
            c.thin_volumes += 1;
        } else {
            c.thick_in_use += 2 * v.size_kib;
            c.thick_volumes += 1;
        }
    }
    c.in_use = c.thin_in_use + c.thick_in_use + c.snap_in_use;
    c.unused = c.max.saturating_sub(c.in_use + c.spare);
    c
}

fn bwc_zero() -> Value {
    json!({"numOccured": 0, "numSeconds": 0, "totalWeightInKb": 0})
}

/// Capacity properties shared by System, ProtectionDomain, StoragePool and FaultSet.
fn capacity_properties(c: &PoolCapacity, version: ApiVersion) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: u64| {
        m.insert(k.to_owned(), json!(v));
    };
    put("maxCapacityInKb", c.max);
    put("capacityLimitInKb", c.max);
    put("capacityInUseInKb", c.in_use);
    put("thinCapacityInUseInKb", c.thin_in_use);
    put("thickCapacityInUseInKb", c.thick_in_use);
    put("snapCapacityInUseOccupiedInKb", c.snap_in_use);
    put("snapCapacityInUseInKb", 0);
    put("unusedCapacityInKb", c.unused);
    put("spareCapacityInKb", c.spare);
    put("protectedCapacityInKb", c.in_use);
    put("degradedHealthyCapacityInKb", 0);
    put("degradedFailedCapacityInKb", 0);
    put("failedCapacityInKb", 0);
    put("inMaintenanceCapacityInKb", 0);
    put(
        "capacityAvailableForVolumeAllocationInKb",
        c.available_for_allocation(version),
    );
    put("primaryVacInKb", c.primary_vac);
    put("secondaryVacInKb", c.primary_vac);
    put("inUseVacInKb", 2 * c.primary_vac);
    put(version.thin_allocated_property(), c.thin_allocated);
    if version.is_3x_or_later() {
        put("netCapacityInUseInKb", c.in_use / 2);
        put("netUnusedCapacityInKb", c.unused / 2);
        put("netUserDataCapacityInKb", c.in_use / 2);
        put("netThinUserDataCapacityInKb", c.thin_in_use / 2);
        put("volumeAddressSpaceInKb", c.primary_vac);
        put("userDataCapacityInKb", c.in_use);
    }
    m
}

fn sum(a: PoolCapacity, b: PoolCapacity) -> PoolCapacity {
    PoolCapacity {
        max: a.max + b.max,
        spare: a.spare + b.spare,
        thin_in_use: a.thin_in_use + b.thin_in_use,
        thick_in_use: a.thick_in_use + b.thick_in_use,
        snap_in_use: a.snap_in_use + b.snap_in_use,
        in_use: a.in_use + b.in_use,
        unused: a.unused + b.unused,
        primary_vac: a.primary_vac + b.primary_vac,
        thin_allocated: a.thin_allocated + b.thin_allocated,
        thin_volumes: a.thin_volumes + b.thin_volumes,
        thick_volumes: a.thick_volumes + b.thick_volumes,
    }
}

fn ids<'a>(items: impl Iterator<Item = &'a String>) -> Value {
    Value::Array(items.map(|s| Value::String(s.clone())).collect())
}

/// Every statistic of one object, or `None` if it does not exist.
pub fn statistics(
    inv: &Inventory,
    version: ApiVersion,
    type_name: &str,
    id: &str,
) -> Option<Map<String, Value>> {
    let pools_of = |pd: &str| -> Vec<&String> {
        inv.pools
            .iter()
            .filter(|p| p.protection_domain_id == pd)
            .map(|p| &p.id)
            .collect()
    };
    match type_name {
        "System" => {
            if id != inv.system.id {
                return None;
            }
            let total = inv
                .pools
                .iter()
                .map(|p| pool_capacity(inv, &p.id))
                .fold(PoolCapacity::default(), sum);
            let mut m = capacity_properties(&total, version);
            m.insert(
                "numOfProtectionDomains".into(),
                json!(inv.protection_domains.len()),
            );
            m.insert("numOfStoragePools".into(), json!(inv.pools.len()));
            m.insert("numOfSds".into(), json!(inv.sds.len()));
            m.insert("numOfSdc".into(), json!(inv.sdcs.len()));
            m.insert("numOfFaultSets".into(), json!(inv.fault_sets.len()));
            m.insert("numOfDevices".into(), json!(inv.devices.len()));
            m.insert("numOfVolumes".into(), json!(inv.volumes.len()));
            m.insert("numOfRfcacheDevices".into(), json!(0));
            if !version.is_3x_or_later() {
                m.insert("numOfScsiInitiators".into(), json!(0));
            }
            m.insert(
                "protectionDomainIds".into(),
                ids(inv.protection_domains.iter().map(|p| &p.id)),
            );
            Some(m)
        }
        "ProtectionDomain" => {
            inv.protection_domains.iter().find(|p| p.id == id)?;
            let pools = pools_of(id);
            let total = pools
                .iter()
                .map(|p| pool_capacity(inv, p))
                .fold(PoolCapacity::default(), sum);
            let mut m = capacity_properties(&total, version);
            let sds: Vec<&String> = inv
                .sds
                .iter()
                .filter(|s| s.protection_domain_id == id)
                .map(|s| &s.id)
                .collect();
            let fault_sets: Vec<&String> = inv
                .fault_sets
                .iter()
                .filter(|f| f.protection_domain_id == id)
                .map(|f| &f.id)
                .collect();
            m.insert("numOfStoragePools".into(), json!(pools.len()));
            m.insert("numOfSds".into(), json!(sds.len()));
            m.insert("numOfFaultSets".into(), json!(fault_sets.len()));
            m.insert("storagePoolIds".into(), ids(pools.into_iter()));
            m.insert("sdsIds".into(), ids(sds.into_iter()));
            m.insert("faultSetIds".into(), ids(fault_sets.into_iter()));
            Some(m)
        }
        "StoragePool" => {
            inv.pools.iter().find(|p| p.id == id)?;
            let c = pool_capacity(inv, id);
            let mut m = capacity_properties(&c, version);
            let devices: Vec<&String> = inv
                .devices
                .iter()
                .filter(|d| d.storage_pool_id == id)
                .map(|d| &d.id)
                .collect();
            let volumes: Vec<&String> = inv
                .volumes
                .iter()
                .filter(|v| v.storage_pool_id == id)
                .map(|v| &v.id)
                .collect();
            m.insert("numOfDevices".into(), json!(devices.len()));
            m.insert("numOfVolumes".into(), json!(volumes.len()));
            m.insert("numOfVtrees".into(), json!(volumes.len()));
            m.insert("numOfSnapshots".into(), json!(0));
            m.insert("numOfThinBaseVolumes".into(), json!(c.thin_volumes));
            m.insert("numOfThickBaseVolumes".into(), json!(c.thick_volumes));
            m.insert("numOfMappedToAllVolumes".into(), json!(0));
            m.insert("deviceIds".into(), ids(devices.into_iter()));
            m.insert("volumeIds".into(), ids(volumes.clone().into_iter()));
            m.insert("vtreeIds".into(), ids(volumes.into_iter()));
            Some(m)
        }
        "FaultSet" => {
            inv.fault_sets.iter().find(|f| f.id == id)?;
            let sds: Vec<&String> = inv
                .sds
                .iter()
                .filter(|s| s.fault_set_id.as_deref() == Some(id))
                .map(|s| &s.id)
                .collect();
            let max: u64 = inv
                .devices
                .iter()
                .filter(|d| sds.contains(&&d.sds_id))
                .map(|d| d.capacity_kib)
                .sum();
            let mut m = Map::new();
            m.insert("numOfSds".into(), json!(sds.len()));
            m.insert("sdsIds".into(), ids(sds.into_iter()));
            m.insert("maxCapacityInKb".into(), json!(max));
            Some(m)
        }
        "Sds" => {
            inv.sds.iter().find(|s| s.id == id)?;
            let devices: Vec<&crate::topology::Device> =
                inv.devices.iter().filter(|d| d.sds_id == id).collect();
            let max: u64 = devices.iter().map(|d| d.capacity_kib).sum();
            let mut m = Map::new();
            m.insert("numOfDevices".into(), json!(devices.len()));
            m.insert("deviceIds".into(), ids(devices.iter().map(|d| &d.id)));
            m.insert("maxCapacityInKb".into(), json!(max));
            m.insert("capacityLimitInKb".into(), json!(max));
            Some(m)
        }
        "Device" => {
            let d = inv.devices.iter().find(|d| d.id == id)?;
            let pool = pool_capacity(inv, &d.storage_pool_id);
            // A device holds its share of the pool's data.
            let in_use = (u128::from(pool.in_use) * u128::from(d.capacity_kib)
                / u128::from(pool.max.max(1))) as u64;
            let mut m = Map::new();
            m.insert("maxCapacityInKb".into(), json!(d.capacity_kib));
            m.insert("capacityLimitInKb".into(), json!(d.capacity_kib));
            m.insert("capacityInUseInKb".into(), json!(in_use));
            m.insert("avgReadLatencyInMicrosec".into(), json!(0));
            m.insert("avgWriteLatencyInMicrosec".into(), json!(0));
            Some(m)
        }
        "Sdc" => {
            inv.sdcs.iter().find(|s| s.id == id)?;
            let volumes: Vec<&String> = inv
                .volumes
                .iter()
                .filter(|v| v.mapped_sdc_ids.iter().any(|s| s == id))
                .map(|v| &v.id)
                .collect();
            let mut m = Map::new();
            m.insert("numOfMappedVolumes".into(), json!(volumes.len()));
            m.insert("volumeIds".into(), ids(volumes.into_iter()));
            for k in ["userDataReadBwc", "userDataWriteBwc", "userDataTrimBwc"] {
                m.insert(k.into(), bwc_zero());
            }
            Some(m)
        }
        "Volume" => {
            let v = inv.volumes.iter().find(|v| v.id == id)?;
            let mut m = Map::new();
            m.insert("numOfMappedSdcs".into(), json!(v.mapped_sdc_ids.len()));
            m.insert("mappedSdcIds".into(), ids(v.mapped_sdc_ids.iter()));
            for k in ["userDataReadBwc", "userDataWriteBwc", "userDataTrimBwc"] {
                m.insert(k.into(), bwc_zero());
            }
            Some(m)
        }
        _ => None,
    }
}

/// The ids of every object of a statistics-capable type.
pub fn all_ids(inv: &Inventory, type_name: &str) -> Option<Vec<String>> {
    let ids: Vec<String> = match type_name {
        "System" => vec![inv.system.id.clone()],
        "ProtectionDomain" => inv
            .protection_domains
            .iter()
            .map(|o| o.id.clone())
            .collect(),
        "StoragePool" => inv.pools.iter().map(|o| o.id.clone()).collect(),
        "FaultSet" => inv.fault_sets.iter().map(|o| o.id.clone()).collect(),
        "Sds" => inv.sds.iter().map(|o| o.id.clone()).collect(),
        "Sdc" => inv.sdcs.iter().map(|o| o.id.clone()).collect(),
        "Device" => inv.devices.iter().map(|o| o.id.clone()).collect(),
        "Volume" => inv.volumes.iter().map(|o| o.id.clone()).collect(),
        _ => return None,
    };
    Some(ids)
}
