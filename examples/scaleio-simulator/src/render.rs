//! ScaleIO objects as the gateway renders them, per API version, each with
//! its `links` (self, child relationships, parents).

use serde_json::{json, Map, Value};

use crate::topology::{Device, FaultSet, Inventory, Pool, ProtectionDomain, Sdc, Sds, Volume};
use crate::version::ApiVersion;

/// Object types the simulator serves.
pub const TYPES: &[&str] = &[
    "System",
    "ProtectionDomain",
    "StoragePool",
    "Sds",
    "Sdc",
    "Device",
    "FaultSet",
    "Volume",
];

/// Child relationships (besides `Statistics`) per type.
fn child_relationships(type_name: &str, version: ApiVersion) -> &'static [&'static str] {
    match (type_name, version.is_3x_or_later()) {
        ("System", _) => &["ProtectionDomain", "Sdc"],
        ("ProtectionDomain", _) => &["StoragePool", "Sds", "FaultSet"],
        ("StoragePool", _) => &["Volume", "Device"],
        ("Sds", _) => &["Device"],
        ("Sdc", _) => &["Volume"],
        ("FaultSet", _) => &["Sds"],
        _ => &[],
    }
}

fn links(type_name: &str, id: &str, version: ApiVersion, parents: &[(&str, &str, &str)]) -> Value {
    let self_href = format!("/api/instances/{type_name}::{id}");
    let mut links = vec![json!({"rel": "self", "href": self_href})];
    for rel in std::iter::once(&"Statistics").chain(child_relationships(type_name, version)) {
        links.push(json!({
            "rel": format!("/api/{type_name}/relationship/{rel}"),
            "href": format!("{self_href}/relationships/{rel}"),
        }));
    }
    for (field, parent_type, parent_id) in parents {
        links.push(json!({
            "rel": format!("/api/parent/relationship/{field}"),
            "href": format!("/api/instances/{parent_type}::{parent_id}"),
        }));
    }
    Value::Array(links)
}

fn with_links(mut object: Value, links: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.insert("links".into(), links);
    }
    object
}

/// The System object.
pub fn system(inv: &Inventory, version: ApiVersion) -> Value {
    let s = &inv.system;
    let mdm = |n: usize, role: &str| {
        json!({
            "id": format!("{}", 7_100_000_000_000_000_000u64 + n as u64),
            "name": format!("mdm-{n}"),
            "ips": [format!("10.99.0.{}", n + 1)],
            "managementIPs": [format!("10.98.0.{}", n + 1)],
            "port": 9011,
            "role": role,
            "status": "Normal",
            "versionInfo": version.component_version(),
            "opensslVersion": if role == "TieBreaker" { "N/A" } else { "OpenSSL 1.0.2k-fips  26 Jan 2017" },
            "virtualInterfaces": [],
        })
    };
    let mut o = json!({
        "id": s.id,
        "systemVersionName": version.system_version_name(),
        "installId": s.install_id,
        "swid": "",
        "daysInstalled": 42,
        "maxCapacityInGb": "Unlimited",
        "capacityTimeLeftInDays": "Unlimited",
        "capacityAlertHighThresholdPercent": 80,
        "capacityAlertCriticalThresholdPercent": 90,
        "enterpriseFeaturesEnabled": true,
        "isInitialLicense": false,
        "defaultIsVolumeObfuscated": false,
        "restrictedSdcModeEnabled": false,
        "restrictedSdcMode": "None",
        "perfProfile": "Default",
        "authenticationMethod": "Native",
        "mdmManagementPort": 6611,
        "tlsVersion": "TLSv1.2",
        "upgradeState": "NoUpgrade",
        "mdmCluster": {
            "id": "7100000000000000999",
            "clusterMode": "ThreeNodes",
            "clusterState": "ClusteredNormal",
            "goodNodesNum": 3,
            "goodReplicasNum": 2,
            "master": mdm(0, "Manager"),
            "slaves": [mdm(1, "Manager")],
            "tieBreakers": [mdm(2, "TieBreaker")],
        },
    });
    let map = o.as_object_mut().expect("object literal");
    if version.is_3x_or_later() {
        map.insert("name".into(), json!(s.name));
        map.insert("mdmExternalPort".into(), json!(7611));
        map.insert("mdmSecurityPolicy".into(), json!("None"));
        map.insert("addressSpaceUsage".into(), json!("Normal"));
        map.insert("defragmentationEnabled".into(), json!(true));
        map.insert("lastUpgradeTime".into(), json!(0));
    } else {
        map.insert("mdmToSdsPolicy".into(), json!("Authentication"));
        map.insert(
            "sdcSdsConnectivityInfo".into(),
            json!({"sdcSdsConnectivityStatus": "AllConnected", "disconnectedSdcId": null, "disconnectedSdcName": null, "disconnectedSdsId": null, "disconnectedSdsName": null}),
        );
    }
    with_links(o, links("System", &s.id, version, &[]))
}

