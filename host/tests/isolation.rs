//! Worker isolation: every way a driver can misbehave is contained, the
//! host keeps serving, workers come back, crash loops are quarantined,
//! drivers are upgraded in place, and no worker outlives the host.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use southbound_host::catalog::{Catalog, PluginStatus};
use southbound_host::isolation::{Driver, DriverExt, DriverSettings, DriverStatus, Isolation};
use southbound_sdk::{CallContext, ErrorKind, ProviderScan, Secret, StorageProvider};

fn quick_settings() -> DriverSettings {
    DriverSettings {
        call_timeout: Duration::from_secs(2),
        memory_limit_mib: 256,
        restart_backoff: Duration::from_millis(50),
        restart_backoff_max: Duration::from_millis(400),
        crash_loop_limit: 100,
        shutdown_grace: Duration::from_secs(2),
        ..DriverSettings::default()
    }
}

/// A plugins directory with hello-driver and misbehaving-driver, and the
/// array hello serves as the well-behaved neighbour (4 ports; its file is in
/// the second directory, kept for the test's length).
fn with_a_neighbour() -> (tempfile::TempDir, tempfile::TempDir, String) {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 4)
        .to_string_lossy()
        .into_owned();
    (plugins, data, array)
}

/// The drivers of `plugins` (hello-driver and misbehaving-driver among them)
/// under `settings`: the catalog, hello, and misbehaving.
async fn hello_and_misbehaving(
    plugins: &Path,
    settings: DriverSettings,
) -> (Catalog, Arc<dyn Driver>, Arc<dyn Driver>) {
    let catalog = Catalog::load(plugins, support::policy(settings))
        .await
        .unwrap();
    let hello = catalog.driver("hello").unwrap();
    let bad = catalog.driver("misbehaving").unwrap();
    (catalog, hello, bad)
}

fn provider(host: &str, password: &str) -> StorageProvider {
    StorageProvider {
        host: host.into(),
        username: "admin".into(),
        password: Secret::new(password),
        ..StorageProvider::default()
    }
}

fn ctx(timeout: Duration) -> CallContext {
    CallContext::with_timeout("isolation-test", timeout)
}

async fn scan(
    driver: &Arc<dyn Driver>,
    behaviour: &str,
    timeout: Duration,
) -> southbound_sdk::DriverResult<ProviderScan> {
    driver
        .scan_provider(ctx(timeout), &provider(behaviour, ""))
        .await
}

