//! ScaleIO discovery against the simulator's `large` topology (8 protection
//! domains, 64 pools, 512 SDSs, 2048 SDCs, 4096 devices), HTTPS with the
//! simulator's certificate pinned:
//! - `discovery_large/<isolation>/<latency>/<n>-at-once`: one full discovery
//!   cycle (scan, then every system's details, pools, ports, hosts and
//!   capability definitions) with the driver in-process and in a worker
//!   process: one system at a time and as many at once as the controller
//!   runs jobs (`max_parallel_jobs`, 4), with 0 ms of injected latency per
//!   request, and 20 ms at the controller's width; the requests per cycle
//!   are printed (from the simulator's counters);
//! - `discovery_large_paired/<n>-at-once/<case>` (printed, not a criterion
//!   group): full cycles in-process and in a worker taken in turns, one
//!   system and four at a time; the medians and the median ratio are
//!   robust to a shared machine's slow spells, which skew two groups
//!   measured one after the other; then the same with the simulator's
//!   serving time (approximated by a plain-HTTP GET of the bulk inventory,
//!   timed in each round) taken out of both modes: the driver and the
//!   channel alone. Every system of `large` reports the same 2,048 hosts,
//!   and a worker's host decodes a host list that comes back byte for byte
//!   only once (`AnswerCache`): case `unchanged` is a rediscovery of an
//!   unchanged gateway (no list decoded), case `other-provider-between`
//!   has the driver discover another gateway (`small`) just before, so the
//!   cycle's first list is decoded and the other seven are shared;
//! - `discovery_large_calls/<isolation>/<call>`: each call of one system's
//!   discovery after the scan (the driver answers from what the scan
//!   fetched, so no HTTP), in-process and in a worker: what isolation adds to
//!   each kind of call, with less noise than a whole cycle (the same host
//!   list again and again: in a worker it is encoded, sent and compared,
//!   not decoded);
//! - `simulator_bulk_large`: the simulator serving `GET /api/instances` for
//!   `large` over plain HTTP on loopback (the body is rendered once per
//!   inventory change, so this is mostly transfer): what a cycle spends in
//!   the simulator rather than in the driver and the channel;
//! - `channel_codec_large/{encode,decode}`: what the worker channel would
//!   add to a full discovery of `large` without sharing: every answer of one
//!   cycle (scan, then each system's details, pools, ports, hosts and
//!   capability definitions) encoded into frames as the worker does, and
//!   each decoded (the host decodes the seven repeated host lists of a cycle
//!   only once); the bytes per cycle are printed.
//!
//! Run: `cargo bench -p southbound-host --bench scaleio`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use scaleio_simulator::{Faults, SimConfig, Simulator, TopologySpec};
use southbound_host::discovery::discover_provider;
use southbound_host::isolation::protocol::{encode, read_frame, WorkerMessage};
use southbound_host::isolation::{Driver, DriverRequest, DriverResponse, Isolation};
use southbound_host::service::ControllerSettings;
use southbound_sdk::{CallContext, Secret, StorageProvider, StorageSystem};

/// The calls of one system's discovery after the scan, in CoprHD's order.
fn system_requests(provider: &StorageProvider, system: &StorageSystem) -> [DriverRequest; 5] {
    let (provider, system) = (provider.clone(), system.clone());
    [
        DriverRequest::DiscoverSystem {
            provider: provider.clone(),
            system: system.clone(),
        },
        DriverRequest::DiscoverPools {
            provider: provider.clone(),
            system: system.clone(),
        },
        DriverRequest::DiscoverPorts {
            provider: provider.clone(),
            system: system.clone(),
        },
        DriverRequest::DiscoverHostComponents {
            provider: provider.clone(),
            system: system.clone(),
        },
        DriverRequest::CapabilityDefinitions { provider, system },
    ]
}

/// One call's answer; the bench fails on an error.
fn call(
    runtime: &tokio::runtime::Runtime,
    driver: &dyn Driver,
    request: DriverRequest,
) -> DriverResponse {
    let ctx = CallContext::with_timeout("bench", Duration::from_secs(120));
    runtime.block_on(driver.call(ctx, request)).expect("answer")
}

/// The systems a scan of `provider` finds.
fn scanned_systems(
    runtime: &tokio::runtime::Runtime,
    driver: &dyn Driver,
    provider: &StorageProvider,
) -> (DriverResponse, Vec<StorageSystem>) {
    let scan = call(
        runtime,
        driver,
        DriverRequest::ScanProvider {
            provider: provider.clone(),
        },
    );
    let DriverResponse::ScanProvider(scanned) = &scan else {
        panic!("not a scan: {scan:?}");
    };
    let systems = scanned.systems.to_vec();
    (scan, systems)
}