/// A protection domain.
pub fn protection_domain(inv: &Inventory, pd: &ProtectionDomain, version: ApiVersion) -> Value {
    let mut o = json!({
        "id": pd.id,
        "name": pd.name,
        "systemId": inv.system.id,
        "protectionDomainState": pd.state,
        "rebuildNetworkThrottlingEnabled": false,
        "rebalanceNetworkThrottlingEnabled": false,
        "overallIoNetworkThrottlingEnabled": false,
        "rebuildNetworkThrottlingInKbps": null,
        "rebalanceNetworkThrottlingInKbps": null,
        "overallIoNetworkThrottlingInKbps": null,
        "rfcacheEnabled": true,
        "rfcacheOpertionalMode": "WriteMiss",
        "rfcachePageSizeKb": 64,
        "rfcacheMaxIoSizeKb": 128,
    });
    if version.is_3x_or_later() {
        let map = o.as_object_mut().expect("object literal");
        map.insert("fglDefaultNumConcurrentWrites".into(), json!(1000));
        map.insert("fglMetadataCacheEnabled".into(), json!(false));
        map.insert("fglDefaultMetadataCacheSize".into(), json!(0));
        map.insert("rfcacheAccpId".into(), Value::Null);
        map.insert("replicationCapacityMaxRatio".into(), json!(32));
    }
    with_links(
        o,
        links(
            "ProtectionDomain",
            &pd.id,
            version,
            &[("systemId", "System", &inv.system.id)],
        ),
    )
}

/// A storage pool.
pub fn pool(p: &Pool, version: ApiVersion) -> Value {
    let mut o = json!({
        "id": p.id,
        "name": p.name,
        "protectionDomainId": p.protection_domain_id,
        "sparePercentage": p.spare_percentage,
        "zeroPaddingEnabled": p.zero_padding,
        "useRmcache": false,
        "useRfcache": false,
        "rebuildEnabled": true,
        "rebalanceEnabled": true,
        "checksumEnabled": false,
        "rmcacheWriteHandlingMode": "Cached",
        "numOfParallelRebuildRebalanceJobsPerDevice": 2,
        "capacityAlertHighThreshold": 80,
        "capacityAlertCriticalThreshold": 90,
        "rebuildIoPriorityPolicy": "limitNumOfConcurrentIos",
        "rebalanceIoPriorityPolicy": "favorAppIos",
        "backgroundScannerMode": "Disabled",
        "backgroundScannerBWLimitKBps": 0,
    });
    if version.is_3x_or_later() {
        let fine = p.data_layout == "FineGranularity";
        let map = o.as_object_mut().expect("object literal");
        map.insert("mediaType".into(), json!(p.media_type));
        map.insert("dataLayout".into(), json!(p.data_layout));
        map.insert(
            "compressionMethod".into(),
            json!(if fine { "Normal" } else { "Invalid" }),
        );
        map.insert("capacityUsageState".into(), json!("Normal"));
        map.insert("capacityUsageType".into(), json!("NetCapacity"));
        map.insert("addressSpaceUsage".into(), json!("Normal"));
        map.insert("addressSpaceUsageType".into(), json!("DeviceCapacityLimit"));
        map.insert("externalAccelerationType".into(), json!("None"));
        map.insert("fragmentationEnabled".into(), json!(!fine));
        map.insert("persistentChecksumEnabled".into(), json!(false));
        map.insert("replicationCapacityMaxRatio".into(), json!(32));
        map.insert("fglAccpId".into(), Value::Null);
    }
    with_links(
        o,
        links(
            "StoragePool",
            &p.id,
            version,
            &[(
                "protectionDomainId",
                "ProtectionDomain",
                &p.protection_domain_id,
            )],
        ),
    )
}

