//! Prometheus metrics (OpenMetrics text, served at `/metrics`): what the
//! host did (jobs by outcome with their durations, driver calls by driver,
//! call and outcome) and what it holds now (jobs waiting, objects per type,
//! driver worker restarts and quarantines, database health), every series
//! labelled with the host's node name.
//!
//! Counters and histograms are updated where the work happens (the
//! workflow); gauges are read from the store and the catalog when scraped.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::catalog::{PluginEntry, PluginStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    driver: String,
    call: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriverLabels {
    driver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<OperationLabels, Histogram>,
    driver_calls: Family<CallLabels, Counter>,
    driver_restarts: Family<DriverLabels, Gauge>,
    driver_quarantined: Family<DriverLabels, Gauge>,
    jobs_waiting: Gauge,
    objects: Family<KindLabels, Gauge>,
    database_up: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Metrics labelled with `node`.
    pub fn new(node: &str) -> Self {
        let mut registry = Registry::with_labels(
            [(Cow::Borrowed("node"), Cow::Owned(node.to_string()))].into_iter(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "southbound_jobs",
            "Scans and discoveries run by this host, by operation and outcome (READY, WARNING, FAILED, lease_lost, not_recorded)",
            jobs.clone(),
        );
        let job_seconds = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 16))
        });
        registry.register(
            "southbound_job_duration_seconds",
            "Duration of scans and discoveries, driver calls and database writes included",
            job_seconds.clone(),
        );
        let driver_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "southbound_driver_calls",
            "Driver calls by driver, call and outcome (ok or the error kind)",
            driver_calls.clone(),
        );
        let driver_restarts = Family::<DriverLabels, Gauge>::default();
        registry.register(
            "southbound_driver_worker_restarts",
            "Restarts of each driver's current worker process",
            driver_restarts.clone(),
        );
        let driver_quarantined = Family::<DriverLabels, Gauge>::default();
        registry.register(
            "southbound_driver_quarantined",
            "1 while a driver is quarantined (its worker died too often)",
            driver_quarantined.clone(),
        );
        let jobs_waiting = Gauge::default();
        registry.register(
            "southbound_jobs_waiting",
            "Jobs in the database not finished yet (queued or running), all hosts",
            jobs_waiting.clone(),
        );
        let objects = Family::<KindLabels, Gauge>::default();
        registry.register(
            "southbound_inventory_objects",
            "Objects in the inventory by type (pools and ports: visible ones)",
            objects.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "southbound_database_up",
            "1 when the database answered the last check",
            database_up.clone(),
        );
        Self {
            registry,
            jobs,
            job_seconds,
            driver_calls,
            driver_restarts,
            driver_quarantined,
            jobs_waiting,
            objects,
            database_up,
        }
    }

    /// Records a finished job.
    pub fn job(&self, operation: &str, outcome: &str, seconds: f64) {
        self.jobs
            .get_or_create(&JobLabels {
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.job_seconds
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .observe(seconds);
    }

    /// Records one driver call.
    pub fn driver_call(&self, driver: &str, call: &str, outcome: &str) {
        self.driver_calls
            .get_or_create(&CallLabels {
                driver: driver.into(),
                call: call.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Encodes every metric, after setting the gauges from what is now.
    pub fn encode(
        &self,
        drivers: &[PluginEntry],
        jobs_waiting: Option<i64>,
        objects: &[(&'static str, i64)],
    ) -> String {
        for entry in drivers {
            let (info, quarantined) = match &entry.status {
                PluginStatus::Loaded { info } | PluginStatus::Restarting { info, .. } => (info, 0),
                PluginStatus::Quarantined { info, .. } => (info, 1),
                PluginStatus::Refused { .. } => continue,
            };
            let labels = DriverLabels {
                driver: info.name.to_string(),
            };
            self.driver_quarantined
                .get_or_create(&labels)
                .set(quarantined);
            self.driver_restarts
                .get_or_create(&labels)
                .set(i64::try_from(entry.restarts).unwrap_or(i64::MAX));
        }
        self.database_up.set(i64::from(jobs_waiting.is_some()));
        if let Some(waiting) = jobs_waiting {
            self.jobs_waiting.set(waiting);
        }
        for (kind, count) in objects {
            self.objects
                .get_or_create(&KindLabels {
                    kind: (*kind).into(),
                })
                .set(*count);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
