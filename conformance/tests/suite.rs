//! The conformance suite against real drivers: it passes the shipped ones
//! (hello-driver; scaleio-driver against the simulator at each API
//! version), and each flaw of the fixture driver fails exactly the check it
//! breaks. The CLI's reports are checked with real parsers.

#[path = "../../host/tests/support/plugins.rs"]
#[allow(dead_code)]
mod plugins;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use scaleio_simulator::{ApiVersion, SimConfig, Simulator};
use southbound_conformance::{checks::CHECKS, run, Isolation, Options, Report, Target};
use southbound_sdk::Secret;

const CLI: &str = env!("CARGO_BIN_EXE_southbound-conformance");

fn target(driver: &str, host: &str, password: &str, isolation: Isolation) -> Target {
    Target {
        driver: plugins::plugin_path(driver),
        system_type: None,
        host: host.into(),
        port: 443,
        username: "admin".into(),
        password: Secret::new(password),
        use_ssl: true,
        ca_certificate_pem: None,
        insecure: false,
        isolation,
        call_timeout: Duration::from_secs(30),
    }
}

async fn suite(target: Target) -> Report {
    let options = Options {
        worker_exe: Some(CLI.into()),
        ..Options::default()
    };
    run(target, &options, |_| {}).await
}

fn failed(report: &Report) -> Vec<&'static str> {
    report.failures().map(|c| c.name).collect()
}

