//! The gateway API versions the simulator speaks.

use std::fmt;
use std::str::FromStr;

/// An API version: which fields objects carry and which auth flows exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiVersion {
    /// ScaleIO 2.6.
    V2_6,
    /// VxFlex OS / PowerFlex 3.6.
    V3_6,
    /// PowerFlex 4.5 (adds the `/rest/auth` bearer flow).
    V4_5,
}

impl ApiVersion {
    /// The string `/api/version` answers (quoted on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_6 => "2.6",
            Self::V3_6 => "3.6",
            Self::V4_5 => "4.5",
        }
    }

    /// `systemVersionName` of the simulated system.
    pub fn system_version_name(self) -> &'static str {
        match self {
            Self::V2_6 => "DellEMC ScaleIO Version: R2_6.12000.101",
            Self::V3_6 => "DellEMC PowerFlex Version: R3_6.200.104",
            Self::V4_5 => "DellEMC PowerFlex Version: R4_5.1000.103",
        }
    }

    /// Component version (`versionInfo`).
    pub fn component_version(self) -> &'static str {
        match self {
            Self::V2_6 => "R2_6.12000.0",
            Self::V3_6 => "R3_6.200.0",
            Self::V4_5 => "R4_5.1000.0",
        }
    }

    /// 3.x and later: media type, data layout, net capacities, `mdmCluster` extras.
    pub fn is_3x_or_later(self) -> bool {
        self >= Self::V3_6
    }

    /// 4.x: the `/rest/auth` flow and Bearer tokens.
    pub fn has_bearer_auth(self) -> bool {
        self >= Self::V4_5
    }

    /// The thin-allocated statistic's name: misspelled `...InKm` after 3.5.
    pub fn thin_allocated_property(self) -> &'static str {
        if self.is_3x_or_later() {
            "thinCapacityAllocatedInKm"
        } else {
            "thinCapacityAllocatedInKb"
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "2.6" => Ok(Self::V2_6),
            "3.6" => Ok(Self::V3_6),
            "4.5" => Ok(Self::V4_5),
            other => Err(format!(
                "unsupported API version '{other}' (2.6, 3.6 or 4.5)"
            )),
        }
    }
}
