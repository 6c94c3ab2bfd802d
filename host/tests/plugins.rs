//! The plugin loader and probe against real cdylibs: the shipped
//! hello-driver and the test fixtures, built by `support`.

mod support;

use std::process::Command;
use std::time::Duration;

use southbound_host::catalog::{Catalog, PluginStatus};
use southbound_host::discovery::discover_provider;
use southbound_host::isolation::{DriverExt, Isolation};
use southbound_host::loader::load_library;

const IN_PROCESS: Isolation = Isolation::InProcess;
use southbound_sdk::{
    CallContext, CapabilityCategory, DriveType, ErrorKind, HostOsType, InitiatorProtocol,
    OperationalStatus, PoolOperationalStatus, ROption, ResourceType, Secret, StorageProvider,
    TransportType, SDK_VERSION,
};

const GIB: u64 = 1024 * 1024;

fn provider(host: &str, password: &str) -> StorageProvider {
    StorageProvider {
        host: host.into(),
        port: 443,
        username: "admin".into(),
        password: Secret::new(password),
        use_ssl: true,
        ..StorageProvider::default()
    }
}

fn refusal(catalog: &Catalog, file_name: &str) -> String {
    let entry = catalog
        .entries()
        .into_iter()
        .find(|e| e.path.file_name().is_some_and(|n| n == file_name))
        .unwrap_or_else(|| panic!("no entry for {file_name}"));
    match entry.status {
        PluginStatus::Refused { message, .. } => message,
        other => panic!("{file_name} is {other:?}"),
    }
}

#[tokio::test]
async fn hello_driver_probe_reads_back_every_field() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 3);
    let catalog = support::catalog(plugins.path(), IN_PROCESS).await;
    let driver = catalog.driver("hello").expect("hello type registered");

    let info = driver.info();
    assert_eq!(info.name, "hello-driver");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.vendor, "Southbound examples");
    assert_eq!(info.sdk_version, SDK_VERSION);
    assert_eq!(info.provider_type, ROption::RSome("hello-file".into()));
    assert_eq!(
        info.storage_system_types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        ["hello"]
    );

    let report = discover_provider(
        &driver,
        &provider(array.to_str().unwrap(), "s3cret"),
        Duration::from_secs(30),
        2,
    )
    .await
    .expect("discovery succeeds");
    assert_eq!(report.systems.len(), 2);
    let alpha = &report.systems[0];
    let s = &alpha.system;
    assert_eq!(
        (
            s.native_id.as_str(),
            s.name.as_str(),
            s.system_type.as_str(),
            s.serial_number.as_str()
        ),
        ("SYS-1", "alpha", "hello", "SYS-1")
    );
    assert_eq!(
        (s.model.as_str(), s.firmware_version.as_str()),
        ("Hello 9000", "3.1.4")
    );
    assert_eq!(
        (s.major_version.as_str(), s.minor_version.as_str()),
        ("3", "1")
    );
    assert!(s.is_supported_version);

    assert_eq!(alpha.pools.len(), 2);
    let fast = &alpha.pools[0];
    assert_eq!(
        (
            fast.native_id.as_str(),
            fast.name.as_str(),
            fast.storage_system_id.as_str()
        ),
        ("p1", "fast", "SYS-1")
    );
    assert_eq!(
        (
            fast.total_capacity_kib,
            fast.free_capacity_kib,
            fast.subscribed_capacity_kib
        ),
        (100 * GIB, 40 * GIB, 150 * GIB)
    );
    assert_eq!(fast.supported_drive_types.as_slice(), &[DriveType::SSD]);
    assert_eq!(fast.resource_type, ResourceType::THIN);
    assert_eq!(fast.operational_status, PoolOperationalStatus::READY);
    assert_eq!(fast.maximum_thin_volume_size_kib, ROption::RSome(100 * GIB));
    let dedup = fast
        .capabilities
        .iter()
        .find(|c| c.definition_uid == "deduplication")
        .unwrap();
    assert_eq!(dedup.value("ENABLED"), Some("true"));
    let tiering = fast
        .capabilities
        .iter()
        .find(|c| c.definition_uid == "autoTieringPolicy")
        .unwrap();
    assert_eq!(
        (tiering.name.as_str(), tiering.value("POLICY_ID")),
        ("gold", Some("gold"))
    );
    assert_eq!(
        tiering.value("PROVISIONING_TYPE"),
        Some("ThinlyProvisioned")
    );
    let slow = &alpha.pools[1];
    assert_eq!(
        slow.supported_drive_types.as_slice(),
        &[DriveType::SATA],
        "drive type names parse case-insensitively"
    );
    assert_eq!(slow.free_capacity_kib, 5 * GIB);
    assert_eq!(slow.operational_status, PoolOperationalStatus::NOT_READY);
    assert_eq!(slow.resource_type, ResourceType::THICK);

    assert_eq!(alpha.ports.len(), 3);
    let p = &alpha.ports[1];
    assert_eq!(
        (p.native_id.as_str(), p.port_network_id.as_str()),
        ("eth1", "10.0.0.1:3260")
    );
    assert_eq!(
        (p.ip_address.as_str(), p.tcp_port, p.ha_zone.as_str()),
        ("10.0.0.1", ROption::RSome(3260), "B")
    );
    assert_eq!(p.transport_type, TransportType::IP);
    assert_eq!(p.operational_status, OperationalStatus::OK);
    assert_eq!(p.storage_system_id, "SYS-1");

    assert_eq!(alpha.host_components.len(), 1);
    let h = &alpha.host_components[0];
    assert_eq!(
        (h.host_name.as_str(), h.native_id.as_str(), h.os_type),
        ("h1", "iqn.2026-11.test:h1", HostOsType::ESX)
    );
    assert_eq!(h.initiators.len(), 1);
    assert_eq!(h.initiators[0].protocol, InitiatorProtocol::ISCSI);
    assert_eq!(h.initiators[0].port, "iqn.2026-11.test:h1");

    let beta = &report.systems[1];
    assert_eq!(
        (
            beta.pools.len(),
            beta.ports.len(),
            beta.host_components.len()
        ),
        (0, 0, 0)
    );

    let uids: Vec<&str> = report
        .capability_definitions
        .iter()
        .map(|d| d.uid.as_str())
        .collect();
    assert_eq!(
        uids,
        ["deduplication", "autoTieringPolicy"],
        "definitions appear once, not once per system"
    );
    assert_eq!(
        report.capability_definitions[1].category,
        CapabilityCategory::STORAGE_PERFORMANCE
    );
}