fn hello_array() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-driver/array.json")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_driver_passes_in_a_worker_and_in_process() {
    for isolation in [Isolation::Worker, Isolation::InProcess] {
        let report = suite(target("hello-driver", &hello_array(), "hello", isolation)).await;
        report.assert_passed();
        assert_eq!(report.checks.len(), CHECKS.len());
        let skipped: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.outcome.label() == "skip")
            .map(|c| c.name)
            .collect();
        match isolation {
            Isolation::Worker => assert!(skipped.is_empty(), "{skipped:?}"),
            // A crash cannot be contained in the suite's own process.
            Isolation::InProcess => assert_eq!(skipped, ["containment.crash-reported"]),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_driver_passes_a_pool_with_free_above_total_on_for_the_host_to_catch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut array: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hello_array()).expect("array"))
            .expect("json");
    array["systems"][0]["pools"][0]["free_gib"] = 99_999.into();
    let path = dir.path().join("array.json");
    std::fs::write(&path, array.to_string()).expect("write array");
    let report = suite(target(
        "hello-driver",
        &path.display().to_string(),
        "hello",
        Isolation::Worker,
    ))
    .await;
    assert_eq!(failed(&report), ["objects.capacities"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn scaleio_driver_passes_against_the_simulator_at_each_api_version() {
    for version in [ApiVersion::V2_6, ApiVersion::V3_6, ApiVersion::V4_5] {
        let sim = Simulator::start(SimConfig {
            api_version: version,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let mut target = target(
            "scaleio-driver",
            "127.0.0.1",
            scaleio_simulator::DEFAULT_PASSWORD,
            Isolation::Worker,
        );
        target.port = sim.addr().port();
        target.username = scaleio_simulator::DEFAULT_USERNAME.into();
        target.ca_certificate_pem = sim.cert_pem().map(str::to_string);
        let report = suite(target).await;
        assert!(
            report.passed(),
            "API {}: {:?}",
            version.as_str(),
            report
                .failures()
                .map(|c| format!("{}: {}", c.name, c.outcome.reason()))
                .collect::<Vec<_>>()
        );
        assert_eq!(report.count("skip"), 0, "API {}", version.as_str());
        sim.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_flaw_fails_exactly_the_check_it_breaks() {
    let cases = [
        (
            "duplicate-ids",
            "objects.native-ids",
            "another pool of this system has the same native id",
        ),
        (
            "wrong-system",
            "objects.belong-to-system",
            "names system 'F-elsewhere'",
        ),
        (
            "free-exceeds-total",
            "objects.capacities",
            "free capacity 157286400 KiB exceeds total",
        ),
        (
            "missing-network-id",
            "objects.port-network-ids",
            "port 'port-2': it has no port network id",
        ),
        (
            "undeclared-capability",
            "objects.capabilities",
            "undeclared definition 'compression'",
        ),
        (
            "accepts-any-password",
            "errors.wrong-credentials",
            "succeeded",
        ),
        (
            "ignores-short-deadlines",
            "deadlines.short-deadline",
            "the driver ignores its deadline",
        ),
        (
            "panics-on-unknown-system",
            "errors.unknown-system",
            "the driver panicked",
        ),
        (
            "empty-system-type",
            "scan.system-types",
            "its type '' is not one the driver declared",
        ),
    ];
    let conforming = suite(target(
        "flawed-driver",
        "array",
        "secret",
        Isolation::Worker,
    ))
    .await;
    conforming.assert_passed();
    for (flaw, check, reason) in cases {
        let host = format!("array+{flaw}");
        let report = suite(target("flawed-driver", &host, "secret", Isolation::Worker)).await;
        assert_eq!(failed(&report), [check], "flaw {flaw}");
        let found = report.failures().next().expect("one failure");
        assert!(
            found.outcome.reason().contains(reason),
            "flaw {flaw}: {}",
            found.outcome.reason()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leftover_threads_fail_hygiene_in_process_only() {
    let host = "array+leaks-threads";
    let in_process = suite(target(
        "flawed-driver",
        host,
        "secret",
        Isolation::InProcess,
    ))
    .await;
    assert_eq!(failed(&in_process), ["hygiene.shutdown"]);
    let reason = in_process
        .failures()
        .next()
        .expect("failure")
        .outcome
        .reason();
    assert!(reason.contains("thread"), "{reason}");
    // In a worker, the threads end with the worker process.
    let worker = suite(target("flawed-driver", host, "secret", Isolation::Worker)).await;
    worker.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_driver_fails_loading_and_skips_the_rest() {
    let report = suite(target("not-a-driver", "array", "secret", Isolation::Worker)).await;
    assert_eq!(failed(&report), ["identity.loads"]);
    assert_eq!(report.count("skip"), CHECKS.len() - 1);
    let report = suite(target(
        "future-sdk-driver",
        "array",
        "secret",
        Isolation::Worker,
    ))
    .await;
    assert_eq!(failed(&report), ["identity.sdk-version"]);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Parses a JUnit file with Python's junitparser (a real JUnit reader on
/// top of a strict XML parser); prints `name outcome` per case.
fn junit_cases(path: &Path) -> Vec<String> {
    let script = r#"
import sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    assert suite.tests == len(list(suite)), (suite.tests, len(list(suite)))
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        print(case.classname, case.name, ",".join(kinds) or "passed", float(case.time) >= 0)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 runs (scripts/test.sh installs junitparser)");
    assert!(
        out.status.success(),
        "junitparser rejected the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_cli_reports_in_junit_and_json_and_exits_by_outcome() {
    plugins::plugins_built();
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "password", "secret\n");
    std::fs::copy(
        plugins::plugin_path("flawed-driver"),
        dir.path().join("driver.so"),
    )
    .expect("copy driver");
    // Relative paths in a target file are relative to the file.
    let target_file = write(
        dir.path(),
        "target.toml",
        "driver = \"driver.so\"\nhost = \"array+free-exceeds-total\"\nusername = \"admin\"\npassword-file = \"password\"\n",
    );
    let junit = dir.path().join("report.xml");
    let json = dir.path().join("report.json");
    let out = Command::new(CLI)
        .arg("--target")
        .arg(&target_file)
        .arg("--skip")
        .arg("^containment")
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .current_dir("/")
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("fail  objects.capacities: system 'F-1': pool 'pool-b': free capacity"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip  containment.crash-reported: not selected"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{} checks: {} passed, 1 failed, 1 skipped",
            CHECKS.len(),
            CHECKS.len() - 2
        )),
        "{stdout}"
    );

    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), CHECKS.len());
    assert!(
        cases.contains(&"objects objects.capacities Failure True".to_string()),
        "{cases:?}"
    );
    assert!(
        cases.contains(&"containment containment.crash-reported Skipped True".to_string()),
        "{cases:?}"
    );
    assert!(
        cases.contains(&"identity identity.loads passed True".to_string()),
        "{cases:?}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json report")).expect("json");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    let all: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(names, all);
    assert_eq!(report["driver"], "flawed-driver 0.1.0");
    let capacities = &report["checks"][all
        .iter()
        .position(|n| *n == "objects.capacities")
        .expect("listed")];
    assert_eq!(capacities["outcome"], "failed");

    // A conforming target exits 0; --focus narrows the run.
    let out = Command::new(CLI)
        .arg("--target")
        .arg(&target_file)
        .args(["--host", "array", "--focus", "^identity"])
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("4 passed, 0 failed, {} skipped", CHECKS.len() - 4)),
        "{stdout}"
    );

    // Settings it cannot run with: exit 2 and say which.
    let out = Command::new(CLI)
        .args(["--driver", "x.so", "--host", "h"])
        .output()
        .expect("run the CLI");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no password-file: give --password-file"),
        "{stderr}"
    );
}