/// An SDS.
pub fn sds(s: &Sds, version: ApiVersion) -> Value {
    let mut o = json!({
        "id": s.id,
        "name": s.name,
        "protectionDomainId": s.protection_domain_id,
        "faultSetId": s.fault_set_id,
        "ipList": [{"ip": s.ip, "role": "all"}],
        "port": s.port,
        "sdsState": s.sds_state,
        "membershipState": s.membership_state,
        "mdmConnectionState": s.mdm_connection_state,
        "maintenanceState": "NoMaintenance",
        "drlMode": "Volatile",
        "rmcacheEnabled": true,
        "rmcacheSizeInKb": 131072,
        "rmcacheFrozen": false,
        "rmcacheMemoryAllocationState": "AllocationPending",
        "rfcacheEnabled": false,
        "onVmWare": false,
        "perfProfile": "Default",
        "authenticationError": "None",
        "numOfIoBuffers": null,
        "softwareVersionInfo": if version.is_3x_or_later() { Value::String(version.component_version().into()) } else { Value::Null },
    });
    if version.is_3x_or_later() {
        let map = o.as_object_mut().expect("object literal");
        map.insert("maintenanceType".into(), json!("NoMaintenance"));
        map.insert("configuredDrlMode".into(), json!("Volatile"));
        map.insert("numRestarts".into(), json!(0));
        map.insert("lastUpgradeTime".into(), json!(0));
        map.insert("raidControllers".into(), Value::Null);
    }
    let mut parents = vec![(
        "protectionDomainId",
        "ProtectionDomain",
        s.protection_domain_id.as_str(),
    )];
    if let Some(fs) = &s.fault_set_id {
        parents.push(("faultSetId", "FaultSet", fs));
    }
    with_links(o, links("Sds", &s.id, version, &parents))
}

/// An SDC.
pub fn sdc(inv: &Inventory, s: &Sdc, version: ApiVersion) -> Value {
    let mut o = json!({
        "id": s.id,
        "name": s.name,
        "sdcIp": s.ip,
        "sdcApprovedIps": [s.ip],
        "sdcGuid": s.guid,
        "sdcApproved": true,
        "mdmConnectionState": s.mdm_connection_state,
        "osType": s.os_type,
        "perfProfile": "Default",
        "systemId": inv.system.id,
        "versionInfo": version.component_version(),
        "softwareVersionInfo": version.component_version(),
        "installedSoftwareVersionInfo": version.component_version(),
        "kernelVersion": "5.14.0",
        "kernelBuildNumber": null,
        "memoryAllocationFailure": null,
        "socketAllocationFailure": null,
    });
    if version.is_3x_or_later() {
        let map = o.as_object_mut().expect("object literal");
        map.insert("sdcIps".into(), json!([s.ip]));
        map.insert("sdcType".into(), json!("AppSdc"));
        map.insert("peerMdmId".into(), Value::Null);
        map.insert("sdrId".into(), Value::Null);
    }
    if version.has_bearer_auth() {
        o.as_object_mut()
            .expect("object literal")
            .insert("hostType".into(), json!("SdcHost"));
    }
    with_links(
        o,
        links(
            "Sdc",
            &s.id,
            version,
            &[("systemId", "System", &inv.system.id)],
        ),
    )
}

/// A device.
pub fn device(d: &Device, media_type: &str, version: ApiVersion) -> Value {
    let mut o = json!({
        "id": d.id,
        "name": d.name,
        "sdsId": d.sds_id,
        "storagePoolId": d.storage_pool_id,
        "deviceCurrentPathName": d.path,
        "deviceOriginalPathName": d.path,
        "deviceState": "Normal",
        "errorState": "None",
        "capacityLimitInKb": d.capacity_kib,
        "maxCapacityInKb": d.capacity_kib,
        "ledSetting": "Off",
        "aggregatedState": "NeverFailed",
        "temperatureState": "NeverFailed",
        "ssdEndOfLifeState": "NeverFailed",
        "rfcacheErrorDeviceDoesNotExist": false,
    });
    if version.is_3x_or_later() {
        let map = o.as_object_mut().expect("object literal");
        map.insert("mediaType".into(), json!(media_type));
        map.insert("autoDetectMediaType".into(), json!(media_type));
        map.insert("deviceType".into(), json!("Unknown"));
        map.insert("logicalSectorSizeInBytes".into(), json!(512));
        map.insert("physicalSectorSizeInBytes".into(), json!(512));
    }
    with_links(
        o,
        links(
            "Device",
            &d.id,
            version,
            &[
                ("sdsId", "Sds", &d.sds_id),
                ("storagePoolId", "StoragePool", &d.storage_pool_id),
            ],
        ),
    )
}

