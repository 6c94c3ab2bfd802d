//! The ABI layer: what actually crosses the `cdylib` boundary.
//!
//! Vendors never touch this module: [`export_driver!`](crate::export_driver)
//! generates the exports. The host loads a driver file with
//! `abi_stable::library::lib_header_from_path(path)?.init_root_module::<DriverModRef>()`
//! (one call per file; never `RootModule::load_from_file`, which caches one
//! module per type), then calls [`DriverModRef::new`] once.
//!
//! Invariants kept here:
//! - Nothing unwinds across the boundary: every entry point runs the vendor
//!   code inside `catch_unwind` and turns a panic into `ErrorKind::Panicked`
//!   (abi_stable would otherwise end the process).
//! - Vendor futures run on a tokio runtime owned by the plugin (each cdylib has
//!   its own copy of tokio); the boundary itself is synchronous, and the host
//!   calls it from a blocking thread.
//! - Entry points are appended after `last_prefix_field`, with defaults, so a
//!   minor SDK release does not break drivers built against the previous one.

// `#[sabi_trait]` expands to impls the `non_local_definitions` lint flags
// (abi_stable 0.11.3 predates the lint); the code is sound.
#![allow(non_local_definitions)]

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, sabi_trait, StableAbi};

use crate::capability::CapabilityDefinition;
use crate::context::CallContext;
use crate::driver::DiscoveryDriver;
use crate::error::{DriverError, DriverResult};
use crate::info::DriverInfo;
use crate::model::{
    ProviderScan, StorageHostComponent, StoragePool, StoragePort, StorageProvider, StorageSystem,
};

/// The synchronous, FFI-safe mirror of [`DiscoveryDriver`].
#[sabi_trait]
pub trait AbiDriver: Send + Sync {
    /// See [`DiscoveryDriver::info`].
    fn info(&self) -> RResult<DriverInfo, DriverError>;

    /// See [`DiscoveryDriver::scan_provider`].
    fn scan_provider(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
    ) -> RResult<ProviderScan, DriverError>;

