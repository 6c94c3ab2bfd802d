//! The driver's entry points, as the host sees them: one list, from which
//! the request and response enums (the worker channel's payload),
//! [`dispatch`] (request -> ABI call) and the typed [`DriverExt`] methods are
//! generated. A new entry point is one line here (plus the SDK's trait, its
//! ABI mirror and glue on the driver side).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use southbound_sdk::abi::DriverBox;
use southbound_sdk::{
    CallContext, CapabilityDefinition, DriverError, DriverResult, ProviderScan, RVec,
    StorageHostComponent, StoragePool, StoragePort, StorageProvider, StorageSystem,
};

use super::Driver;

macro_rules! driver_calls {
    ($(
        $(#[$doc:meta])*
        $method:ident => $Variant:ident ($($arg:ident: $Arg:ty),*) -> $Answer:ty;
    )*) => {
        /// One driver call, with its inputs.
        // Externally tagged (serde's default), as the channel's binary
        // format needs: no variant is found by looking inside it.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DriverRequest {
            $(
                $(#[$doc])*
                $Variant { $($arg: $Arg),* },
            )*
        }

        /// A successful answer to the [`DriverRequest`] of the same name.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[allow(clippy::large_enum_variant)] // short-lived, one per call
        pub enum DriverResponse {
            $(
                $(#[$doc])*
                $Variant($Answer),
            )*
        }

        impl DriverRequest {
            /// The call's name, for logs and errors.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$Variant { .. } => stringify!($method),)*
                }
            }
        }

        /// Serves one request with a loaded driver library: the single place
        /// that maps requests onto the ABI (used in-process, and by worker
        /// processes).
        pub fn dispatch(
            driver: &DriverBox,
            ctx: &CallContext,
            request: &DriverRequest,
        ) -> DriverResult<DriverResponse> {
            match request {
                $(
                    DriverRequest::$Variant { $($arg),* } => driver
                        .$method(ctx, $($arg),*)
                        .into_result()
                        .map(DriverResponse::$Variant),
                )*
            }
        }

        /// Typed calls on any [`Driver`].
        #[async_trait]
        pub trait DriverExt: Driver {
            $(
                $(#[$doc])*
                async fn $method(&self, ctx: CallContext, $($arg: &$Arg),*) -> DriverResult<$Answer> {
                    let request = DriverRequest::$Variant { $($arg: $arg.clone()),* };
                    match self.call(ctx, request).await? {
                        DriverResponse::$Variant(answer) => Ok(answer),
                        // A host bug or a corrupted channel.
                        other => Err(DriverError::internal(format!(
                            "driver answered {} with a response to another call: {other:?}",
                            stringify!($method)
                        ))),
                    }
                }
            )*
        }
    };
}

driver_calls! {
    /// [`southbound_sdk::DiscoveryDriver::scan_provider`].
    scan_provider => ScanProvider(provider: StorageProvider) -> ProviderScan;
    /// [`southbound_sdk::DiscoveryDriver::discover_system`].
    discover_system => DiscoverSystem(provider: StorageProvider, system: StorageSystem) -> StorageSystem;
    /// [`southbound_sdk::DiscoveryDriver::discover_pools`].
    discover_pools => DiscoverPools(provider: StorageProvider, system: StorageSystem) -> RVec<StoragePool>;
    /// [`southbound_sdk::DiscoveryDriver::discover_ports`].
    discover_ports => DiscoverPorts(provider: StorageProvider, system: StorageSystem) -> RVec<StoragePort>;
    /// [`southbound_sdk::DiscoveryDriver::discover_host_components`].
    discover_host_components => DiscoverHostComponents(provider: StorageProvider, system: StorageSystem) -> RVec<StorageHostComponent>;
    /// [`southbound_sdk::DiscoveryDriver::capability_definitions`].
    capability_definitions => CapabilityDefinitions(provider: StorageProvider, system: StorageSystem) -> RVec<CapabilityDefinition>;
}

impl<D: Driver + ?Sized> DriverExt for D {}