/// A fault set.
pub fn fault_set(f: &FaultSet, version: ApiVersion) -> Value {
    with_links(
        json!({"id": f.id, "name": f.name, "protectionDomainId": f.protection_domain_id}),
        links(
            "FaultSet",
            &f.id,
            version,
            &[(
                "protectionDomainId",
                "ProtectionDomain",
                &f.protection_domain_id,
            )],
        ),
    )
}

/// A volume.
pub fn volume(inv: &Inventory, v: &Volume, version: ApiVersion) -> Value {
    let mapped: Vec<Value> = v
        .mapped_sdc_ids
        .iter()
        .filter_map(|id| inv.sdcs.iter().find(|s| &s.id == id))
        .map(|s| json!({"sdcId": s.id, "sdcIp": s.ip, "limitIops": 0, "limitBwInMbps": 0}))
        .collect();
    let mut o = json!({
        "id": v.id,
        "name": v.name,
        "storagePoolId": v.storage_pool_id,
        "vtreeId": v.id.replacen(&v.id[..8], "7e7e7e7e", 1),
        "sizeInKb": v.size_kib,
        "volumeType": if v.thin { "ThinProvisioned" } else { "ThickProvisioned" },
        "creationTime": v.creation_time,
        "ancestorVolumeId": null,
        "consistencyGroupId": null,
        "mappedSdcInfo": if mapped.is_empty() { Value::Null } else { Value::Array(mapped) },
        "mappingToAllSdcsEnabled": false,
        "useRmcache": false,
        "isObfuscated": false,
        "isVvol": false,
    });
    if version.is_3x_or_later() {
        let map = o.as_object_mut().expect("object literal");
        let layout = inv
            .pools
            .iter()
            .find(|p| p.id == v.storage_pool_id)
            .map_or("MediumGranularity", |p| p.data_layout.as_str());
        map.insert("dataLayout".into(), json!(layout));
        map.insert("compressionMethod".into(), json!("None"));
        map.insert("accessModeLimit".into(), json!("ReadWrite"));
        map.insert("managedBy".into(), json!("ScaleIO"));
    }
    with_links(
        o,
        links(
            "Volume",
            &v.id,
            version,
            &[("storagePoolId", "StoragePool", &v.storage_pool_id)],
        ),
    )
}

fn media_of(inv: &Inventory, pool_id: &str) -> String {
    inv.pools
        .iter()
        .find(|p| p.id == pool_id)
        .map_or_else(|| "HDD".into(), |p| p.media_type.clone())
}

/// Every object of `type_name`, or `None` for an unknown type.
pub fn instances(inv: &Inventory, version: ApiVersion, type_name: &str) -> Option<Vec<Value>> {
    let objects = match type_name {
        "System" => vec![system(inv, version)],
        "ProtectionDomain" => inv
            .protection_domains
            .iter()
            .map(|p| protection_domain(inv, p, version))
            .collect(),
        "StoragePool" => inv.pools.iter().map(|p| pool(p, version)).collect(),
        "Sds" => inv.sds.iter().map(|s| sds(s, version)).collect(),
        "Sdc" => inv.sdcs.iter().map(|s| sdc(inv, s, version)).collect(),
        "Device" => inv
            .devices
            .iter()
            .map(|d| device(d, &media_of(inv, &d.storage_pool_id), version))
            .collect(),
        "FaultSet" => inv
            .fault_sets
            .iter()
            .map(|f| fault_set(f, version))
            .collect(),
        "Volume" => inv
            .volumes
            .iter()
            .map(|v| volume(inv, v, version))
            .collect(),
        _ => return None,
    };
    Some(objects)
}