/// Every answer of one full discovery cycle, as the worker's reply messages.
fn cycle_answers(
    runtime: &tokio::runtime::Runtime,
    driver: &dyn Driver,
    provider: &StorageProvider,
) -> Vec<WorkerMessage> {
    let (scan, systems) = scanned_systems(runtime, driver, provider);
    let mut answers = vec![scan];
    for system in &systems {
        answers.extend(
            system_requests(provider, system)
                .into_iter()
                .map(|request| call(runtime, driver, request)),
        );
    }
    answers
        .into_iter()
        .enumerate()
        .map(|(id, answer)| WorkerMessage::Reply {
            id: id as u64,
            result: Ok(answer),
        })
        .collect()
}

/// `discovery_large_calls/<isolation>/<call>` (see the module comment).
fn each_call(
    criterion: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    driver: &dyn Driver,
    provider: &StorageProvider,
    isolation: Isolation,
) {
    let (_, systems) = scanned_systems(runtime, driver, provider);
    let system = systems.first().expect("a system");
    let mut group = criterion.benchmark_group("discovery_large_calls");
    group.measurement_time(Duration::from_secs(3));
    for request in system_requests(provider, system) {
        group.bench_function(
            BenchmarkId::new(isolation.to_string(), request.name()),
            |b| b.iter(|| call(runtime, driver, request.clone())),
        );
    }
    group.finish();
}

/// `channel_codec_large/{encode,decode}` (see the module comment).
fn channel_codec(
    criterion: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    driver: &dyn Driver,
    provider: &StorageProvider,
) {
    let answers = cycle_answers(runtime, driver, provider);
    let encode_all = || -> Vec<Vec<u8>> {
        answers
            .iter()
            .map(|a| encode(a, usize::MAX).expect("encode"))
            .collect()
    };
    let frames = encode_all();
    println!(
        "channel_codec_large: {} frames, {} bytes per full discovery cycle",
        frames.len(),
        frames.iter().map(Vec::len).sum::<usize>()
    );
    let mut group = criterion.benchmark_group("channel_codec_large");
    group.bench_function("encode", |b| b.iter(encode_all));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for frame in &frames {
                read_frame::<WorkerMessage>(&mut frame.as_slice(), usize::MAX)
                    .expect("decode")
                    .expect("a frame");
            }
        })
    });
    group.finish();
}

/// One full discovery cycle, `parallel` systems at a time; the bench fails
/// on an error.
fn full_cycle(
    runtime: &tokio::runtime::Runtime,
    driver: &std::sync::Arc<dyn Driver>,
    provider: &StorageProvider,
    parallel: usize,
) {
    let cycle = discover_provider(driver, provider, Duration::from_secs(120), parallel);
    runtime.block_on(cycle).expect("discovery");
}

