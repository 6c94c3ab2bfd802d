//! The ScaleIO driver against the gateway simulator: the mapping for every
//! API version and topology, the constant request cost, and every failure
//! mode the driver must turn into the right error (or recover from).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use scaleio_simulator::stats::pool_capacity;
use scaleio_simulator::{ApiVersion, Faults, SimConfig, Simulator, TopologySpec};
use southbound_host::catalog::Catalog;
use southbound_host::discovery::{discover_provider, DiscoveryReport};
use southbound_host::isolation::{Driver, Isolation};
use southbound_sdk::{
    DriveType, ErrorKind, HostOsType, InitiatorProtocol, OperationalStatus, ROption, ResourceType,
    Secret, StorageProvider, SystemInventory, TransportType,
};

const VERSIONS: [ApiVersion; 3] = [ApiVersion::V2_6, ApiVersion::V3_6, ApiVersion::V4_5];

/// One loaded ScaleIO driver for the whole test binary, as in a long-running
/// host. In-process: each test has its own runtime, and a worker's
/// supervisor lives on the runtime that started it. (Worker isolation is
/// covered by the CLI test below and by `tests/isolation.rs`.)
fn driver() -> Arc<dyn Driver> {
    static CATALOG: OnceLock<(tempfile::TempDir, Catalog)> = OnceLock::new();
    let (_, catalog) = CATALOG.get_or_init(|| {
        std::thread::spawn(|| {
            let dir = support::plugins_dir(&["scaleio-driver"]);
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let catalog = runtime.block_on(support::catalog(dir.path(), Isolation::InProcess));
            (dir, catalog)
        })
        .join()
        .expect("catalog thread")
    });
    catalog.driver("scaleio").expect("scaleio driver loaded")
}