    /// See [`DiscoveryDriver::discover_system`].
    fn discover_system(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<StorageSystem, DriverError>;

    /// See [`DiscoveryDriver::discover_pools`].
    fn discover_pools(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StoragePool>, DriverError>;

    /// See [`DiscoveryDriver::discover_ports`].
    fn discover_ports(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StoragePort>, DriverError>;

    /// See [`DiscoveryDriver::discover_host_components`].
    fn discover_host_components(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StorageHostComponent>, DriverError>;

    /// See [`DiscoveryDriver::capability_definitions`].
    #[sabi(last_prefix_field)]
    fn capability_definitions(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<CapabilityDefinition>, DriverError>;
}

/// An instantiated driver as the host holds it.
pub type DriverBox = AbiDriver_TO<'static, RBox<()>>;

/// The root module every driver library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = DriverModRef)))]
#[sabi(missing_field(panic))]
pub struct DriverMod {
    /// Creates the driver and its runtime. Called once per load.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn() -> RResult<DriverBox, DriverError>,
}

impl RootModule for DriverModRef {
    declare_root_module_statics! {DriverModRef}
    const BASE_NAME: &'static str = "southbound_driver";
    const NAME: &'static str = "southbound driver";
    // The SDK crate's own version: this is what makes the SDK version the ABI version.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Builds the root module for driver type `D`. Used by `export_driver!`.
#[doc(hidden)]
pub fn root_module<D: DiscoveryDriver + Default>() -> DriverModRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    DriverMod {
        new: new_driver::<D>,
    }
    .leak_into_prefix()
}

extern "C" fn new_driver<D: DiscoveryDriver + Default>() -> RResult<DriverBox, DriverError> {
    guarded("new", || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("driver-runtime")
            // I/O and timers; no signal driver: signals are the host's
            // business, and it would hold a socket pair open for good.
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                DriverError::internal(format!("cannot start the driver's runtime: {e}"))
            })?;
        let exported = Exported {
            driver: D::default(),
            runtime,
        };
        Ok(AbiDriver_TO::from_value(exported, sabi_trait::TD_Opaque))
    })
}

/// A vendor driver plus the runtime its futures run on.
struct Exported<D> {
    driver: D,
    runtime: tokio::runtime::Runtime,
}

impl<D: DiscoveryDriver> Exported<D> {
    /// Runs one call: on the plugin's runtime, under the call's deadline,
    /// with panics caught.
    fn run<'a, T, F>(
        &'a self,
        op: &'static str,
        ctx: &'a CallContext,
        call: impl FnOnce(&'a D) -> F,
    ) -> RResult<T, DriverError>
    where
        F: Future<Output = DriverResult<T>> + 'a,
    {
        guarded(op, || {
            let future = call(&self.driver);
            self.runtime.block_on(async {
                match tokio::time::timeout(ctx.remaining(), future).await {
                    Ok(result) => result,
                    Err(_) => Err(DriverError::timeout(format!(
                        "{op} did not finish before its deadline (request {})",
                        ctx.request_id
                    ))),
                }
            })
        })
    }
}

impl<D: DiscoveryDriver> AbiDriver for Exported<D> {
    fn info(&self) -> RResult<DriverInfo, DriverError> {
        guarded("info", || Ok(self.driver.info()))
    }

    fn scan_provider(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
    ) -> RResult<ProviderScan, DriverError> {
        self.run("scan_provider", ctx, |d| d.scan_provider(ctx, provider))
    }

    fn discover_system(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<StorageSystem, DriverError> {
        self.run("discover_system", ctx, |d| {
            d.discover_system(ctx, provider, system)
        })
    }

    fn discover_pools(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StoragePool>, DriverError> {
        self.run("discover_pools", ctx, |d| async move {
            d.discover_pools(ctx, provider, system)
                .await
                .map(RVec::from)
        })
    }

    fn discover_ports(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StoragePort>, DriverError> {
        self.run("discover_ports", ctx, |d| async move {
            d.discover_ports(ctx, provider, system)
                .await
                .map(RVec::from)
        })
    }

    fn discover_host_components(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<StorageHostComponent>, DriverError> {
        self.run("discover_host_components", ctx, |d| async move {
            d.discover_host_components(ctx, provider, system)
                .await
                .map(RVec::from)
        })
    }

    fn capability_definitions(
        &self,
        ctx: &CallContext,
        provider: &StorageProvider,
        system: &StorageSystem,
    ) -> RResult<RVec<CapabilityDefinition>, DriverError> {
        self.run("capability_definitions", ctx, |d| async move {
            d.capability_definitions(ctx, provider, system)
                .await
                .map(RVec::from)
        })
    }
}

/// Runs `f`, turning a panic into `ErrorKind::Panicked` with the panic message.
fn guarded<T>(op: &str, f: impl FnOnce() -> DriverResult<T>) -> RResult<T, DriverError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            RResult::RErr(DriverError::panicked(format!(
                "driver panicked in {op}: {message}"
            )))
        }
    }
}

/// Items `export_driver!` expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

/// Exports a [`DiscoveryDriver`] from a `cdylib`. This is the only line of
/// ABI code a vendor writes:
///
/// ```ignore
/// #[derive(Default)]
/// struct MyDriver;
/// #[async_trait::async_trait]
/// impl southbound_sdk::DiscoveryDriver for MyDriver { /* ... */ }
/// southbound_sdk::export_driver!(MyDriver);
/// ```
///
/// The type must implement `Default`; the host creates one instance per load.
/// It expands to the abi_stable library header (the static the host looks
/// up), so the vendor crate needs no direct abi_stable dependency.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        // The symbol name is abi_stable's mangled name for the root-module
        // loader ("_as.lib_header.root module loader"); the host finds the
        // library header by it.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi::__private::LibHeader = {
            extern "C" fn __southbound_root_module() -> $crate::abi::__private::RootModuleResult {
                $crate::abi::__private::__call_root_module_loader(
                    $crate::abi::root_module::<$driver>,
                )
            }
            // SAFETY: the constructor returns a `DriverModRef`, the module type given here.
            unsafe {
                $crate::abi::__private::LibHeader::from_constructor::<$crate::abi::DriverModRef>(
                    __southbound_root_module,
                    $crate::abi::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
