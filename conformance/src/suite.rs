//! The runner: a [`Session`] with one driver loaded and its first answers
//! fetched, then every check of [`crate::checks::CHECKS`] in order, each
//! judged as passed, failed or skipped with a reason.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;
use southbound_host::discovery::{fetch_system, DiscoveryError, RawDiscovery};
use southbound_host::isolation::{self, Driver, DriverExt, DriverSettings};
use southbound_host::loader::Refusal;
use southbound_sdk::{CallContext, DriverError, ProviderScan, StorageProvider, StorageSystem};

use crate::checks::{self, hygiene::Resources};
use crate::target::Target;

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// The driver keeps this part of the contract (with what was seen).
    Passed(String),
    /// It does not: where and how.
    Failed(String),
    /// Not run: why (not selected, not applicable, or a step it needs failed).
    Skipped(String),
}

impl Outcome {
    /// `pass`, `fail` or `skip`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Passed(_) => "pass",
            Self::Failed(_) => "fail",
            Self::Skipped(_) => "skip",
        }
    }

    /// The reason or detail.
    pub fn reason(&self) -> &str {
        match self {
            Self::Passed(r) | Self::Failed(r) | Self::Skipped(r) => r,
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check's stable name, `category.check`.
    pub name: &'static str,
    /// What the check requires of a driver.
    pub description: &'static str,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Which checks run, and with what.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run only the checks whose name matches.
    pub focus: Option<Regex>,
    /// Do not run the checks whose name matches.
    pub skip: Option<Regex>,
    /// The binary started as worker (it must call
    /// `southbound_host::isolation::worker::run_if_worker` first). Default:
    /// the `southbound-conformance` binary beside the running executable,
    /// else on `PATH`.
    pub worker_exe: Option<PathBuf>,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The driver file checked.
    pub driver_file: PathBuf,
    /// `name version` of the driver, when it loaded.
    pub driver: Option<String>,
    /// Every check, in order, whether it ran or not.
    pub checks: Vec<CheckResult>,
    /// Wall time of the whole run.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

impl Report {
    /// How many checks ended with `label` (`pass`, `fail`, `skip`).
    pub fn count(&self, label: &str) -> usize {
        self.checks
            .iter()
            .filter(|c| c.outcome.label() == label)
            .count()
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.count("fail") == 0
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} checks: {} passed, {} failed, {} skipped in {:.1} s",
            self.checks.len(),
            self.count("pass"),
            self.count("fail"),
            self.count("skip"),
            self.duration.as_secs_f64()
        )
    }

    /// Panics listing every failed check: for a vendor's `cargo test`.
    pub fn assert_passed(&self) {
        let failures: Vec<String> = self
            .failures()
            .map(|c| format!("{}: {}", c.name, c.outcome.reason()))
            .collect();
        assert!(
            failures.is_empty(),
            "{} failed the conformance suite:\n  {}\n{}",
            self.driver_file.display(),
            failures.join("\n  "),
            self.summary()
        );
    }
}

/// A check's body.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One check: a stable name, what it requires, and how it is judged.
pub struct Check {
    /// `category.check`.
    pub name: &'static str,
    /// What a driver must do to pass.
    pub description: &'static str,
    /// Judges the session's driver.
    pub run: for<'a> fn(&'a mut Session) -> CheckFuture<'a>,
}

/// The driver under test and what it answered so far.
pub struct Session {
    /// The target.
    pub target: Target,
    /// The driver, when it loaded.
    pub driver: Option<Arc<dyn Driver>>,
    /// Why it did not load.
    pub refusal: Option<Refusal>,
    /// The scan, as the driver answered it.
    pub scan: Option<Result<ProviderScan, DriverError>>,
    /// Each scanned system with its discovery, as the driver answered.
    pub discoveries: Vec<(StorageSystem, Result<RawDiscovery, DiscoveryError>)>,
    /// Threads and descriptors of this process before the driver loaded.
    pub baseline: Resources,
    /// The worker binary.
    pub worker_exe: PathBuf,
}

impl Session {
    /// The storage provider of the target.
    pub fn provider(&self) -> StorageProvider {
        self.target.provider()
    }

    /// A context for one call with the target's call timeout.
    pub fn context(&self, what: &str) -> CallContext {
        CallContext::with_timeout(
            southbound_host::discovery::request_id(what),
            self.target.call_timeout,
        )
    }