async fn start(version: ApiVersion, topology: TopologySpec) -> Simulator {
    Simulator::start(SimConfig {
        api_version: version,
        topology,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn provider(sim: &Simulator) -> StorageProvider {
    StorageProvider {
        provider_type: "scaleioapi".into(),
        host: "127.0.0.1".into(),
        port: sim.addr().port(),
        username: "admin".into(),
        password: Secret::new(scaleio_simulator::DEFAULT_PASSWORD),
        use_ssl: true,
        ca_certificate_pem: sim.cert_pem().map(Into::into).into(),
        ..StorageProvider::default()
    }
}

async fn discover(
    _sim: &Simulator,
    provider: &StorageProvider,
) -> Result<DiscoveryReport, southbound_sdk::DriverError> {
    discover_provider(&driver(), provider, Duration::from_secs(30), 4)
        .await
        .map_err(|e| e.error)
}

/// Checks a discovery reports exactly the simulator's objects, mapped as documented.
fn assert_matches_simulator(systems: &[SystemInventory], sim: &Simulator) {
    let inv = sim.state().inventory().clone();
    let version = sim.state().config().api_version;
    assert_eq!(
        systems.len(),
        inv.protection_domains.len(),
        "one system per protection domain"
    );
    let fault_sets: HashMap<&str, &str> = inv
        .fault_sets
        .iter()
        .map(|f| (f.id.as_str(), f.name.as_str()))
        .collect();
    for (pd, found) in inv.protection_domains.iter().zip(systems) {
        let s = &found.system;
        assert_eq!(
            (
                s.native_id.as_str(),
                s.name.as_str(),
                s.system_type.as_str()
            ),
            (pd.id.as_str(), pd.name.as_str(), "scaleio")
        );
        assert_eq!(
            s.serial_number,
            format!("{}-{}", inv.system.id, pd.id).as_str()
        );
        let expected_firmware = version
            .system_version_name()
            .rsplit('R')
            .next()
            .unwrap()
            .replace('_', ".");
        assert_eq!(s.firmware_version, expected_firmware.as_str());
        assert!(s.is_supported_version);
        assert_eq!(
            s.model,
            if version == ApiVersion::V2_6 {
                "ScaleIO"
            } else {
                "PowerFlex"
            }
        );

        let pools: Vec<_> = inv
            .pools
            .iter()
            .filter(|p| p.protection_domain_id == pd.id)
            .collect();
        assert_eq!(found.pools.len(), pools.len(), "pools of {}", pd.name);
        for (pool, got) in pools.iter().zip(found.pools.iter()) {
            let c = pool_capacity(&inv, &pool.id);
            let total = (c.max - c.spare) / 2;
            assert_eq!(got.native_id, pool.id.as_str());
            assert_eq!(got.name, pool.name.as_str());
            assert_eq!(got.storage_system_id, pd.id.as_str());
            assert_eq!(
                got.total_capacity_kib, total,
                "usable capacity of {}",
                pool.name
            );
            assert_eq!(
                got.free_capacity_kib,
                c.available_for_allocation(version).min(total)
            );
            assert!(got.free_capacity_kib <= got.total_capacity_kib);
            assert_eq!(
                got.free_capacity_kib % (8 * 1024 * 1024),
                0,
                "free in 8 GiB steps"
            );
            assert_eq!(got.subscribed_capacity_kib, c.primary_vac);
            let fine = version != ApiVersion::V2_6 && pool.data_layout == "FineGranularity";
            assert_eq!(
                got.resource_type,
                if fine {
                    ResourceType::THIN
                } else {
                    ResourceType::THIN_AND_THICK
                }
            );
            let drive = match (version, pool.media_type.as_str()) {
                (ApiVersion::V2_6, _) => DriveType::UNKNOWN,
                (_, "SSD") => DriveType::SSD,
                _ => DriveType::HDD,
            };
            assert_eq!(got.supported_drive_types.as_slice(), &[drive]);
            let uids: Vec<&str> = got
                .capabilities
                .iter()
                .map(|c| c.definition_uid.as_str())
                .collect();
            if version == ApiVersion::V2_6 {
                assert_eq!(uids, ["provisioningType", "zeroPadding"]);
            } else {
                assert_eq!(
                    uids,
                    [
                        "provisioningType",
                        "mediaType",
                        "dataLayout",
                        "volumeCompression",
                        "zeroPadding"
                    ]
                );
                let layout = got
                    .capabilities
                    .iter()
                    .find(|c| c.definition_uid == "dataLayout")
                    .unwrap();
                assert_eq!(layout.value("DATA_LAYOUT"), Some(pool.data_layout.as_str()));
            }
            let zero = got
                .capabilities
                .iter()
                .find(|c| c.definition_uid == "zeroPadding")
                .unwrap();
            assert_eq!(
                zero.value("ENABLED"),
                Some(if pool.zero_padding { "true" } else { "false" })
            );
        }

        let sds: Vec<_> = inv
            .sds
            .iter()
            .filter(|s| s.protection_domain_id == pd.id)
            .collect();
        assert_eq!(
            found.ports.len(),
            sds.len(),
            "one port per SDS of {}",
            pd.name
        );
        for (sds, port) in sds.iter().zip(found.ports.iter()) {
            assert_eq!(
                (port.native_id.as_str(), port.port_network_id.as_str()),
                (sds.id.as_str(), sds.id.as_str())
            );
            assert_eq!(port.transport_type, TransportType::SCALEIO);
            assert_eq!(
                (port.ip_address.as_str(), port.tcp_port),
                (sds.ip.as_str(), ROption::RSome(7072))
            );
            assert_eq!(port.network_id, inv.system.install_id.as_str());
            let zone = sds
                .fault_set_id
                .as_deref()
                .map(|f| fault_sets[f])
                .unwrap_or("");
            assert_eq!(port.ha_zone, zone);
            let ok = sds.mdm_connection_state == "Connected";
            assert_eq!(
                port.operational_status,
                if ok {
                    OperationalStatus::OK
                } else {
                    OperationalStatus::NOT_OK
                }
            );
        }

        assert_eq!(
            found.host_components.len(),
            inv.sdcs.len(),
            "every SDC, for every system"
        );
        for (sdc, host) in inv.sdcs.iter().zip(found.host_components.iter()) {
            assert_eq!(host.native_id, sdc.guid.as_str());
            assert_eq!(host.host_name, sdc.name.as_deref().unwrap_or(&sdc.ip));
            assert_eq!(host.os_type, sdc.os_type.parse::<HostOsType>().unwrap());
            let ok = sdc.mdm_connection_state == "Connected";
            assert_eq!(
                host.operational_status,
                if ok {
                    OperationalStatus::OK
                } else {
                    OperationalStatus::NOT_OK
                }
            );
            assert_eq!(host.initiators.len(), 1);
            assert_eq!(host.initiators[0].protocol, InitiatorProtocol::SCALEIO);
            assert_eq!(host.initiators[0].port, sdc.id.as_str());
        }
    }
}

/// `southbound probe --type scaleio --json` for every API version and both
/// topologies reports exactly the simulator's objects, and costs the same
/// number of requests for `small` and `large`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_probe_matches_the_simulator_for_every_version_and_topology() {
    let plugins = support::plugins_dir(&["scaleio-driver"]);
    let files = tempfile::tempdir().unwrap();
    let password = files.path().join("password");
    std::fs::write(
        &password,
        format!("{}\n", scaleio_simulator::DEFAULT_PASSWORD),
    )
    .unwrap();
    for version in VERSIONS {
        let mut costs = Vec::new();
        for (name, topology) in [
            ("small", TopologySpec::small()),
            ("large", TopologySpec::large()),
        ] {
            let sim = start(version, topology).await;
            let cert = files.path().join(format!("{version}-{name}.pem"));
            std::fs::write(&cert, sim.cert_pem().unwrap()).unwrap();
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_southbound"));
            cmd.env("SOUTHBOUND_LOG", "warn")
                .args([
                    "probe",
                    "--type",
                    "scaleio",
                    "--host",
                    "127.0.0.1",
                    "--username",
                    "admin",
                    "--json",
                ])
                .arg("--port")
                .arg(sim.addr().port().to_string())
                .arg("--plugins")
                .arg(plugins.path())
                .arg("--password-file")
                .arg(&password)
                .arg("--ca-cert")
                .arg(&cert);
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                out.status.success(),
                "{version} {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let systems: Vec<SystemInventory> =
                serde_json::from_value(doc["systems"].clone()).unwrap();
            assert_matches_simulator(&systems, &sim);
            let uids: Vec<&str> = doc["capability_definitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["uid"].as_str().unwrap())
                .collect();
            assert_eq!(
                uids,
                [
                    "provisioningType",
                    "mediaType",
                    "dataLayout",
                    "volumeCompression",
                    "zeroPadding"
                ]
            );
            let stats = sim.state().stats();
            assert_eq!(
                stats.logins, 1,
                "{version} {name}: one login per cycle at most"
            );
            costs.push((name, stats.requests_total, stats.requests));
        }
        assert_eq!(
            costs[0].1, costs[1].1,
            "{version}: same cost for small and large: {costs:?}"
        );
        let expected = if version == ApiVersion::V4_5 { 4 } else { 5 };
        assert_eq!(costs[0].1, expected, "{version}: {costs:?}");
    }
}

#[tokio::test]
async fn a_second_cycle_reuses_the_login_and_reads_the_gateway_twice() {
    for version in VERSIONS {
        let sim = start(version, TopologySpec::large()).await;
        let provider = provider(&sim);
        let first = discover(&sim, &provider).await.unwrap();
        assert_matches_simulator(&first.systems, &sim);
        let after_first = sim.state().stats();
        let second = discover(&sim, &provider).await.unwrap();
        assert_eq!(second.systems.len(), first.systems.len());
        let after_second = sim.state().stats();
        assert_eq!(
            after_second.logins, after_first.logins,
            "{version}: no new login on a second cycle"
        );
        assert_eq!(
            after_second.requests_total - after_first.requests_total,
            2,
            "{version}: bulk inventory + statistics only: {:?}",
            after_second.requests
        );
        assert_eq!(after_second.requests["GET /api/instances"], 2);
    }
}

#[tokio::test]
async fn topology_changes_show_in_the_next_cycle() {
    let sim = start(ApiVersion::V3_6, TopologySpec::small()).await;
    let provider = provider(&sim);
    discover(&sim, &provider).await.unwrap();
    {
        let mut inv = sim.state().inventory_mut();
        let pd = inv.protection_domains[0].id.clone();
        inv.add_sds(&pd, 2, 256).unwrap();
        inv.add_sdc(false);
        let sds = inv.sds[0].id.clone();
        inv.remove(scaleio_simulator::topology::ObjectKind::Sds, &sds);
    }
    let report = discover(&sim, &provider).await.unwrap();
    assert_matches_simulator(&report.systems, &sim);
    assert_eq!(report.systems[0].ports.len(), 3);
    assert_eq!(report.systems[0].host_components.len(), 4);
}

async fn with_faults(version: ApiVersion, faults: Faults) -> (Simulator, StorageProvider) {
    let sim = start(version, TopologySpec::small()).await;
    let provider = provider(&sim);
    // Log in first, so the fault hits the discovery requests themselves.
    discover(&sim, &provider).await.unwrap();
    sim.state().set_faults(faults).unwrap();
    (sim, provider)
}

#[tokio::test]
async fn expired_tokens_mid_cycle_cost_one_login_and_the_cycle_succeeds() {
    for version in VERSIONS {
        let (sim, provider) = with_faults(
            version,
            Faults {
                latency_ms: 100,
                ..Faults::default()
            },
        )
        .await;
        let before = sim.state().stats();
        let state = Arc::clone(sim.state());
        // Expire every token while the cycle's bulk request is in flight.
        let watcher = tokio::spawn(async move {
            let start = state
                .stats()
                .requests
                .get("GET /api/instances")
                .copied()
                .unwrap_or(0);
            while state
                .stats()
                .requests
                .get("GET /api/instances")
                .copied()
                .unwrap_or(0)
                == start
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            state.expire_tokens();
        });
        let report = discover(&sim, &provider).await.expect("recovered");
        watcher.await.unwrap();
        assert_matches_simulator(&report.systems, &sim);
        let after = sim.state().stats();
        assert_eq!(
            after.logins,
            before.logins + 1,
            "{version}: exactly one new login"
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_or_reported_unavailable() {
    let (sim, provider) = with_faults(
        ApiVersion::V3_6,
        Faults {
            error_rate: 0.5,
            ..Faults::default()
        },
    )
    .await;
    let report = discover(&sim, &provider)
        .await
        .expect("every other request fails: retries recover");
    assert_matches_simulator(&report.systems, &sim);

    sim.state()
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let err = discover(&sim, &provider).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.retryable);
    assert!(
        err.message.contains("GET /api/instances"),
        "names the endpoint: {err}"
    );
}

#[tokio::test]
async fn closed_connections_are_retried_or_reported_unavailable() {
    let (sim, provider) = with_faults(
        ApiVersion::V4_5,
        Faults {
            close_connection_rate: 0.5,
            ..Faults::default()
        },
    )
    .await;
    discover(&sim, &provider).await.expect("retries recover");
    sim.state()
        .set_faults(Faults {
            close_connection_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let err = discover(&sim, &provider).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn malformed_json_and_html_pages_are_protocol_errors_naming_the_endpoint() {
    let (sim, provider) = with_faults(
        ApiVersion::V3_6,
        Faults {
            malformed_json_rate: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let err = discover(&sim, &provider).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    assert!(
        err.message.contains("GET /api/instances") && err.message.contains("malformed JSON"),
        "{err}"
    );

    sim.state()
        .set_faults(Faults {
            html_error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let err = discover(&sim, &provider).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    assert!(
        err.message.contains("GET /api/instances") && err.message.contains("HTML"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error() {
    for version in VERSIONS {
        let sim = start(version, TopologySpec::small()).await;
        let provider = StorageProvider {
            password: Secret::new("not-the-password"),
            ..provider(&sim)
        };
        let err = discover(&sim, &provider).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Authentication, "{version}: {err}");
        assert!(!err.retryable);
        assert!(
            !err.message.contains("not-the-password"),
            "no password in errors: {err}"
        );
        assert_eq!(sim.state().stats().live_sessions, 0);
    }
}

#[tokio::test]
async fn tls_is_verified_unless_insecure_is_set() {
    let sim = start(ApiVersion::V3_6, TopologySpec::small()).await;
    let other = start(ApiVersion::V3_6, TopologySpec::small()).await;
    let wrong_ca = StorageProvider {
        ca_certificate_pem: other.cert_pem().map(Into::into).into(),
        ..provider(&sim)
    };
    let err = discover(&sim, &wrong_ca).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Authentication, "{err}");
    assert!(err.message.contains("certificate"), "{err}");

    let system_roots = StorageProvider {
        ca_certificate_pem: ROption::RNone,
        ..provider(&sim)
    };
    assert_eq!(
        discover(&sim, &system_roots).await.unwrap_err().kind,
        ErrorKind::Authentication
    );

    let insecure = StorageProvider {
        ca_certificate_pem: ROption::RNone,
        insecure: true,
        ..provider(&sim)
    };
    discover(&sim, &insecure)
        .await
        .expect("insecure skips verification");

    let bad_pem = StorageProvider {
        ca_certificate_pem: ROption::RSome("not a certificate".into()),
        ..provider(&sim)
    };
    let err = discover(&sim, &bad_pem).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn plain_http_works_when_ssl_is_off() {
    let sim = Simulator::start(SimConfig {
        tls: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let provider = StorageProvider {
        use_ssl: false,
        ca_certificate_pem: ROption::RNone,
        ..provider(&sim)
    };
    let report = discover(&sim, &provider).await.unwrap();
    assert_matches_simulator(&report.systems, &sim);
}

#[tokio::test]
async fn the_call_deadline_is_honoured() {
    let (sim, provider) = with_faults(
        ApiVersion::V3_6,
        Faults {
            latency_ms: 3_000,
            ..Faults::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let err = discover_provider(&driver(), &provider, Duration::from_millis(500), 4)
        .await
        .unwrap_err()
        .error;
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(2_900),
        "gave up at the deadline, not after the answer"
    );
    drop(sim);
}

/// Plain HTTP to a gateway that speaks TLS: said so at once, not retried.
#[tokio::test]
async fn plain_http_to_a_tls_gateway_says_the_gateway_speaks_tls() {
    let sim = start(ApiVersion::V3_6, TopologySpec::small()).await;
    let plain = StorageProvider {
        use_ssl: false,
        ca_certificate_pem: ROption::RNone,
        ..provider(&sim)
    };
    let err = discover(&sim, &plain).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains("it speaks TLS (HTTPS)"), "{err}");
    assert!(err.message.contains("drop --no-ssl"), "{err}");
}

/// A certificate and its key, PEM.
struct Made {
    cert: String,
    key: String,
}

/// What `openssl req -x509` makes by default, as many gateways ship: a
/// self-signed certificate with `CA:TRUE`.
fn openssl_self_signed_ca_true(dir: &std::path::Path) -> Made {
    let (cert, key) = (dir.join("gw.pem"), dir.join("gw.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "365", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let made = Made {
        cert: std::fs::read_to_string(&cert).unwrap(),
        key: std::fs::read_to_string(&key).unwrap(),
    };
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "openssl req -x509 makes CA:TRUE certificates"
    );
    made
}

/// A certificate by rcgen: for `name`, valid over `years`, a CA or not,
/// signed by `issuer` or self-signed.
fn rcgen_cert(
    name: &str,
    years: (i32, i32),
    ca: bool,
    issuer: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
) -> (Made, rcgen::Certificate, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = match issuer {
        Some((issuer, issuer_key)) => params.signed_by(&key, issuer, issuer_key).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    let made = Made {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    (made, cert, key)
}

/// The `sha256:` pin of the (first) certificate in `pem`.
fn sha256_pin(pem: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    southbound_sdk::pins::fingerprint_line(&sha2::Sha256::digest(der).into())
}

/// Discovers a simulator serving `served` with `pins`; the error, if any.
async fn with_certificate(served: &Made, pins: &str) -> Result<(), southbound_sdk::DriverError> {
    let sim = Simulator::start(SimConfig {
        identity: Some(scaleio_simulator::TlsIdentity {
            cert_pem: served.cert.clone(),
            key_pem: served.key.clone(),
        }),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts with the certificate");
    let provider = StorageProvider {
        ca_certificate_pem: ROption::RSome(pins.into()),
        ..provider(&sim)
    };
    discover(&sim, &provider).await.map(|_| ())
}

#[tokio::test]
async fn gateway_certificates_are_trusted_as_operators_expect() {
    let dir = tempfile::tempdir().unwrap();
    let (this_year, later) = (2026, 2036);

    // Self-signed with CA:TRUE (openssl's default): pinned, it is trusted,
    // by the certificate itself or by its fingerprint.
    let ca_true = openssl_self_signed_ca_true(dir.path());
    with_certificate(&ca_true, &ca_true.cert)
        .await
        .expect("pinned CA:TRUE certificate");
    with_certificate(&ca_true, &sha256_pin(&ca_true.cert))
        .await
        .expect("pinned fingerprint");

    // Self-signed without basic constraints.
    let (plain, _, _) = rcgen_cert("127.0.0.1", (this_year - 1, later), false, None);
    with_certificate(&plain, &plain.cert)
        .await
        .expect("pinned self-signed certificate");

    // A leaf signed by a private CA: pin the CA (the chain is verified), or
    // the leaf itself.
    let (ca, ca_cert, ca_key) = rcgen_cert("Private CA", (this_year - 1, later), true, None);
    let (leaf, _, _) = rcgen_cert(
        "127.0.0.1",
        (this_year - 1, later),
        false,
        Some((&ca_cert, &ca_key)),
    );
    with_certificate(&leaf, &ca.cert)
        .await
        .expect("leaf of the pinned CA");
    with_certificate(&leaf, &leaf.cert)
        .await
        .expect("pinned leaf");

    // Expired: refused, saying so, even pinned.
    let (expired, _, _) = rcgen_cert("127.0.0.1", (2020, 2021), false, Some((&ca_cert, &ca_key)));
    for pins in [&ca.cert, &expired.cert] {
        let err = with_certificate(&expired, pins).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Authentication, "{err}");
        assert!(err.message.contains("is expired or not yet valid"), "{err}");
    }

    // For another name: the CA's leaf is refused naming the problem; the
    // very certificate pinned is trusted (pinning names the certificate).
    let (elsewhere, _, _) = rcgen_cert(
        "gateway.example.com",
        (this_year - 1, later),
        false,
        Some((&ca_cert, &ca_key)),
    );
    let err = with_certificate(&elsewhere, &ca.cert).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Authentication, "{err}");
    assert!(err.message.contains("not valid for name"), "{err}");
    assert!(
        err.message.contains("sha256:"),
        "the presented fingerprint is named: {err}"
    );
    with_certificate(&elsewhere, &elsewhere.cert)
        .await
        .expect("pinned certificate for another name");

    // Another certificate or fingerprint: refused, naming what was presented.
    let err = with_certificate(&ca_true, &plain.cert).await.unwrap_err();
    assert!(
        err.message
            .contains("is not one pinned and does not chain to one"),
        "{err}"
    );
    let err = with_certificate(&ca_true, &sha256_pin(&plain.cert))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("matches no pinned fingerprint"),
        "{err}"
    );
    assert!(err.message.contains(&sha256_pin(&ca_true.cert)), "{err}");
}
