//! `DriverInfo` and the SDK version rules.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

use crate::capability::CapabilityDefinition;

/// The version of this SDK. A driver records the SDK it was built with;
/// the host refuses drivers of another SDK major (see [`sdk_compatibility`]).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Who a driver is and what it serves.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct DriverInfo {
    /// Driver name, e.g. `scaleio-driver`.
    pub name: RString,
    /// Driver version, semver.
    pub version: RString,
    /// Who makes the driver.
    pub vendor: RString,
    /// Storage system types the driver serves, e.g. `["scaleio"]`.
    pub storage_system_types: RVec<RString>,
    /// Provider type the driver scans, if the systems are managed through a provider.
    pub provider_type: ROption<RString>,
    /// The SDK version the driver was built with. [`DriverInfo::new`] fills it in.
    pub sdk_version: RString,
    /// Capability definitions the driver uses.
    pub capability_definitions: RVec<CapabilityDefinition>,
}

impl DriverInfo {
    /// Info for driver `name` at `version` (semver) by `vendor`, recording
    /// the SDK version the driver is being built with.
    pub fn new(name: &str, version: &str, vendor: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            vendor: vendor.into(),
            sdk_version: SDK_VERSION.into(),
            ..Self::default()
        }
    }

    /// Adds a storage system type the driver serves.
    pub fn with_system_type(mut self, system_type: &str) -> Self {
        self.storage_system_types.push(system_type.into());
        self
    }

    /// Sets the provider type.
    pub fn with_provider_type(mut self, provider_type: &str) -> Self {
        self.provider_type = ROption::RSome(provider_type.into());
        self
    }

    /// Adds a capability definition.
    pub fn with_capability(mut self, definition: CapabilityDefinition) -> Self {
        self.capability_definitions.push(definition);
        self
    }

    /// Checks what the host relies on: a name, a semver version, at least one
    /// storage system type, no empty type, and no capability uid declared twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("driver info has an empty name".into());
        }
        semver::Version::parse(&self.version)
            .map_err(|e| format!("driver version '{}' is not semver: {e}", self.version))?;
        if self.storage_system_types.is_empty() {
            return Err("driver serves no storage system type".into());
        }
        if self
            .storage_system_types
            .iter()
            .any(|t| t.trim().is_empty())
        {
            return Err("driver declares an empty storage system type".into());
        }
        let mut uids: Vec<&str> = self
            .capability_definitions
            .iter()
            .map(|d| d.uid.as_str())
            .collect();
        uids.sort_unstable();
        if let Some(pair) = uids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "capability definition '{}' is declared twice",
                pair[0]
            ));
        }
        Ok(())
    }
}

/// Why a driver's SDK version cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdkMismatch {
    /// The version string does not parse.
    #[error("its SDK version '{0}' is not a valid version")]
    Unparsable(String),
    /// Another major (for 0.y, another y), or a newer minor than the host knows.
    #[error("built for southbound-sdk {driver}; this host runs southbound-sdk {host} and accepts {accepted}")]
    Incompatible {
        /// The driver's SDK version.
        driver: String,
        /// The host's SDK version.
        host: String,
        /// The range the host accepts, e.g. `0.1.x`.
        accepted: String,
    },
}

/// Whether a driver built with SDK `driver` can be served by a host built
/// with SDK `host`.
///
/// Same rule as Cargo's caret requirements, which abi_stable also applies:
/// for `0.y.z` the `y` is the major. On top of that, a driver built with a
/// *newer* minor than the host (>= 1.0) is refused: it may rely on entry
/// points the host does not call yet.
pub fn sdk_compatibility(driver: &str, host: &str) -> Result<(), SdkMismatch> {
    let d = semver::Version::parse(driver).map_err(|_| SdkMismatch::Unparsable(driver.into()))?;
    let h = semver::Version::parse(host).map_err(|_| SdkMismatch::Unparsable(host.into()))?;
    let (compatible, accepted) = if h.major == 0 {
        (
            d.major == 0 && d.minor == h.minor,
            format!("0.{}.x", h.minor),
        )
    } else {
        (
            d.major == h.major && d.minor <= h.minor,
            format!("{}.0 to {}.{}.x", h.major, h.major, h.minor),
        )
    };
    if compatible {
        Ok(())
    } else {
        Err(SdkMismatch::Incompatible {
            driver: driver.into(),
            host: host.into(),
            accepted,
        })
    }
}