/// One object, or `None` if absent.
pub fn instance(inv: &Inventory, version: ApiVersion, type_name: &str, id: &str) -> Option<Value> {
    match type_name {
        "System" => (id == inv.system.id).then(|| system(inv, version)),
        "ProtectionDomain" => inv
            .protection_domains
            .iter()
            .find(|p| p.id == id)
            .map(|p| protection_domain(inv, p, version)),
        "StoragePool" => inv
            .pools
            .iter()
            .find(|p| p.id == id)
            .map(|p| pool(p, version)),
        "Sds" => inv.sds.iter().find(|s| s.id == id).map(|s| sds(s, version)),
        "Sdc" => inv
            .sdcs
            .iter()
            .find(|s| s.id == id)
            .map(|s| sdc(inv, s, version)),
        "Device" => inv
            .devices
            .iter()
            .find(|d| d.id == id)
            .map(|d| device(d, &media_of(inv, &d.storage_pool_id), version)),
        "FaultSet" => inv
            .fault_sets
            .iter()
            .find(|f| f.id == id)
            .map(|f| fault_set(f, version)),
        "Volume" => inv
            .volumes
            .iter()
            .find(|v| v.id == id)
            .map(|v| volume(inv, v, version)),
        _ => None,
    }
}

/// Related objects of `(type_name, id)` through `relationship`.
/// `None` when the relationship does not exist for the type.
pub fn related(
    inv: &Inventory,
    version: ApiVersion,
    type_name: &str,
    id: &str,
    relationship: &str,
) -> Option<Vec<Value>> {
    if !child_relationships(type_name, version).contains(&relationship) {
        return None;
    }
    let keep = |object: &Value, field: &str| object.get(field).and_then(Value::as_str) == Some(id);
    let all = instances(inv, version, relationship)?;
    let filtered = match (type_name, relationship) {
        ("System", _) => all,
        ("ProtectionDomain", _) => all
            .into_iter()
            .filter(|o| keep(o, "protectionDomainId"))
            .collect(),
        ("StoragePool", _) => all
            .into_iter()
            .filter(|o| keep(o, "storagePoolId"))
            .collect(),
        ("Sds", "Device") => all.into_iter().filter(|o| keep(o, "sdsId")).collect(),
        ("FaultSet", "Sds") => all.into_iter().filter(|o| keep(o, "faultSetId")).collect(),
        ("Sdc", "Volume") => {
            let mapped: Vec<&String> = inv
                .volumes
                .iter()
                .filter(|v| v.mapped_sdc_ids.iter().any(|s| s == id))
                .map(|v| &v.id)
                .collect();
            all.into_iter()
                .filter(|o| {
                    o.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|i| mapped.iter().any(|m| *m == i))
                })
                .collect()
        }
        _ => Vec::new(),
    };
    Some(filtered)
}

/// `GET /api/instances`: every object of every type in one document.
pub fn bulk(inv: &Inventory, version: ApiVersion) -> Value {
    let list = |t: &str| Value::Array(instances(inv, version, t).unwrap_or_default());
    let mut m = Map::new();
    m.insert("System".into(), system(inv, version));
    m.insert("protectionDomainList".into(), list("ProtectionDomain"));
    m.insert("storagePoolList".into(), list("StoragePool"));
    m.insert("sdsList".into(), list("Sds"));
    m.insert("sdcList".into(), list("Sdc"));
    m.insert("deviceList".into(), list("Device"));
    m.insert("faultSetList".into(), list("FaultSet"));
    m.insert("volumeList".into(), list("Volume"));
    m.insert("rfcacheDeviceList".into(), Value::Null);
    for (k, v) in [
        ("lastSystemVersion", 1),
        ("lastProtectionDomainVersion", 1),
        ("lastStoragePoolVersion", 1),
        ("lastSdsVersion", 1),
        ("lastSdcVersion", 1),
        ("lastDeviceVersion", 1),
        ("lastVolumeVersion", 1),
        ("lastFaultSetVersion", 1),
        ("sessionTag", 1),
    ] {
        m.insert(k.into(), json!(v));
    }
    m.insert("isDirty".into(), json!(false));
    Value::Object(m)
}
