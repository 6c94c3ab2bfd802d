//! Costs of the plugin boundary, measured on the real hello-driver cdylib:
//! - `load_plugin`: open a driver file the process has not mapped before
//!   (dlopen, header and SDK-version check, layout check, instantiation,
//!   DriverInfo), i.e. what the host pays per file at start;
//! - `ports_10k_one_call`: one `discover_ports` call that moves 10,000
//!   ports across the boundary (the driver parses its array file, builds
//!   the ports, and the host receives them).
//!
//! Run: `cargo bench -p southbound-host --bench boundary`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use southbound_host::isolation::{DriverExt, Isolation};
use southbound_host::loader::load_library;
use southbound_sdk::{CallContext, Secret, StorageProvider, StorageSystem};

/// Loads `LOADS` fresh copies of hello-driver and prints min / median / max.
///
/// Not a criterion loop: criterion picks its own iteration count, and every
/// load maps a library that is never unloaded (abi_stable's rule), each with
/// its own thread-local keys; a few hundred loads exhaust glibc's 1024 TLS
/// keys ("out of TLS keys"). A host loads each file once, so a fixed sample of
/// fresh files is the honest measurement.
fn load_plugin() {
    const LOADS: usize = 30;
    let source = support::plugin_path("hello-driver");
    let scratch = tempfile::tempdir().expect("temp dir");
    let paths: Vec<_> = (0..LOADS)
        .map(|i| {
            // A fresh path per load: dlopen of an already-mapped file is a
            // refcount bump, not a load.
            let path = scratch.path().join(format!("libhello_{i}.so"));
            std::fs::copy(&source, &path).expect("copy plugin");
            path
        })
        .collect();
    let mut times: Vec<Duration> = paths
        .iter()
        .map(|path| {
            let start = Instant::now();
            load_library(path).expect("hello-driver loads");
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "load_plugin ({LOADS} fresh files): min {:?}  median {:?}  max {:?}",
        times[0],
        times[LOADS / 2],
        times[LOADS - 1]
    );
}

fn ports_10k_one_call(c: &mut Criterion) {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().expect("temp dir");
    let array = support::hello_array(data.path(), 10_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let catalog = runtime.block_on(support::catalog(plugins.path(), Isolation::InProcess));
    let driver = catalog.driver("hello").expect("hello driver");
    let provider = StorageProvider {
        host: array.to_str().expect("utf-8 path").into(),
        username: "admin".into(),
        password: Secret::new("s3cret"),
        ..StorageProvider::default()
    };
    let system = StorageSystem {
        native_id: "SYS-1".into(),
        ..StorageSystem::default()
    };
    c.bench_function("ports_10k_one_call", |b| {
        b.iter(|| {
            let ctx = CallContext::with_timeout("bench", Duration::from_secs(60));
            let ports = runtime
                .block_on(driver.discover_ports(ctx, &provider, &system))
                .expect("ports");
            assert_eq!(ports.len(), 10_000);
        })
    });
}

fn main() {
    load_plugin();
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    ports_10k_one_call(&mut criterion);
    criterion.final_summary();
}
