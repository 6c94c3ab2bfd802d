//! What worker isolation costs:
//! - `empty_call/<isolation>`: round trip of a call that does nothing
//!   (misbehaving-driver's `discover_pools` with behaviour `ok`: no I/O, an
//!   empty answer), in-process and through a worker;
//! - `worker_start/memory_cgroup=<bool>`: spawning a worker for hello-driver
//!   up to its handshake (process start, library load, DriverInfo), with a
//!   memory cgroup of its own (made and removed per worker) and with an
//!   address-space limit; the fence in force is printed;
//! - `restart_after_crash` (printed): from a call that segfaults the worker to
//!   a new worker serving, with the restart backoff pinned to 1 ms (in
//!   production the first restart waits 200 ms, doubling per crash up to 30 s);
//! - `largest_answer` (printed): the host's peak memory growth (`VmHWM`)
//!   while a worker sends the largest answer the default `max_answer_mib`
//!   (64) allows (misbehaving-driver's `big-answer:63`: 63 MiB of text, the
//!   frame just under 64 MiB), and while one claims a 1 GiB frame
//!   (`huge-length`, refused unread).
//!
//! The in-process/worker ratio of a full ScaleIO discovery is in `benches/scaleio.rs`.
//!
//! Run: `cargo bench -p southbound-host --bench isolation`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use southbound_host::catalog::Catalog;
use southbound_host::isolation::Driver;
use southbound_host::isolation::{
    DriverExt, DriverSettings, DriverStatus, Isolation, WorkerDriver,
};
use southbound_sdk::{CallContext, StorageProvider, StorageSystem};

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let ok = StorageProvider {
        host: "ok".into(),
        ..StorageProvider::default()
    };
    let system = StorageSystem::default();

    let mut group = criterion.benchmark_group("empty_call");
    for isolation in [Isolation::InProcess, Isolation::Worker] {
        let catalog = runtime.block_on(support::catalog(plugins.path(), isolation));
        let driver = catalog.driver("misbehaving").expect("driver");
        group.bench_function(BenchmarkId::from_parameter(isolation), |b| {
            b.iter(|| {
                let ctx = CallContext::with_timeout("bench", Duration::from_secs(10));
                let pools = runtime
                    .block_on(driver.discover_pools(ctx, &ok, &system))
                    .expect("empty call");
                assert!(pools.is_empty());
            })
        });
        runtime.block_on(catalog.shutdown());
    }
    group.finish();

    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_southbound"));
    let hello = plugins.path().join("libhello_driver.so");
    let mut group = criterion.benchmark_group("worker_start");
    for memory_cgroup in [true, false] {
        let settings = DriverSettings {
            memory_cgroup,
            ..DriverSettings::default()
        };
        let start_one = || {
            runtime
                .block_on(WorkerDriver::start(exe, &hello, settings.clone()))
                .expect("worker starts")
        };
        let probe = start_one();
        let fence = probe.memory_limit().expect("a worker's memory limit");
        runtime.block_on(probe.retire());
        println!("worker_start/memory_cgroup={memory_cgroup}: {fence}");
        group.bench_function(BenchmarkId::new("memory_cgroup", memory_cgroup), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let driver = start_one();
                    total += start.elapsed();
                    runtime.block_on(driver.retire());
                }
                total
            })
        });
    }
    group.finish();

    let mut policy = support::policy(DriverSettings::default());
    // Backoff pinned to 1 ms: consecutive crashes would otherwise double it
    // (that escalation is the point in production, not what is measured here).
    policy.defaults.restart_backoff = Duration::from_millis(1);
    policy.defaults.restart_backoff_max = Duration::from_millis(1);
    policy.defaults.crash_loop_limit = 1000;
    let catalog = runtime
        .block_on(Catalog::load(plugins.path(), policy))
        .expect("catalog");
    let bad = catalog.driver("misbehaving").expect("driver");
    let segfault = StorageProvider {
        host: "segfault".into(),
        ..StorageProvider::default()
    };
    let mut restarts: Vec<Duration> = (0..15)
        .map(|_| {
            let old = bad.worker_pid();
            let start = Instant::now();
            let ctx = CallContext::with_timeout("bench", Duration::from_secs(10));
            let _ = runtime.block_on(bad.scan_provider(ctx, &segfault));
            while !(bad.status() == DriverStatus::Ready
                && bad.worker_pid().is_some()
                && bad.worker_pid() != old)
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            start.elapsed()
        })
        .collect();
    restarts.sort();
    println!(
        "restart_after_crash (15 crashes, 1 ms backoff): min {:?}  median {:?}  max {:?}",
        restarts[0],
        restarts[restarts.len() / 2],
        restarts[restarts.len() - 1]
    );
    runtime.block_on(catalog.shutdown());

    let catalog = runtime.block_on(support::catalog(plugins.path(), Isolation::Worker));
    let bad = catalog.driver("misbehaving").expect("driver");
    for behaviour in ["big-answer:63", "huge-length"] {
        let before = support::peak_memory_kib();
        let ctx = CallContext::with_timeout("bench", Duration::from_secs(30));
        let provider = StorageProvider {
            host: behaviour.into(),
            ..StorageProvider::default()
        };
        let outcome = runtime.block_on(bad.scan_provider(ctx, &provider));
        println!(
            "largest_answer/{behaviour}: host peak memory grew {} MiB (call {})",
            support::peak_memory_kib().saturating_sub(before) / 1024,
            if outcome.is_ok() {
                "answered"
            } else {
                "refused"
            }
        );
    }
    runtime.block_on(catalog.shutdown());
    criterion.final_summary();
}