#[tokio::test]
async fn driver_errors_keep_their_kind() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 1);
    let catalog = support::catalog(plugins.path(), IN_PROCESS).await;
    let driver = catalog.driver("hello").unwrap();
    let ctx = || CallContext::with_timeout("test", Duration::from_secs(10));

    let wrong = driver
        .scan_provider(ctx(), &provider(array.to_str().unwrap(), "nope"))
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::Authentication);
    assert!(
        !wrong.message.contains("nope"),
        "the password never appears in errors: {wrong}"
    );

    let missing = driver
        .scan_provider(ctx(), &provider("/nonexistent/array.json", "x"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::Unavailable);
    assert!(missing.retryable);

    std::fs::write(&array, "{ not json").unwrap();
    let garbage = driver
        .scan_provider(ctx(), &provider(array.to_str().unwrap(), "x"))
        .await
        .unwrap_err();
    assert_eq!(garbage.kind, ErrorKind::Protocol);
}

#[tokio::test]
async fn two_driver_files_load_as_themselves() {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let catalog = support::catalog(plugins.path(), IN_PROCESS).await;
    let hello = catalog.driver("hello").unwrap();
    let misbehaving = catalog.driver("misbehaving").unwrap();
    assert_eq!(hello.info().name, "hello-driver");
    assert_eq!(misbehaving.info().name, "misbehaving-driver");
    assert_eq!(misbehaving.info().version, "0.3.1");

    // And each call reaches its own code.
    let ctx = || CallContext::with_timeout("test", Duration::from_secs(10));
    let scan = misbehaving
        .scan_provider(ctx(), &provider("ok", ""))
        .await
        .unwrap();
    assert_eq!(scan.systems[0].native_id, "m-1");
    let err = hello
        .scan_provider(ctx(), &provider("ok", ""))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Unavailable,
        "hello reads a file named 'ok': {err}"
    );
}

