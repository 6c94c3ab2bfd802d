//! The parts of the gateway's JSON the driver reads. Unknown fields are
//! ignored and optional ones may be missing or null, so any 2.x-4.x gateway
//! parses.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// `GET /api/instances`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Bulk {
    #[serde(rename = "System")]
    pub system: Option<System>,
    pub protection_domain_list: Option<Vec<ProtectionDomain>>,
    pub storage_pool_list: Option<Vec<StoragePool>>,
    pub sds_list: Option<Vec<Sds>>,
    pub sdc_list: Option<Vec<Sdc>>,
    pub fault_set_list: Option<Vec<FaultSet>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct System {
    pub id: String,
    pub name: Option<String>,
    pub system_version_name: Option<String>,
    pub install_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProtectionDomain {
    pub id: String,
    pub name: Option<String>,
    pub protection_domain_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StoragePool {
    pub id: String,
    pub name: Option<String>,
    pub protection_domain_id: Option<String>,
    pub media_type: Option<String>,
    pub data_layout: Option<String>,
    pub zero_padding_enabled: Option<bool>,
    pub compression_method: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpEntry {
    pub ip: String,
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sds {
    pub id: String,
    pub name: Option<String>,
    pub protection_domain_id: Option<String>,
    pub fault_set_id: Option<String>,
    pub ip_list: Option<Vec<IpEntry>>,
    pub port: Option<u16>,
    pub sds_state: Option<String>,
    pub membership_state: Option<String>,
    pub mdm_connection_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sdc {
    pub id: String,
    pub name: Option<String>,
    pub sdc_ip: Option<String>,
    pub sdc_guid: Option<String>,
    pub os_type: Option<String>,
    pub mdm_connection_state: Option<String>,
    pub host_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultSet {
    pub id: String,
    pub name: Option<String>,
}

/// Statistics properties the driver asks for, per pool.
pub const POOL_STATISTICS: &[&str] = &[
    "maxCapacityInKb",
    "spareCapacityInKb",
    "capacityInUseInKb",
    "capacityAvailableForVolumeAllocationInKb",
    "primaryVacInKb",
    "numOfVolumes",
];

/// One object's statistics: property -> value.
pub type Statistics = HashMap<String, Value>;

/// Reads an integer statistic; gateways send integers, but tolerate numeric strings.
pub fn stat_u64(stats: &Statistics, name: &str) -> Option<u64> {
    match stats.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The `{"message", "httpStatusCode", "errorCode"}` error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorBody {
    pub message: Option<String>,
    pub error_code: Option<i64>,
}

/// `POST /rest/auth/login` and `/rest/auth/update-token` answers (4.x).
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
}