    /// Settings the driver runs with: the suite's own deadlines decide, so
    /// the host's call timeout is only a backstop.
    pub fn settings(&self) -> DriverSettings {
        DriverSettings {
            isolation: self.target.isolation,
            call_timeout: self.target.call_timeout,
            crash_loop_limit: 100,
            ..DriverSettings::default()
        }
    }

    /// The loaded driver, or why a check that needs it is skipped.
    pub fn loaded(&self) -> Result<Arc<dyn Driver>, Outcome> {
        self.driver
            .clone()
            .ok_or_else(|| Outcome::Skipped("the driver did not load (see identity.*)".into()))
    }

    /// The scanned systems, or why a check that needs them is skipped.
    pub fn scanned(&self) -> Result<Vec<StorageSystem>, Outcome> {
        self.loaded()?;
        match &self.scan {
            Some(Ok(scan)) if !scan.systems.is_empty() => Ok(scan.systems.to_vec()),
            _ => Err(Outcome::Skipped(
                "the scan found no system (see scan.succeeds)".into(),
            )),
        }
    }

    /// Discovers every scanned system afresh, one after the other.
    pub async fn discover_all(
        &self,
        driver: &dyn Driver,
        systems: &[StorageSystem],
    ) -> Vec<Result<RawDiscovery, DiscoveryError>> {
        let provider = self.provider();
        let mut found = Vec::with_capacity(systems.len());
        for system in systems {
            found.push(fetch_system(driver, &provider, system, self.target.call_timeout).await);
        }
        found
    }

    async fn start(target: Target, worker_exe: PathBuf) -> Self {
        let baseline = Resources::now();
        let mut session = Self {
            target,
            driver: None,
            refusal: None,
            scan: None,
            discoveries: Vec::new(),
            baseline,
            worker_exe,
        };
        match isolation::start(
            &session.target.driver,
            session.settings(),
            &session.worker_exe,
        )
        .await
        {
            Ok(driver) => session.driver = Some(driver),
            Err(refusal) => {
                session.refusal = Some(refusal);
                return session;
            }
        }
        let Ok(driver) = session.loaded() else {
            return session;
        };
        let scan = driver
            .scan_provider(session.context("conformance-scan"), &session.provider())
            .await;
        if let Ok(scan) = &scan {
            let systems = scan.systems.to_vec();
            let found = session.discover_all(driver.as_ref(), &systems).await;
            session.discoveries = systems.into_iter().zip(found).collect();
        }
        session.scan = Some(scan);
        session
    }
}

/// The worker binary to use when none is given.
fn default_worker_exe() -> PathBuf {
    const NAME: &str = "southbound-conformance";
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let dir = exe.parent()?;
            // Integration tests live in target/<profile>/deps.
            [dir.join(NAME), dir.parent()?.join(NAME)]
                .into_iter()
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(NAME))
}

/// Runs the suite against `target`; `on_result` sees each check as it ends.
pub async fn run(
    target: Target,
    options: &Options,
    mut on_result: impl FnMut(&CheckResult),
) -> Report {
    let started = Instant::now();
    let worker_exe = options
        .worker_exe
        .clone()
        .unwrap_or_else(default_worker_exe);
    let driver_file = target.driver.clone();
    let mut session = Session::start(target, worker_exe).await;
    let driver = session
        .driver
        .as_ref()
        .map(|d| format!("{} {}", d.info().name, d.info().version));
    let mut results = Vec::with_capacity(checks::CHECKS.len());
    for check in checks::CHECKS {
        let selected = options
            .focus
            .as_ref()
            .is_none_or(|f| f.is_match(check.name))
            && !options
                .skip
                .as_ref()
                .is_some_and(|s| s.is_match(check.name));
        let began = Instant::now();
        let outcome = if selected {
            (check.run)(&mut session).await
        } else {
            Outcome::Skipped("not selected (--focus / --skip)".into())
        };
        let result = CheckResult {
            name: check.name,
            description: check.description,
            outcome,
            duration: began.elapsed(),
        };
        on_result(&result);
        results.push(result);
    }
    if let Some(driver) = session.driver.take() {
        driver.retire().await;
    }
    Report {
        driver_file,
        driver,
        checks: results,
        duration: started.elapsed(),
    }
}