#[tokio::test]
async fn refusals_name_the_file_and_the_exact_reason() {
    for isolation in [Isolation::InProcess, Isolation::Worker] {
        refusals_with(isolation).await;
    }
}

async fn refusals_with(isolation: Isolation) {
    let plugins = support::plugins_dir(&[
        "hello-driver",
        "not-a-driver",
        "future-sdk-driver",
        "misbehaving-driver",
        "upgraded-driver",
    ]);
    std::fs::write(plugins.path().join("x.so"), "this is a text file\n").unwrap();
    std::fs::copy(
        support::plugin_path("hello-driver"),
        plugins.path().join("libzz_second_hello.so"),
    )
    .unwrap();
    std::fs::write(
        plugins.path().join("README.txt"),
        "not a library, not considered",
    )
    .unwrap();

    let catalog = support::catalog(plugins.path(), isolation).await;
    assert_eq!(
        catalog.entries().len(),
        7,
        "every library file gets an entry; README.txt is ignored"
    );
    assert_eq!(
        refusal(&catalog, "x.so"),
        "not a shared library (no ELF header)"
    );
    assert_eq!(
        refusal(&catalog, "libnot_a_driver.so"),
        "not a Southbound driver: the library exports no driver root module"
    );
    assert_eq!(
        refusal(&catalog, "libfuture_sdk_driver.so"),
        format!("built for southbound-sdk 0.2.0; this host runs southbound-sdk {SDK_VERSION} and accepts 0.1.x")
    );
    // A copy of a loaded file is named as such, without being started.
    assert_eq!(
        refusal(&catalog, "libzz_second_hello.so"),
        format!(
            "identical to {}, which is already loaded",
            plugins.path().join("libhello_driver.so").display()
        )
    );
    // Another driver for a served type: the first claimant keeps it; the
    // refused row still says which driver and version it was.
    assert_eq!(
        refusal(&catalog, "libupgraded_driver.so"),
        "storage system type 'misbehaving' is already served by misbehaving-driver 0.3.1"
    );
    let upgraded = catalog
        .entries()
        .into_iter()
        .find(|e| e.path.ends_with("libupgraded_driver.so"))
        .unwrap();
    let PluginStatus::Refused {
        info: Some(info), ..
    } = &upgraded.status
    else {
        panic!("{:?}", serde_json::to_string(&upgraded).unwrap());
    };
    assert_eq!(info.version, "0.4.0");
    assert_eq!(catalog.driver("hello").unwrap().info().name, "hello-driver");
    assert_eq!(catalog.system_types(), ["hello", "misbehaving"]);
    catalog.shutdown().await;
}

