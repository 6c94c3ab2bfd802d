//! What a claimed job does, after CoprHD's scan and discovery flows:
//!
//! - scan: the provider's driver lists its systems; new ones are created and
//!   queued for discovery at once; ones no longer reported become
//!   unreachable; an unsupported provider version fails the scan
//!   (INCOMPATIBLE).
//! - discover: one system's details, pools, ports, hosts and capability
//!   definitions, checked by the object rules, written in one transaction
//!   (only what changed). Firmware the driver does not support makes the
//!   system INCOMPATIBLE; any failure leaves the inventory as it was.
//!
//! Credentials reach the driver only through the driver interface.

use std::sync::Arc;
use std::time::Duration;

use southbound_sdk::{RString, StorageProvider};

use super::Controller;
use crate::discovery::{self, DiscoveryError};
use crate::isolation::Driver;
use crate::store::{now_ms, ClaimedJob, JobKind, StoreError};
use crate::validation::Problem;

/// A job that cannot run, and why (becomes the task's FAILED message).
type Failure = String;

fn warnings(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("; {p}"))
        .collect::<String>()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Controller {
    /// Runs one claimed job to its end and records the outcome.
    pub(crate) async fn run_job(&self, job: &ClaimedJob) {
        let clock = std::time::Instant::now();
        let started = now_ms();
        let result = match job.kind {
            JobKind::Scan => self.run_scan(job, started).await,
            JobKind::Discover => self.run_discovery(job, started).await,
        };
        let outcome = match &result {
            Ok(status) => *status,
            Err(StoreError::LeaseLost(_)) => "lease_lost",
            Err(_) => "not_recorded",
        };
        self.metrics
            .job(job.kind.as_str(), outcome, clock.elapsed().as_secs_f64());
        match result {
            Ok(_) => {}
            Err(StoreError::LeaseLost(id)) => {
                tracing::warn!(job = %id, "lost the lease while running; the result was not written")
            }
            Err(error) => {
                tracing::error!(job = %job.id, task = %job.task_id, "cannot record the job's outcome: {error}");
                // End the task with the cause if the database still answers;
                // else the lease expires and the job runs again.
                let message = format!("Cannot write the result: {error}");
                let next = now_ms()
                    + millis(match job.kind {
                        JobKind::Scan => self.settings.scan_interval,
                        JobKind::Discover => self.settings.discovery_interval,
                    });
                let recorded = match job.kind {
                    JobKind::Scan => self
                        .store
                        .fail_scan(job, &self.node, &message, false, next)
                        .await
                        .map(|()| "FAILED"),
                    JobKind::Discover => self
                        .store
                        .fail_discovery(job, &self.node, &message, None, next)
                        .await
                        .map(|()| "FAILED"),
                };
                if let Err(e) = recorded {
                    self.set_healthy(false);
                    tracing::warn!(job = %job.id, "cannot record the failure either ({e}); the job runs again when its lease expires");
                }
            }
        }
    }

    /// The driver for `system_type` and the provider's connection settings.
    async fn connect(
        &self,
        provider_id: &str,
        system_type: &str,
    ) -> Result<Result<(Arc<dyn Driver>, StorageProvider), Failure>, StoreError> {
        let Some(mut provider) = self.store.provider_connection(provider_id).await? else {
            return Ok(Err(format!("provider {provider_id} was removed")));
        };
        let Some(driver) = self.catalog.driver(system_type) else {
            return Ok(Err(format!(
                "no driver serves storage system type '{system_type}'"
            )));
        };
        provider.provider_type = driver
            .info()
            .provider_type
            .clone()
            .into_option()
            .unwrap_or_else(|| RString::from(system_type));
        Ok(Ok((driver, provider)))
    }

    async fn run_scan(&self, job: &ClaimedJob, started: i64) -> Result<&'static str, StoreError> {
        let next = started + millis(self.settings.scan_interval);
        let Some(record) = self.store.provider(&job.target_id).await? else {
            return self
                .store
                .fail_scan(job, &self.node, "the provider was removed", false, next)
                .await
                .map(|()| "FAILED");
        };
        let (driver, provider) = match self.connect(&record.id, &record.system_type).await? {
            Ok(connected) => connected,
            Err(failure) => {
                return self
                    .store
                    .fail_scan(job, &self.node, &failure, false, next)
                    .await
                    .map(|()| "FAILED")
            }
        };
        let scanned =
            discovery::scan_provider(driver.as_ref(), &provider, self.settings.call_timeout).await;
        let driver_name = driver.info().name.to_string();
        self.metrics.driver_call(
            &driver_name,
            "scan_provider",
            scanned
                .as_ref()
                .map_or_else(|e| e.error.kind.name().unwrap_or("unknown"), |_| "ok"),
        );
        let scanned = match scanned {
            Ok(scanned) => scanned,
            Err(error) => {
                let message = format!("Failed to scan provider {}: {error}", record.name);
                tracing::warn!(provider = %record.name, "{message}");
                return self
                    .store
                    .fail_scan(job, &self.node, &message, false, next)
                    .await
                    .map(|()| "FAILED");
            }
        };
        let details = &scanned.scan.details;
        if !details.is_supported_version {
            let message = format!(
                "Provider {} runs version {}, which {} does not support",
                record.name,
                details.provider_version,
                driver.info().name
            );
            return self
                .store
                .fail_scan(job, &self.node, &message, true, next)
                .await
                .map(|()| "FAILED");
        }
        let systems: Vec<_> = scanned.scan.systems.iter().cloned().collect();
        let problems = scanned.problems;
        let status = if problems.is_empty() {
            "READY"
        } else {
            "WARNING"
        };
        let written = self
            .store
            .complete_scan(job, &self.node, details, &systems, next, |w| {
                let summary = format!(
                    "Scan found {} systems ({} new, {} no longer reported, {} queued for discovery)",
                    systems.len(),
                    w.new_systems,
                    w.now_unreachable,
                    w.discovery_tasks.len()
                );
                (status, format!("{summary}{}", warnings(&problems)))
            })
            .await?;
        tracing::info!(provider = %record.name, systems = systems.len(), new = written.new_systems, "scan complete");
        if !written.discovery_tasks.is_empty() {
            self.wake.notify_waiters();
        }
        Ok(status)
    }

    async fn run_discovery(
        &self,
        job: &ClaimedJob,
        started: i64,
    ) -> Result<&'static str, StoreError> {
        let next = started + millis(self.settings.discovery_interval);
        let Some(system) = self.store.system(&job.target_id).await? else {
            // The system row is gone (never deleted by discovery; only by hand).
            return self
                .store
                .fail_discovery(job, &self.node, "the system no longer exists", None, next)
                .await
                .map(|()| "FAILED");
        };
        let Some(provider_id) = system.provider_id.clone() else {
            let message = format!(
                "Storage system {} has no provider (it was removed); register it again",
                system.native_guid
            );
            return self
                .store
                .fail_discovery(job, &self.node, &message, None, next)
                .await
                .map(|()| "FAILED");
        };
        let (driver, provider) = match self.connect(&provider_id, &system.system_type).await? {
            Ok(connected) => connected,
            Err(failure) => {
                return self
                    .store
                    .fail_discovery(job, &self.node, &failure, None, next)
                    .await
                    .map(|()| "FAILED")
            }
        };
        self.store
            .task_progress(&job.task_id, 10, "Discovering through the driver")
            .await?;
        let found = discovery::discover_system(
            driver.as_ref(),
            &provider,
            &system.details,
            self.settings.call_timeout,
        )
        .await;
        // The calls before a failing one succeeded; the ones after it were not made.
        let failed_step = found
            .as_ref()
            .err()
            .map(|e| (e.step, e.error.kind.name().unwrap_or("unknown")));
        for call in discovery::DISCOVERY_CALLS {
            match failed_step {
                Some((step, kind)) if step == call => {
                    self.metrics.driver_call(&driver.info().name, call, kind);
                    break;
                }
                _ => self.metrics.driver_call(&driver.info().name, call, "ok"),
            }
        }
        let found = match found {
            Ok(found) => found,
            Err(DiscoveryError { step, error, .. }) => {
                let message = format!(
                    "Failed to discover storage system {} of type {}: {step}: {error}",
                    system.native_guid, system.system_type
                );
                tracing::warn!(system = %system.native_guid, "{message}");
                return self
                    .store
                    .fail_discovery(job, &self.node, &message, None, next)
                    .await
                    .map(|()| "FAILED");
            }
        };
        let details = &found.inventory.system;
        if !details.is_supported_version {
            let message = format!(
                "Storage array {} has firmware version {} which is not supported by driver {}",
                system.native_guid,
                details.firmware_version,
                driver.info().name
            );
            return self
                .store
                .fail_discovery(job, &self.node, &message, Some(details), next)
                .await
                .map(|()| "FAILED");
        }
        self.store
            .task_progress(&job.task_id, 90, "Writing the inventory")
            .await?;
        let inventory = &found.inventory;
        let problems = &found.problems;
        let status = if problems.is_empty() {
            "READY"
        } else {
            "WARNING"
        };
        let written = self
            .store
            .complete_discovery(
                job,
                &self.node,
                inventory,
                &found.capability_definitions,
                next,
                |w| {
                    let summary = format!(
                        "Discovered storage system {}: {} pools, {} ports, {} hosts; {} inventory rows written, {} objects no longer visible",
                        system.native_guid,
                        inventory.pools.len(),
                        inventory.ports.len(),
                        inventory.host_components.len(),
                        w.rows_written,
                        w.now_not_visible
                    );
                    if problems.is_empty() {
                        (status, summary)
                    } else {
                        (
                            status,
                            format!(
                                "{summary}; {} invalid objects not written{}",
                                problems.len(),
                                warnings(problems)
                            ),
                        )
                    }
                },
            )
            .await?;
        tracing::info!(
            system = %system.native_guid,
            rows_written = written.rows_written,
            not_visible = written.now_not_visible,
            "discovery complete"
        );
        Ok(status)
    }
}
