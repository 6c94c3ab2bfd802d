//! Errors and deadlines: bad credentials, an address nobody answers on, a
//! system that does not exist and a deadline too short to meet each get the
//! error kind the host acts on, promptly.

use std::time::{Duration, Instant};

use southbound_host::isolation::DriverExt;
use southbound_sdk::{CallContext, DriverError, DriverResult, ErrorKind, Secret, StorageSystem};

use crate::suite::{Outcome, Session};

/// The native id asked for in `errors.unknown-system`.
pub const UNKNOWN_SYSTEM_ID: &str = "southbound-conformance-no-such-system";
/// The deadline of `deadlines.short-deadline`.
pub const SHORT_DEADLINE: Duration = Duration::from_millis(200);
/// How late past its deadline a call may still return and count as prompt.
pub const PROMPT: Duration = Duration::from_millis(500);

/// Judges an answer that must be an error of `kind`.
fn expect_kind<T>(answer: DriverResult<T>, kind: ErrorKind, call: &str, took: Duration) -> Outcome {
    match answer {
        Ok(_) => Outcome::Failed(format!("{call} succeeded")),
        Err(e) if e.kind == kind => Outcome::Passed(format!(
            "{kind} after {:.2} s: {}",
            took.as_secs_f64(),
            e.message
        )),
        Err(e) if e.kind == ErrorKind::Panicked => Outcome::Failed(format!(
            "expected {kind}; the driver panicked: {}",
            e.message
        )),
        Err(e) => Outcome::Failed(format!("expected {kind}, got {e}")),
    }
}

pub async fn wrong_credentials(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let mut provider = s.provider();
    provider.password = Secret::new(format!("{}-not-the-password", provider.password.expose()));
    let started = Instant::now();
    let answer = driver
        .scan_provider(s.context("conformance-wrong-password"), &provider)
        .await;
    expect_kind(
        answer,
        ErrorKind::Authentication,
        "scan_provider with a wrong password",
        started.elapsed(),
    )
}

/// A local TCP port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

pub async fn unreachable(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let mut provider = s.provider();
    provider.host = "127.0.0.1".into();
    provider.port = closed_port();
    let started = Instant::now();
    let answer = driver
        .scan_provider(s.context("conformance-unreachable"), &provider)
        .await;
    let call = format!("scan_provider of 127.0.0.1:{}", provider.port);
    expect_kind(answer, ErrorKind::Unavailable, &call, started.elapsed())
}

pub async fn unknown_system(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let info = driver.info();
    let system_type = s
        .target
        .system_type
        .clone()
        .or_else(|| info.storage_system_types.first().map(|t| t.to_string()))
        .unwrap_or_default();
    let unknown = StorageSystem {
        native_id: UNKNOWN_SYSTEM_ID.into(),
        system_type: system_type.into(),
        name: UNKNOWN_SYSTEM_ID.into(),
        serial_number: UNKNOWN_SYSTEM_ID.into(),
        ..StorageSystem::default()
    };
    let started = Instant::now();
    let answer = driver
        .discover_system(
            s.context("conformance-unknown-system"),
            &s.provider(),
            &unknown,
        )
        .await;
    expect_kind(
        answer,
        ErrorKind::NotFound,
        &format!("discover_system of '{UNKNOWN_SYSTEM_ID}'"),
        started.elapsed(),
    )
}

pub async fn short_deadline(s: &mut Session) -> Outcome {
    let driver = match s.loaded() {
        Ok(d) => d,
        Err(skip) => return skip,
    };
    let restarts = driver.restarts();
    let ctx = CallContext::with_timeout(
        southbound_host::discovery::request_id("conformance-deadline"),
        SHORT_DEADLINE,
    );
    let started = Instant::now();
    let answer = driver.scan_provider(ctx, &s.provider()).await;
    let took = started.elapsed();
    let deadline = SHORT_DEADLINE.as_secs_f64();
    if took > SHORT_DEADLINE + PROMPT {
        let killed = if driver.restarts() > restarts || driver.worker_pid().is_none() {
            "; the host had to kill its worker"
        } else {
            ""
        };
        return Outcome::Failed(format!(
            "scan_provider with a {deadline:.1} s deadline returned after {:.2} s{killed}: the driver ignores its deadline",
            took.as_secs_f64()
        ));
    }
    match answer {
        Ok(_) => Outcome::Passed(format!(
            "answered within its {deadline:.1} s deadline ({:.2} s)",
            took.as_secs_f64()
        )),
        Err(DriverError {
            kind: ErrorKind::Timeout,
            ..
        }) => Outcome::Passed(format!(
            "timeout after {:.2} s (deadline {deadline:.1} s)",
            took.as_secs_f64()
        )),
        Err(e) => Outcome::Failed(format!(
            "expected a timeout after the {deadline:.1} s deadline, got {e}"
        )),
    }
}