#[tokio::test]
async fn a_panic_inside_a_call_is_an_error_and_the_host_goes_on() {
    let plugins = support::plugins_dir(&["hello-driver", "misbehaving-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 1);
    let catalog = support::catalog(plugins.path(), IN_PROCESS).await;
    let misbehaving = catalog.driver("misbehaving").unwrap();
    let ctx = || CallContext::with_timeout("test", Duration::from_secs(10));

    for _ in 0..3 {
        let err = misbehaving
            .scan_provider(ctx(), &provider("panic", ""))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(
            err.message
                .contains("misbehaving-driver was asked to panic"),
            "{err}"
        );
        assert!(err.message.contains("scan_provider"), "{err}");
    }
    // The same driver still answers, and so does its neighbour.
    assert!(misbehaving
        .scan_provider(ctx(), &provider("ok", ""))
        .await
        .is_ok());
    let hello = catalog.driver("hello").unwrap();
    assert!(hello
        .scan_provider(ctx(), &provider(array.to_str().unwrap(), "s3cret"))
        .await
        .is_ok());
}

#[tokio::test]
async fn the_sdk_glue_enforces_the_call_deadline() {
    let plugins = support::plugins_dir(&["misbehaving-driver"]);
    let catalog = support::catalog(plugins.path(), IN_PROCESS).await;
    let driver = catalog.driver("misbehaving").unwrap();
    let ctx = CallContext::with_timeout("deadline-test", Duration::from_millis(300));
    let err = driver
        .scan_provider(ctx, &provider("sleep:30", ""))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(
        err.message.contains("deadline-test"),
        "the error names the request id: {err}"
    );
}

#[test]
fn load_library_rejects_a_missing_file() {
    let Err(reason) = load_library(std::path::Path::new("/nonexistent/libnothing.so")) else {
        panic!("a missing file cannot load");
    };
    assert!(
        matches!(reason, southbound_host::loader::Refusal::Unreadable { .. }),
        "{reason:?}"
    );
    assert!(
        reason.to_string().starts_with("cannot read the file"),
        "{reason}"
    );
}

fn southbound() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_southbound"));
    cmd.env("SOUTHBOUND_LOG", "warn")
        .env_remove("SOUTHBOUND_PLUGINS")
        .env_remove("SOUTHBOUND_CONFIG");
    cmd
}

#[test]
fn cli_drivers_list_reports_status_and_checksum() {
    let plugins = support::plugins_dir(&["hello-driver", "not-a-driver"]);
    let out = southbound()
        .args(["drivers", "list", "--json", "--plugins"])
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let hello = &entries[0];
    assert_eq!(hello["status"], "loaded");
    assert_eq!(hello["info"]["name"], "hello-driver");
    assert_eq!(hello["info"]["sdk_version"], SDK_VERSION);
    let expected_sha =
        southbound_host::loader::file_sha256(&plugins.path().join("libhello_driver.so")).unwrap();
    assert_eq!(hello["sha256"], expected_sha.as_str());
    assert_eq!(entries[1]["status"], "refused");
    assert!(entries[1]["message"]
        .as_str()
        .unwrap()
        .starts_with("not a Southbound driver"));
    assert_eq!(entries[1]["reason"]["code"], "no_root_module");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("libnot_a_driver.so: refused: not a Southbound driver")),
        "one log line names the file and the reason: {stderr}"
    );

    let table = southbound()
        .args(["drivers", "list", "--plugins"])
        .arg(plugins.path())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("hello-driver") && table.contains(&expected_sha),
        "{table}"
    );
}

#[test]
fn cli_probe_prints_the_documented_json_and_fails_with_the_driver_error() {
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().unwrap();
    let array = support::hello_array(data.path(), 2);
    let password = data.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let probe = |password_file: &std::path::Path| {
        southbound()
            .args([
                "probe",
                "--type",
                "hello",
                "--port",
                "1",
                "--username",
                "admin",
                "--json",
                "--plugins",
            ])
            .arg(plugins.path())
            .arg("--host")
            .arg(&array)
            .arg("--password-file")
            .arg(password_file)
            .output()
            .unwrap()
    };

    let out = probe(&password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["capability_definitions", "problems", "systems"]);
    assert_eq!(doc["problems"], serde_json::json!([]));
    let alpha = &doc["systems"][0];
    let mut alpha_keys: Vec<&String> = alpha.as_object().unwrap().keys().collect();
    alpha_keys.sort();
    assert_eq!(alpha_keys, ["host_components", "pools", "ports", "system"]);
    assert_eq!(alpha["system"]["native_id"], "SYS-1");
    assert_eq!(alpha["pools"][0]["total_capacity_kib"], 100 * GIB);
    assert_eq!(
        alpha["pools"][0]["capabilities"][0]["properties"]["ENABLED"][0],
        "true"
    );
    assert_eq!(alpha["ports"].as_array().unwrap().len(), 2);
    assert_eq!(alpha["host_components"][0]["os_type"], "Esx");

    let wrong = data.path().join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let out = probe(&wrong);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scan_provider failed: authentication:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("guess"),
        "no password in the output: {stderr}"
    );
}

/// `probe` discovers up to `--parallel` systems at once (the driver's
/// rendezvous needs all three at once), reports them in scan order, and
/// with too narrow a limit fails with the first system's error.
#[test]
fn cli_probe_discovers_systems_in_parallel_and_reports_them_in_scan_order() {
    let plugins = support::plugins_dir(&["misbehaving-driver"]);
    let data = tempfile::tempdir().unwrap();
    let password = data.path().join("password");
    std::fs::write(&password, "unused\n").unwrap();
    let probe = |port: &str, parallel: &str| {
        southbound()
            .args(["probe", "--type", "misbehaving", "--host", "together:3"])
            .args([
                "--username",
                "admin",
                "--port",
                port,
                "--parallel",
                parallel,
            ])
            .arg("--password-file")
            .arg(&password)
            .args(["--json", "--plugins"])
            .arg(plugins.path())
            .output()
            .unwrap()
    };

    let out = probe("1", "3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["system"]["native_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m-1", "m-2", "m-3"]);

    let out = probe("2", "2");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "discover_system of system 'm-1' failed: internal: at most 2 of 3 systems were being discovered at once"
        ),
        "{stderr}"
    );

    let out = probe("3", "0");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--parallel"), "{stderr}");
}