/// Waits until the driver has a live worker other than `old_pid`.
async fn wait_for_new_worker(driver: &Arc<dyn Driver>, old_pid: Option<u32>) -> u32 {
    let started = Instant::now();
    loop {
        if let (DriverStatus::Ready, Some(pid)) = (driver.status(), driver.worker_pid()) {
            if Some(pid) != old_pid {
                return pid;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no new worker: {:?}",
            driver.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn process_exists(pid: u32) -> bool {
    // A zombie is dead for our purposes. (Not an empty cmdline: a process
    // in the middle of exec shows one too.) The state follows the command
    // name, which may itself hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

async fn wait_gone(pid: u32) {
    let started = Instant::now();
    while process_exists(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "process {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls hello-driver in a loop until stopped; counts successes, fails on any error.
fn keep_calling(
    hello: Arc<dyn Driver>,
    array: String,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let result = hello
                .scan_provider(ctx(Duration::from_secs(10)), &provider(&array, "s3cret"))
                .await;
            assert!(result.is_ok(), "the well-behaved driver failed: {result:?}");
            ok.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_is_contained_and_the_worker_comes_back() {
    let (plugins, _data, array) = with_a_neighbour();
    let (catalog, hello, bad) = hello_and_misbehaving(plugins.path(), quick_settings()).await;
    let host_pid = std::process::id();
    let hello_pid = hello.worker_pid().expect("hello runs in a worker");
    assert_ne!(hello_pid, host_pid);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let neighbour = keep_calling(
        Arc::clone(&hello),
        array.clone(),
        Arc::clone(&stop),
        Arc::clone(&ok),
    );

    // (behaviour, expected kind, text the error must contain, does the worker die?)
    let cases: &[(&str, ErrorKind, &str, bool)] = &[
        (
            "panic",
            ErrorKind::Panicked,
            "misbehaving-driver was asked to panic",
            false,
        ),
        (
            "abort",
            ErrorKind::Internal,
            "killed by signal 6 (SIGABRT)",
            true,
        ),
        (
            "segfault",
            ErrorKind::Internal,
            "killed by signal 11 (SIGSEGV)",
            true,
        ),
        ("exit", ErrorKind::Internal, "exited with code 3", true),
        ("hang", ErrorKind::Timeout, "timed out after 2 s", true),
        (
            "allocate",
            ErrorKind::Internal,
            "ran out of memory (limit 256 MiB)",
            true,
        ),
        ("sleep:30", ErrorKind::Timeout, "deadline", false),
    ];
    for &(behaviour, kind, text, dies) in cases {
        let before = bad.worker_pid().expect("a worker");
        let err = scan(&bad, behaviour, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(err.kind, kind, "{behaviour}: {err}");
        assert!(
            err.message.contains(text),
            "{behaviour}: '{err}' should name '{text}'"
        );
        let after = wait_for_new_worker(&bad, if dies { Some(before) } else { None }).await;
        assert_eq!(
            after != before,
            dies,
            "{behaviour}: worker replaced only when it died"
        );
        let back = scan(&bad, "ok", Duration::from_secs(10))
            .await
            .expect("the worker answers again");
        assert_eq!(back.systems[0].native_id, "m-1");
        if dies {
            // Reaped, not left a zombie; its replacement is another process.
            assert!(
                !std::path::Path::new(&format!("/proc/{before}")).exists(),
                "{behaviour}: worker {before} is gone"
            );
        }
    }

    // A driver that prints to stdout does not corrupt the channel.
    let printed = scan(&bad, "print", Duration::from_secs(10))
        .await
        .expect("prints are only logs");
    assert_eq!(printed.systems[0].native_id, "m-1");

    stop.store(true, Ordering::SeqCst);
    neighbour.await.expect("the neighbour never failed");
    assert!(
        ok.load(Ordering::SeqCst) > 10,
        "the neighbour kept answering"
    );
    assert_eq!(
        hello.worker_pid(),
        Some(hello_pid),
        "the neighbour's worker never restarted"
    );
    catalog.shutdown().await;
}

/// The child pid a `fork` / `spawn` scan reports as its system's name.
fn child_pid(scan: &ProviderScan) -> u32 {
    scan.systems[0]
        .name
        .strip_prefix("child:")
        .and_then(|p| p.parse().ok())
        .expect("a child pid")
}

/// Hostile drivers: none takes the host down, starves it of memory, or
/// leaves processes behind; each cause is named; the well-behaved driver
/// beside them answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_drivers_are_fenced_in() {
    let (plugins, _data, array) = with_a_neighbour();
    let settings = DriverSettings {
        max_answer_mib: 16,
        ..quick_settings()
    };
    let (catalog, hello, bad) = hello_and_misbehaving(plugins.path(), settings).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let neighbour = keep_calling(
        Arc::clone(&hello),
        array.clone(),
        Arc::clone(&stop),
        Arc::clone(&ok),
    );
    let peak_before = support::peak_memory_kib();

    // Children end with their worker, whatever ends it: daemons that left
    // its process group too (its PID namespace ends with it).
    for behaviour in ["fork", "spawn", "daemon"] {
        let worker = wait_for_new_worker(&bad, None).await;
        let child = child_pid(
            &scan(&bad, behaviour, Duration::from_secs(10))
                .await
                .unwrap(),
        );
        assert!(
            process_exists(child),
            "{behaviour}: the child runs while its worker lives"
        );
        let err = scan(&bad, "exit", Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.message.contains("exited with code 3"), "{err}");
        wait_gone(child).await;
        wait_gone(worker).await;
    }

    // (behaviour, call timeout, expected kind, text the error must hold, does the worker die?)
    let long = Duration::from_secs(30);
    let short = Duration::from_secs(2);
    let cases: &[(&str, Duration, ErrorKind, &str, bool)] = &[
        // Its own process group: kill(0) reaches only the worker.
        (
            "kill-group",
            long,
            ErrorKind::Internal,
            "killed by signal 15 (SIGTERM)",
            true,
        ),
        // Seccomp: signals aimed at the host are refused.
        (
            "kill-parent",
            long,
            ErrorKind::Internal,
            "Operation not permitted",
            false,
        ),
        // The memory cgroup counts shared memory too (see
        // `the_memory_limit_holds_for_shared_memory_under_either_fence`).
        (
            "shm",
            long,
            ErrorKind::Internal,
            "ran out of memory (limit 256 MiB) and was killed by signal 9 (SIGKILL)",
            true,
        ),
        // Oversized answers are refused by the worker, naming the setting.
        (
            "big-answer",
            long,
            ErrorKind::Internal,
            "max_answer_mib",
            false,
        ),
        // A broken channel fails the call at once (not at its deadline).
        (
            "junk-frame",
            long,
            ErrorKind::Unavailable,
            "channel broken: a frame that does not decode",
            true,
        ),
        // An answer of junk for a call that waits: that call fails, and
        // the worker is killed.
        (
            "junk-answer",
            long,
            ErrorKind::Unavailable,
            "channel broken: a frame that does not decode",
            true,
        ),
        (
            "huge-length",
            long,
            ErrorKind::Unavailable,
            "channel broken: a frame of 1073741824 bytes is over the limit",
            true,
        ),
        (
            "close-channel",
            long,
            ErrorKind::Internal,
            "channel broken (the driver closed or replaced the worker's channel)",
            true,
        ),
        // A stopped worker is named as stopped.
        (
            "sigstop",
            short,
            ErrorKind::Timeout,
            "the worker was stopped (SIGSTOP)",
            true,
        ),
        // Huge error messages are cut, with a marker.
        (
            "huge-error",
            long,
            ErrorKind::Internal,
            "more bytes dropped]",
            false,
        ),
    ];
    for &(behaviour, timeout, kind, text, dies) in cases {
        let before = wait_for_new_worker(&bad, None).await;
        let err = scan(&bad, behaviour, timeout).await.unwrap_err();
        assert_eq!(err.kind, kind, "{behaviour}: {err}");
        assert!(
            err.message.contains(text),
            "{behaviour}: '{}' should hold '{text}'",
            &err.message[..err.message.len().min(300)]
        );
        assert!(
            err.message.len() < 5000,
            "{behaviour}: an error of {} bytes",
            err.message.len()
        );
        if dies {
            wait_gone(before).await;
            wait_for_new_worker(&bad, Some(before)).await;
        } else {
            assert_eq!(
                bad.worker_pid(),
                Some(before),
                "{behaviour}: the worker lives on"
            );
        }
    }

    // Other workers are out of sight: a driver cannot signal them by pid.
    let hello_worker = hello.worker_pid().expect("hello's worker");
    let err = scan(&bad, &format!("kill-pid:{hello_worker}"), long)
        .await
        .unwrap_err();
    assert!(err.message.contains("No such process"), "{err}");
    assert!(process_exists(hello_worker));
    assert_eq!(hello.worker_pid(), Some(hello_worker));

    // Endless lines and bytes that are not UTF-8 are forwarded, bounded and
    // lossily; forwarding goes on, and prints never break the channel.
    for behaviour in ["endless-line", "non-utf8", "print"] {
        let scanned = scan(&bad, behaviour, long).await;
        assert!(scanned.is_ok(), "{behaviour}: {scanned:?}");
    }

    let grown_mib = support::peak_memory_kib().saturating_sub(peak_before) / 1024;
    assert!(
        grown_mib < 128,
        "the host's peak memory grew by {grown_mib} MiB"
    );
    stop.store(true, Ordering::SeqCst);
    neighbour.await.expect("the neighbour never failed");
    assert!(
        ok.load(Ordering::SeqCst) > 10,
        "the neighbour kept answering"
    );
    catalog.shutdown().await;
}

/// The directory of the memory cgroup of its own that worker `pid` runs in
/// (`southbound-worker-...`), if it runs in one.
fn worker_memory_cgroup(pid: u32) -> Option<std::path::PathBuf> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    southbound_host::isolation::memory::locate(&cgroups, &mountinfo)
        .into_iter()
        .map(|parent| parent.dir)
        .find(|dir| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("southbound-worker-"))
        })
}

/// The memory limit bounds what a worker really uses, shared mappings
/// included, under either fence, and `drivers list` says which is in force:
/// - a memory cgroup of its own (the default where the host can make one, as
///   on the machines CI runs on): the kernel kills the worker at the limit,
///   the cause is named, and the cgroup goes with the worker;
/// - `memory_cgroup = false`: the address-space limit refuses the mapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_holds_for_shared_memory_under_either_fence() {
    let (plugins, _data, array) = with_a_neighbour();
    let long = Duration::from_secs(30);
    for memory_cgroup in [true, false] {
        let settings = DriverSettings {
            memory_cgroup,
            ..quick_settings()
        };
        let (catalog, hello, bad) = hello_and_misbehaving(plugins.path(), settings).await;
        let shown: Vec<Option<String>> = catalog
            .entries()
            .into_iter()
            .map(|entry| entry.memory_limit)
            .collect();
        let worker = bad.worker_pid().expect("a worker");
        let cgroup = worker_memory_cgroup(worker).map(|dir| {
            let limit = ["memory.limit_in_bytes", "memory.max"]
                .iter()
                .find_map(|file| std::fs::read_to_string(dir.join(file)).ok());
            (dir, limit)
        });
        for behaviour in ["shm", "allocate"] {
            let before = wait_for_new_worker(&bad, None).await;
            let err = scan(&bad, behaviour, long).await.unwrap_err();
            let lives = !memory_cgroup && behaviour == "shm";
            let expected = if lives {
                "mmap of 512 MiB shared memory failed: Cannot allocate memory"
            } else {
                "ran out of memory (limit 256 MiB)"
            };
            assert!(
                err.message.contains(expected),
                "{behaviour}, memory_cgroup = {memory_cgroup}: '{err}' should hold '{expected}'"
            );
            if lives {
                assert_eq!(bad.worker_pid(), Some(before), "the worker lives on");
            } else {
                wait_gone(before).await;
            }
        }
        if memory_cgroup {
            assert!(
                shown.iter().all(|s| s
                    .as_deref()
                    .is_some_and(|s| s.starts_with("256 MiB memory (cgroup v"))),
                "{shown:?}"
            );
            // Killed by the kernel at the cgroup's limit, not by malloc failing.
            let err = scan(&bad, "shm", long).await.unwrap_err();
            assert!(err.message.contains("SIGKILL"), "{err}");
            let (cgroup, limit) =
                cgroup.expect("the first worker ran in a memory cgroup of its own");
            assert_eq!(limit.as_deref().map(str::trim), Some("268435456"));
            // Removed once its worker was gone.
            let started = Instant::now();
            while cgroup.exists() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{} is left behind",
                    cgroup.display()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            assert_eq!(
                shown,
                vec![Some("256 MiB address space (RLIMIT_AS)".to_string()); shown.len()]
            );
            assert_eq!(cgroup, None);
        }
        // The well-behaved driver beside it was never touched.
        hello
            .scan_provider(ctx(long), &provider(&array, "s3cret"))
            .await
            .expect("hello answers");
        assert_eq!(hello.restarts(), 0);
        catalog.shutdown().await;
    }
}

/// Without a PID namespace (`pid_namespace = false`, or a kernel that
/// refuses one), other workers are in sight: Landlock's signal scoping is
/// what keeps a driver from signalling them, and only it
/// (`signal_filter = false` lets the signal through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pid_namespace_landlock_keeps_signals_in() {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let long = Duration::from_secs(30);
    for signal_filter in [true, false] {
        let settings = DriverSettings {
            pid_namespace: false,
            signal_filter,
            ..quick_settings()
        };
        let (catalog, hello, bad) = hello_and_misbehaving(plugins.path(), settings).await;
        let hello_worker = wait_for_new_worker(&hello, None).await;
        let containment = bad.containment().expect("a worker's containment");
        let err = scan(&bad, &format!("kill-pid:{hello_worker}"), long)
            .await
            .unwrap_err();
        if signal_filter {
            assert_eq!(
                containment,
                "process group only (no PID namespace: turned off (pid_namespace = false)), signals scoped (Landlock)"
            );
            assert!(err.message.contains("Operation not permitted"), "{err}");
            assert!(process_exists(hello_worker));
            assert_eq!(hello.worker_pid(), Some(hello_worker));
            let err = scan(&bad, "kill-parent", long).await.unwrap_err();
            assert!(err.message.contains("Operation not permitted"), "{err}");
            // A daemon that left the worker's process group still ends with
            // the worker: the host empties the worker's memory cgroup.
            let daemon = child_pid(&scan(&bad, "daemon", long).await.unwrap());
            assert!(process_exists(daemon));
            let err = scan(&bad, "exit", long).await.unwrap_err();
            assert!(err.message.contains("exited with code 3"), "{err}");
            wait_gone(daemon).await;
        } else {
            assert!(
                containment.ends_with("signals not scoped (turned off (signal_filter = false))"),
                "{containment}"
            );
            assert!(err.message.contains("returned 0"), "{err}");
            wait_gone(hello_worker).await;
            wait_for_new_worker(&hello, Some(hello_worker)).await;
        }
        catalog.shutdown().await;
    }
}

#[tokio::test]
async fn a_crash_loop_quarantines_the_driver_until_it_is_replaced() {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let settings = DriverSettings {
        crash_loop_limit: 3,
        crash_loop_window: Duration::from_secs(60),
        ..quick_settings()
    };
    let catalog = Catalog::load(plugins.path(), support::policy(settings))
        .await
        .unwrap();
    let bad = catalog.driver("misbehaving").unwrap();
    for _ in 0..3 {
        if let Some(pid) = bad.worker_pid() {
            let _ = scan(&bad, "segfault", Duration::from_secs(10)).await;
            wait_gone(pid).await;
        }
        // Wait for the restart (or the quarantine).
        let started = Instant::now();
        while matches!(bad.status(), DriverStatus::Restarting { .. })
            && started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let DriverStatus::Quarantined { reason } = bad.status() else {
        panic!("expected quarantine, got {:?}", bad.status());
    };
    assert!(
        reason.contains("died 3 times") && reason.contains("SIGSEGV"),
        "{reason}"
    );
    let err = scan(&bad, "ok", Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(
        err.message.contains("quarantined") && !err.retryable,
        "{err}"
    );
    let entry = catalog
        .entries()
        .into_iter()
        .find(|e| e.path.ends_with("libmisbehaving_driver.so"))
        .unwrap();
    assert!(
        matches!(&entry.status, PluginStatus::Quarantined { reason, .. } if reason.contains("SIGSEGV"))
    );
    let listed = serde_json::to_value(&entry).unwrap();
    assert_eq!(listed["status"], "quarantined");

    // The other driver was never affected.
    let hello = catalog.driver("hello").unwrap();
    assert_eq!(hello.status(), DriverStatus::Ready);

    // Replacing the file lifts the quarantine.
    replace_file(
        &support::plugin_path("upgraded-driver"),
        &plugins.path().join("libmisbehaving_driver.so"),
    );
    catalog.rescan().await.unwrap();
    let fixed = catalog.driver("misbehaving").unwrap();
    assert_eq!(fixed.status(), DriverStatus::Ready);
    assert_eq!(
        scan(&fixed, "ok", Duration::from_secs(10))
            .await
            .unwrap()
            .details
            .provider_version,
        "0.4.0"
    );
    catalog.shutdown().await;
}

/// Installs `source` at `target` the way a deployment does: write beside it, rename over it.
fn replace_file(source: &Path, target: &Path) {
    let staging = target.with_extension("so.new");
    std::fs::copy(source, &staging).unwrap();
    std::fs::rename(&staging, target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_driver_file_and_rescanning_upgrades_it_after_its_calls_finish() {
    let plugins = support::plugins_dir(&["misbehaving-driver"]);
    let catalog = Catalog::load(plugins.path(), support::policy(quick_settings()))
        .await
        .unwrap();
    let old = catalog.driver("misbehaving").unwrap();
    let old_pid = old.worker_pid().unwrap();
    assert_eq!(
        scan(&old, "ok", Duration::from_secs(10))
            .await
            .unwrap()
            .details
            .provider_version,
        "0.3.1"
    );

    // A call in flight on the old version while the file is replaced.
    let in_flight = {
        let old = Arc::clone(&old);
        tokio::spawn(async move { scan(&old, "sleep:1", Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    replace_file(
        &support::plugin_path("upgraded-driver"),
        &plugins.path().join("libmisbehaving_driver.so"),
    );
    let changes = catalog.rescan().await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.contains("upgraded misbehaving-driver 0.3.1 -> misbehaving-driver 0.4.0")),
        "{changes:?}"
    );

    let new = catalog.driver("misbehaving").unwrap();
    assert_eq!(new.info().version, "0.4.0");
    assert_eq!(
        scan(&new, "ok", Duration::from_secs(10))
            .await
            .unwrap()
            .details
            .provider_version,
        "0.4.0"
    );
    assert_ne!(new.worker_pid(), Some(old_pid));
    assert_eq!(
        in_flight.await.unwrap().unwrap().details.provider_version,
        "0.3.1",
        "the old call finished on the old version"
    );
    wait_gone(old_pid).await;
    assert!(
        catalog.rescan().await.unwrap().is_empty(),
        "nothing changed since"
    );
    catalog.shutdown().await;
}

#[tokio::test]
async fn credentials_reach_the_worker_only_over_the_channel() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 1);
    let catalog = Catalog::load(plugins.path(), support::policy(quick_settings()))
        .await
        .unwrap();
    let hello = catalog.driver("hello").unwrap();
    hello
        .scan_provider(
            ctx(Duration::from_secs(10)),
            &provider(array.to_str().unwrap(), "s3cret"),
        )
        .await
        .unwrap();
    let pid = hello.worker_pid().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    for bytes in [&cmdline, &environ] {
        assert!(!String::from_utf8_lossy(bytes).contains("s3cret"));
    }
    assert!(String::from_utf8_lossy(&cmdline).contains("__worker"));
    catalog.shutdown().await;
    wait_gone(pid).await;
}

#[tokio::test]
async fn a_worker_speaking_another_protocol_is_refused_with_both_versions() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-worker");
    std::fs::write(
        &fake,
        r#"#!/usr/bin/env bash
msg='{"type":"ready","protocol":99,"sdk_version":"0.1.0","info":{}}'
len=${#msg}
printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len>>24&255)) $((len>>16&255)) $((len>>8&255)) $((len&255)))" >&3
printf '%s' "$msg" >&3
sleep 30
"#,
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut policy = support::policy(quick_settings());
    policy.worker_exe = fake;
    let catalog = Catalog::load(plugins.path(), policy).await.unwrap();
    let entries = catalog.entries();
    let PluginStatus::Refused {
        message: reason, ..
    } = &entries[0].status
    else {
        panic!("{:?}", entries[0].status);
    };
    assert_eq!(
        reason,
        &format!(
            "the worker speaks channel protocol 99; this host speaks {}",
            southbound_host::isolation::protocol::PROTOCOL_VERSION
        )
    );
}

/// `serve` on a fresh SQLite data directory (returned: it must outlive the host).
fn serve(plugins: &Path) -> (std::process::Child, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_southbound"))
        .args(["serve", "--json", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(plugins)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("DATABASE_URL")
        .env("SOUTHBOUND_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, data)
}

/// Reads `serve --json`'s next driver list (skipping its other lines).
fn next_listing(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Vec<serde_json::Value> {
    loop {
        let line = lines.next().expect("serve printed a listing").unwrap();
        if line.starts_with('[') {
            return serde_json::from_str::<Vec<serde_json::Value>>(&line).unwrap();
        }
    }
}

fn worker_pid_of(listing: &[serde_json::Value], name: &str) -> u32 {
    let entry = listing.iter().find(|e| e["info"]["name"] == name).unwrap();
    entry["worker_pid"].as_u64().unwrap() as u32
}

#[tokio::test]
async fn killing_the_host_leaves_no_worker_running() {
    use std::io::BufRead;
    let plugins = support::plugins_dir(&["hello-driver", "scaleio-driver", "misbehaving-driver"]);
    let (mut host, _data) = serve(plugins.path());
    let mut lines = std::io::BufReader::new(host.stdout.take().unwrap()).lines();
    let listing = next_listing(&mut lines);
    let workers: Vec<u32> = ["hello-driver", "scaleio-driver", "misbehaving-driver"]
        .iter()
        .map(|n| worker_pid_of(&listing, n))
        .collect();
    for &pid in &workers {
        assert!(process_exists(pid));
    }
    host.kill().unwrap(); // SIGKILL: no chance to clean up
    host.wait().unwrap();
    for pid in workers {
        wait_gone(pid).await;
    }

    // A one-shot command killed mid-call: the daemon its driver started (in
    // a session of its own) ends with it.
    let data = tempfile::tempdir().unwrap();
    let pids = data.path().join("pids");
    let password = data.path().join("pw");
    std::fs::write(&password, "x\n").unwrap();
    let mut probe = Command::new(env!("CARGO_BIN_EXE_southbound"))
        .args([
            "probe",
            "--type",
            "misbehaving",
            "--username",
            "u",
            "--plugins",
        ])
        .arg(plugins.path())
        .arg("--host")
        .arg(format!("daemon-and-hang:{}", pids.display()))
        .arg("--password-file")
        .arg(&password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let written = loop {
        match std::fs::read_to_string(&pids) {
            Ok(text) if text.contains(' ') => break text,
            _ => {
                assert!(started.elapsed() < Duration::from_secs(30), "no daemon");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (worker, daemon) = written.split_once(' ').unwrap();
    let (worker, daemon): (u32, u32) = (worker.parse().unwrap(), daemon.parse().unwrap());
    assert!(process_exists(worker) && process_exists(daemon));
    probe.kill().unwrap();
    probe.wait().unwrap();
    wait_gone(worker).await;
    wait_gone(daemon).await;
}

#[tokio::test]
async fn serve_upgrades_on_sighup_and_stops_workers_on_sigterm() {
    use std::io::BufRead;
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let (mut host, _data) = serve(plugins.path());
    let host_pid = host.id();
    let mut lines = std::io::BufReader::new(host.stdout.take().unwrap()).lines();
    let before = next_listing(&mut lines);
    let old_worker = worker_pid_of(&before, "misbehaving-driver");
    let hello_worker = worker_pid_of(&before, "hello-driver");

    replace_file(
        &support::plugin_path("upgraded-driver"),
        &plugins.path().join("libmisbehaving_driver.so"),
    );
    // SAFETY: signals a child process this test started.
    unsafe { libc::kill(host_pid as i32, libc::SIGHUP) };
    let after = next_listing(&mut lines);
    let upgraded = after
        .iter()
        .find(|e| e["info"]["name"] == "misbehaving-driver")
        .unwrap();
    assert_eq!(upgraded["info"]["version"], "0.4.0");
    assert_ne!(worker_pid_of(&after, "misbehaving-driver"), old_worker);
    assert_eq!(
        worker_pid_of(&after, "hello-driver"),
        hello_worker,
        "untouched drivers keep their worker"
    );
    wait_gone(old_worker).await;
    assert_eq!(host.try_wait().unwrap(), None, "same host process");

    // SAFETY: as above.
    unsafe { libc::kill(host_pid as i32, libc::SIGTERM) };
    let status = host.wait().unwrap();
    assert!(status.success(), "{status}");
    for pid in [hello_worker, worker_pid_of(&after, "misbehaving-driver")] {
        wait_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_from_outside_fails_its_calls_with_the_cause() {
    let plugins = support::plugins_dir(&["misbehaving-driver"]);
    let settings = DriverSettings {
        call_timeout: Duration::from_secs(60),
        // No restart during the test: the state in between is what is checked.
        restart_backoff: Duration::from_secs(30),
        restart_backoff_max: Duration::from_secs(30),
        ..quick_settings()
    };
    let catalog = Catalog::load(plugins.path(), support::policy(settings))
        .await
        .unwrap();
    let bad = catalog.driver("misbehaving").unwrap();
    let pid = bad.worker_pid().unwrap();
    let in_flight = {
        let bad = Arc::clone(&bad);
        tokio::spawn(async move { scan(&bad, "sleep:20", Duration::from_secs(60)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SAFETY: kills the worker this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let err = in_flight.await.unwrap().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Internal,
        "the cause, not a timeout: {err}"
    );
    assert!(
        err.message.contains("killed by signal 9 (SIGKILL)"),
        "{err}"
    );
    let DriverStatus::Restarting { last_crash } = bad.status() else {
        panic!("{:?}", bad.status());
    };
    assert!(last_crash.contains("SIGKILL"), "{last_crash}");
    let err = scan(&bad, "ok", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(
        err.message.contains("no worker was ready") && err.message.contains("SIGKILL"),
        "{err}"
    );
    catalog.shutdown().await;
}

/// A driver that hangs while loading is refused when its load timeout
/// expires (its worker gone, or in-process its loading thread left behind);
/// the drivers beside it load (in parallel) and answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_hanging_at_load_is_refused_and_the_others_serve() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let hanging = plugins.path().join("libhang_on_load.so");
    std::fs::copy(support::plugin_path("misbehaving-driver"), &hanging).unwrap();
    for (isolation, refusal) in [
        (
            Isolation::Worker,
            "the worker did not finish loading the driver within 2 s",
        ),
        (
            Isolation::InProcess,
            "did not finish loading within 2 s (in-process: its loading thread is left behind until the host exits)",
        ),
    ] {
        let settings = DriverSettings {
            isolation,
            handshake_timeout: Duration::from_secs(2),
            ..quick_settings()
        };
        let catalog = Catalog::load(plugins.path(), support::policy(settings))
            .await
            .unwrap();
        let entries = catalog.entries();
        let hang = entries
            .iter()
            .find(|e| e.path == hanging)
            .expect("the hanging file is listed");
        let PluginStatus::Refused { message, .. } = &hang.status else {
            panic!("{isolation}: {:?}", hang.status);
        };
        assert_eq!(message, refusal, "{isolation}");
        let hello = catalog.driver("hello").expect("hello-driver serves");
        let data = tempfile::tempdir().unwrap();
        let array = support::hello_array(data.path(), 2);
        hello
            .scan_provider(
                ctx(Duration::from_secs(10)),
                &provider(&array.to_string_lossy(), "s3cret"),
            )
            .await
            .expect("hello answers");
        wait_no_worker_of(&hanging).await;
        catalog.shutdown().await;
    }
}

/// Waits until no process runs a worker for `file` (its command line names it).
async fn wait_no_worker_of(file: &Path) {
    let name = file.to_string_lossy().into_owned();
    let started = Instant::now();
    loop {
        let left: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&name))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `probe` needs one driver: it does not start drivers the type cache says
/// serve other types, and does not wait on a driver hanging while loading
/// (whose load timeout here is ten minutes: waiting on it would hang the test).
#[tokio::test]
async fn probe_starts_only_the_driver_it_needs_and_waits_on_no_other() {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    // Bytes of its own: not a copy of a file whose types are known.
    let hanging = plugins.path().join("libhang_on_load.so");
    let mut bytes = std::fs::read(support::plugin_path("misbehaving-driver")).unwrap();
    bytes.extend_from_slice(b"and a tail of its own");
    std::fs::write(&hanging, bytes).unwrap();
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 2);
    let password = data.path().join("pw");
    std::fs::write(&password, "s3cret\n").unwrap();
    let config = |secs: u64| {
        let file = data.path().join(format!("load-{secs}.toml"));
        std::fs::write(&file, format!("[isolation]\nload_timeout_secs = {secs}\n")).unwrap();
        file
    };
    let southbound = |config: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_southbound"));
        command
            .arg("--config")
            .arg(config)
            .env("XDG_CACHE_HOME", data.path().join("cache"))
            .env("SOUTHBOUND_LOG", "debug")
            .env_remove("DATABASE_URL");
        command
    };

    // `drivers list` loads every file and learns what each serves.
    let listed = southbound(&config(2))
        .args(["drivers", "list", "--plugins"])
        .arg(plugins.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("misbehaving-driver"), "{listing}");
    wait_no_worker_of(&hanging).await;

    let mut probe = southbound(&config(600))
        .args([
            "probe",
            "--type",
            "hello",
            "--username",
            "admin",
            "--plugins",
        ])
        .arg(plugins.path())
        .arg("--host")
        .arg(&array)
        .arg("--password-file")
        .arg(&password)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while probe.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = probe.kill();
            panic!("probe waited on the driver hanging while loading");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = probe.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Storage systems"), "{stdout}");
    let not_started = stderr
        .lines()
        .find(|l| l.contains("not started"))
        .unwrap_or_else(|| panic!("misbehaving-driver was started:\n{stderr}"));
    assert!(
        not_started.contains("libmisbehaving_driver.so"),
        "{not_started}"
    );
    assert!(
        !stderr.contains("driver=misbehaving-driver pid"),
        "misbehaving-driver's worker was started:\n{stderr}"
    );
    // The hanging driver, never loaded, had to be started to learn its type;
    // it was abandoned once hello-driver served.
    wait_no_worker_of(&hanging).await;
}
