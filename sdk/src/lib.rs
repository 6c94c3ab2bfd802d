//! # southbound-sdk
//!
//! The SDK storage vendors build Southbound drivers with. A driver is a
//! `cdylib` that implements [`DiscoveryDriver`] and exports it with
//! [`export_driver!`]; the Southbound host loads it from its plugins
//! directory, checks its SDK version and ABI layout, and calls it to
//! discover storage providers, systems, pools, ports and hosts.
//!
//! - [`DiscoveryDriver`]: the trait a vendor implements, with
//!   [`DriverInfo`], [`CallContext`] and [`DriverError`].
//! - [`model`]: the object model (after CoprHD's southbound SDK):
//!   [`StorageProvider`] in; [`ProviderScan`], [`StorageSystem`],
//!   [`StoragePool`], [`StoragePort`], [`StorageHostComponent`] with their
//!   [`Initiator`]s, and [`CapabilityDefinition`] /
//!   [`CapabilityInstance`] out.
//! - [`log`]: log lines the host picks up; [`pins`]: the TLS pins format.
//!
//! The vendor guide follows: a complete driver (compiled by the SDK's
//! tests), then every model type field by field.
//!
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// The host's side of the boundary: generated for drivers by
// `export_driver!`, read by the host's loader. Not for vendors.
#[doc(hidden)]
pub mod abi;
mod capability;
mod context;
mod driver;
mod error;
mod info;
pub mod log;
pub mod model;
mod open_enum;
pub mod pins;
mod secret;
mod task;

pub use capability::{
    CapabilityCategory, CapabilityDefinition, CapabilityInstance, CapabilityProperty,
};
pub use context::CallContext;
pub use driver::DiscoveryDriver;
pub use error::{DriverError, DriverResult, ErrorKind};
#[doc(hidden)] // the host's version rule
pub use info::{sdk_compatibility, SdkMismatch};
pub use info::{DriverInfo, SDK_VERSION};
pub use model::*;
pub use secret::Secret;
pub use task::{DriverTask, TaskStatus};

/// Re-exports the driver types need; vendors get them through the SDK.
pub use abi_stable::std_types::{RArc, ROption, RString, RVec};
pub use async_trait::async_trait;

/// An open enum received a name it does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a known {enum_name}")]
pub struct UnknownVariant {
    /// The enum's name.
    pub enum_name: &'static str,
    /// The text that did not match.
    pub value: String,
}

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::StableAbi;
    pub use serde;
}

#[cfg(test)]
mod tests;