/// `discovery_large_paired`: full cycles in-process and in a worker taken
/// in turns, so that a slow spell of a shared machine weighs on both modes
/// alike (each timed cycle follows an untimed one of the same mode, as in a
/// criterion group); prints the medians and the median of each round's
/// ratio, then the same with the simulator's serving time taken out of both
/// modes: each round also times `serve_bulk`, a plain-HTTP GET of the bulk
/// inventory (the simulator's serving plus the client's receiving, without
/// the TLS the cycles use: an approximation of the simulator's share). In
/// case `other-provider-between`, a cycle of `other` (untimed) comes
/// between the untimed cycle and the timed one, in both modes.
fn paired_cycles(
    runtime: &tokio::runtime::Runtime,
    plugins: &std::path::Path,
    provider: &StorageProvider,
    other: &StorageProvider,
    serve_bulk: &dyn Fn(),
) {
    const ROUNDS: usize = 40;
    let catalogs = [Isolation::InProcess, Isolation::Worker]
        .map(|isolation| runtime.block_on(support::catalog(plugins, isolation)));
    let drivers = catalogs
        .each_ref()
        .map(|catalog| catalog.driver("scaleio").expect("scaleio driver"));
    for driver in &drivers {
        full_cycle(runtime, driver, provider, 1); // log in once
        full_cycle(runtime, driver, other, 1);
    }
    let timed = |before: &dyn Fn(), work: &dyn Fn()| {
        work(); // warm, as back-to-back cycles are
        before();
        let started = std::time::Instant::now();
        work();
        started.elapsed().as_secs_f64() * 1e3
    };
    for parallel in [1, ControllerSettings::default().max_parallel_jobs] {
        for case in ["unchanged", "other-provider-between"] {
            // [in-process, worker, serving]
            let rounds: Vec<[f64; 3]> = (0..ROUNDS)
                .map(|_| {
                    let [in_process, worker] = drivers.each_ref().map(|driver| {
                        let before = || {
                            if case != "unchanged" {
                                full_cycle(runtime, driver, other, 1);
                            }
                        };
                        timed(&before, &|| full_cycle(runtime, driver, provider, parallel))
                    });
                    [in_process, worker, timed(&|| {}, serve_bulk)]
                })
                .collect();
            let column = |i: usize| support::median(rounds.iter().map(|r| r[i]).collect());
            println!(
                "discovery_large_paired/{parallel}-at-once/{case}: in-process {:.1} ms, worker {:.1} ms, worker/in-process {:.2}; without the simulator's serving ({:.1} ms): in-process {:.1} ms, worker {:.1} ms, worker/in-process {:.2} (medians of {ROUNDS} rounds taken in turns)",
                column(0),
                column(1),
                support::median(rounds.iter().map(|r| r[1] / r[0]).collect()),
                column(2),
                support::median(rounds.iter().map(|r| r[0] - r[2]).collect()),
                support::median(rounds.iter().map(|r| r[1] - r[2]).collect()),
                support::median(rounds.iter().map(|r| (r[1] - r[2]) / (r[0] - r[2])).collect()),
            );
        }
    }
    for catalog in catalogs {
        runtime.block_on(catalog.shutdown());
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();

    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let sim = runtime
        .block_on(Simulator::start(SimConfig {
            topology: TopologySpec::large(),
            ..SimConfig::default()
        }))
        .expect("simulator");
    let provider_of = |sim: &Simulator| StorageProvider {
        host: "127.0.0.1".into(),
        port: sim.addr().port(),
        username: scaleio_simulator::DEFAULT_USERNAME.into(),
        password: Secret::new(scaleio_simulator::DEFAULT_PASSWORD),
        use_ssl: true,
        ca_certificate_pem: sim.cert_pem().map(Into::into).into(),
        ..StorageProvider::default()
    };
    let provider = provider_of(&sim);
    let small = runtime
        .block_on(Simulator::start(SimConfig::default()))
        .expect("simulator");

    let plain = runtime
        .block_on(Simulator::start(SimConfig {
            tls: false,
            topology: TopologySpec::large(),
            ..SimConfig::default()
        }))
        .expect("simulator");
    let client = reqwest::Client::new();
    let base = plain.base_url();
    let token: String = runtime.block_on(async {
        client
            .get(format!("{base}/api/login"))
            .basic_auth(
                scaleio_simulator::DEFAULT_USERNAME,
                Some(scaleio_simulator::DEFAULT_PASSWORD),
            )
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("token")
    });
    let fetch = || {
        runtime.block_on(async {
            client
                .get(format!("{base}/api/instances"))
                .basic_auth("bench", Some(&token))
                .send()
                .await
                .expect("bulk")
                .bytes()
                .await
                .expect("body")
        })
    };
    paired_cycles(
        &runtime,
        plugins.path(),
        &provider,
        &provider_of(&small),
        &|| {
            fetch();
        },
    );
    for isolation in [Isolation::InProcess, Isolation::Worker] {
        let mut group = criterion.benchmark_group("discovery_large");
        let catalog = runtime.block_on(support::catalog(plugins.path(), isolation));
        let driver = catalog.driver("scaleio").expect("scaleio driver");
        let cycle = |parallel: usize| full_cycle(&runtime, &driver, &provider, parallel);
        cycle(1); // log in once, as a long-running host would have
        let controller = ControllerSettings::default().max_parallel_jobs;
        for (latency_ms, parallel) in [(0u64, 1), (0, controller), (20, controller)] {
            sim.state()
                .set_faults(Faults {
                    latency_ms,
                    ..Faults::default()
                })
                .expect("faults");
            let before = sim.state().stats().requests_total;
            cycle(parallel);
            let per_cycle = sim.state().stats().requests_total - before;
            let id = format!("{latency_ms}ms/{parallel}-at-once");
            println!("discovery_large/{isolation}/{id}: {per_cycle} HTTP requests per full cycle (after the first login)");
            group.bench_function(BenchmarkId::new(isolation.to_string(), id), |b| {
                b.iter(|| cycle(parallel))
            });
        }
        group.finish();
        sim.state().set_faults(Faults::default()).expect("faults");
        each_call(
            &mut criterion,
            &runtime,
            driver.as_ref(),
            &provider,
            isolation,
        );
        runtime.block_on(catalog.shutdown());
    }

    let catalog = runtime.block_on(support::catalog(plugins.path(), Isolation::InProcess));
    let driver = catalog.driver("scaleio").expect("scaleio driver");
    channel_codec(&mut criterion, &runtime, driver.as_ref(), &provider);
    runtime.block_on(catalog.shutdown());

    println!(
        "simulator_bulk_large: {} bytes per GET /api/instances",
        fetch().len()
    );
    criterion.bench_function("simulator_bulk_large", |b| b.iter(fetch));
    criterion.final_summary();
}
