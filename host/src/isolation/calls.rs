//! The driver's entry points, as the host sees them: one list, from which
//! the request and response enums (the worker channel's payload),
//! [`dispatch`] (request -> ABI call) and the typed [`DriverExt`] methods are
//! generated. A new entry point is one line here (plus the SDK's trait, its
//! ABI mirror and glue on the driver side).
//!
//! An answer marked `as shared` reaches the host's callers in an [`RArc`]:
//! the same answer, given for several systems, is then held once (a
//! worker's host decodes a repeated one once, see
//! [`protocol::AnswerCache`](super::protocol::AnswerCache)).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use southbound_sdk::abi::DriverBox;
use southbound_sdk::{
    CallContext, CapabilityDefinition, DriverError, DriverResult, ProviderScan, RArc, RVec,
    StorageHostComponent, StoragePool, StoragePort, StorageProvider, StorageSystem,
};

use super::Driver;

macro_rules! driver_calls {
    // The host's type of an answer, the ABI's answer made into it, and
    // whether it is shared.
    (@answer $Answer:ty) => { $Answer };
    (@answer $Answer:ty, shared) => { RArc<$Answer> };
    (@host $answer:expr) => { $answer };
    (@host $answer:expr, shared) => { RArc::new($answer) };
    (@shared) => { false };
    (@shared shared) => { true };
    ($(
        $(#[$doc:meta])*
        $method:ident => $Variant:ident ($($arg:ident: $Arg:ty),*) -> $Answer:ty $(as $shared:ident)?;
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
                $Variant(driver_calls!(@answer $Answer $(, $shared)?)),
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

        impl DriverResponse {
            /// Whether this answer is shared ([`RArc`]): cloning it is cheap,
            /// so a repeated one can be handed out again rather than decoded.
            pub fn is_shared(&self) -> bool {
                match self {
                    $(Self::$Variant(_) => driver_calls!(@shared $($shared)?),)*
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
                        .map(|answer| DriverResponse::$Variant(driver_calls!(@host answer $(, $shared)?))),
                )*
            }
        }

        /// Typed calls on any [`Driver`].
        #[async_trait]
        pub trait DriverExt: Driver {
            $(
                $(#[$doc])*
                async fn $method(&self, ctx: CallContext, $($arg: &$Arg),*) -> DriverResult<driver_calls!(@answer $Answer $(, $shared)?)> {
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
    discover_host_components => DiscoverHostComponents(provider: StorageProvider, system: StorageSystem) -> RVec<StorageHostComponent> as shared;
    /// [`southbound_sdk::DiscoveryDriver::capability_definitions`].
    capability_definitions => CapabilityDefinitions(provider: StorageProvider, system: StorageSystem) -> RVec<CapabilityDefinition>;
}

impl<D: Driver + ?Sized> DriverExt for D {}
