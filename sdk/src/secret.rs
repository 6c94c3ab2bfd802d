//! `Secret`: a string that never prints.

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

/// A password or token. `Debug` and `Display` print `***`, so a secret
/// cannot leak through a log line or an error message by accident.
///
/// Serialization writes the real value: the worker channel must carry it.
/// Never serialize a `Secret` towards users; the host's API has its own
/// views for that.
#[repr(transparent)]
#[derive(Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(RString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(RString::from(value.into()))
    }

    /// The real value. Call only where the value is needed (an HTTP header).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}