/// `southbound ... | head`: the reader goes away; the command ends quietly
/// (no panic, no backtrace), and its errors name each cause once.
#[test]
fn cli_output_to_a_closed_pipe_ends_quietly_and_errors_name_causes_once() {
    use std::io::BufRead;
    let plugins = support::plugins_dir(&["hello-driver"]);
    let data = tempfile::tempdir().unwrap();
    // 20,000 ports: far more output than a pipe buffers.
    let array = support::hello_array(data.path(), 20_000);
    let password = data.path().join("pw");
    std::fs::write(&password, "s3cret\n").unwrap();
    let mut child = southbound()
        .args([
            "probe",
            "--isolation",
            "in-process",
            "--type",
            "hello",
            "--plugins",
        ])
        .arg(plugins.path())
        .arg("--host")
        .arg(&array)
        .args(["--username", "admin", "--password-file"])
        .arg(&password)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Storage systems"), "{first}");
    // The reader (our end of the pipe) is gone now.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = southbound()
        .args(["drivers", "list", "--plugins", "/nonexistent/plugins"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "each cause once: {stderr}"
    );
}

/// `drivers list` on an empty directory, on a Rust library built without
/// `crate-type = ["cdylib"]`, and `--strict`.
#[test]
fn cli_drivers_list_explains_what_it_cannot_use() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("libvendor_driver.rlib"), "!<arch>\n").unwrap();
    let out = southbound()
        .args(["drivers", "list", "--plugins"])
        .arg(empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "not strict: {stderr}");
    assert!(stderr.contains("no drivers found in"), "{stderr}");
    assert!(
        stderr.contains("libvendor_driver.rlib is a Rust library, not a driver")
            && stderr.contains("crate-type = [\"cdylib\"]"),
        "{stderr}"
    );
    let out = southbound()
        .args(["drivers", "list", "--strict", "--plugins"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "--strict fails when nothing loads");

    let plugins = support::plugins_dir(&["hello-driver"]);
    let strict = |dir: &std::path::Path| {
        southbound()
            .args(["drivers", "list", "--strict", "--plugins"])
            .arg(dir)
            .output()
            .unwrap()
    };
    assert!(strict(plugins.path()).status.success(), "all loaded");
    std::fs::write(plugins.path().join("junk.so"), "text").unwrap();
    let out = strict(plugins.path());
    assert!(!out.status.success(), "--strict fails on a refused file");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 of 2 driver files refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Logging: `RUST_LOG` is honoured when `SOUTHBOUND_LOG` is not set, a
/// malformed filter is reported, and no colour codes go to a pipe.
#[test]
fn cli_logging_honours_rust_log_and_reports_a_bad_filter() {
    let plugins = tempfile::tempdir().unwrap();
    // A refused file: the catalog logs a warning about it.
    std::fs::write(plugins.path().join("x.so"), "text").unwrap();
    let run = |rust_log: Option<&str>| {
        let mut cmd = southbound();
        cmd.env_remove("SOUTHBOUND_LOG").env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd
            .args(["drivers", "list", "--plugins"])
            .arg(plugins.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let default = run(None);
    assert!(
        default.contains("WARN") && default.contains("refused"),
        "{default}"
    );
    assert!(
        !default.contains('\u{1b}'),
        "no colour codes on a pipe: {default:?}"
    );
    let quiet = run(Some("error"));
    assert!(
        !quiet.contains("WARN"),
        "RUST_LOG=error is honoured: {quiet}"
    );
    let bad = run(Some("bad[[["));
    assert!(
        bad.contains("ignoring a malformed log filter") && bad.contains("RUST_LOG"),
        "{bad}"
    );
}
