//! The service layer: every operation the REST API, the CLI (through the
//! API), the web console, the demo and the scheduler perform. Callers
//! render; this module decides. It owns the store and the driver catalog,
//! and is the only caller of the discovery workflow.
//!
//! - `workflow`: what a claimed job does (scan a provider, discover a system).
//! - `requests`: operator input and its validation (one definition for the
//!   API and the web form).

mod requests;
mod workflow;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::catalog::{Catalog, PluginEntry};
use crate::metrics::Metrics;
use crate::store::{
    CapabilityDefinitionRecord, HostRecord, JobKind, NewTask, Origin, Page, PageRequest,
    PoolRecord, PortRecord, ProviderRecord, Store, StoreError, SystemFilter, SystemRecord,
    TaskRecord,
};

pub use requests::ProviderRequest;

/// How the controller schedules and runs jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSettings {
    /// Rediscovery period of each system (CoprHD: 3600 s).
    pub discovery_interval: Duration,
    /// Scan period of each provider (CoprHD: 600 s).
    pub scan_interval: Duration,
    /// No scheduled discovery sooner than this after the last (CoprHD: 600 s).
    pub min_discovery_interval: Duration,
    /// No scheduled scan sooner than this after the last (CoprHD: 60 s).
    pub min_scan_interval: Duration,
    /// Jobs one host runs at once.
    pub max_parallel_jobs: usize,
    /// Lease on a claimed job; renewed at a third of it while it runs.
    pub lease: Duration,
    /// How often the scheduler looks for due work without being woken.
    pub poll_interval: Duration,
    /// Deadline of each driver call of a scan or discovery.
    pub call_timeout: Duration,
    /// How long a stopping host lets running jobs finish before releasing them.
    pub shutdown_grace: Duration,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            discovery_interval: Duration::from_secs(3600),
            scan_interval: Duration::from_secs(600),
            min_discovery_interval: Duration::from_secs(600),
            min_scan_interval: Duration::from_secs(60),
            max_parallel_jobs: 4,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            call_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ControllerSettings {
    /// Refuses settings the scheduler cannot honour: an interval under its
    /// minimum (the guard), zero parallelism or a lease too short to renew.
    pub fn validate(&self) -> Result<(), String> {
        for (name, interval, min_name, min) in [
            (
                "discovery_interval_secs",
                self.discovery_interval,
                "min_discovery_interval_secs",
                self.min_discovery_interval,
            ),
            (
                "scan_interval_secs",
                self.scan_interval,
                "min_scan_interval_secs",
                self.min_scan_interval,
            ),
        ] {
            if interval < min {
                return Err(format!(
                    "{name} ({} s) is below {min_name} ({} s)",
                    interval.as_secs(),
                    min.as_secs()
                ));
            }
        }
        if self.max_parallel_jobs == 0 {
            return Err("max_parallel_jobs must be at least 1".into());
        }
        if self.lease < Duration::from_secs(3) {
            return Err("lease_secs must be at least 3".into());
        }
        Ok(())
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such object.
    #[error("no {kind} '{key}'")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// By which key.
        key: String,
    },
    /// Bad input.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Already there.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One system with its pools, ports and the ids of the hosts it reports.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemInventoryView {
    /// The system.
    pub system: SystemRecord,
    /// Its pools (NOT_VISIBLE ones included).
    pub pools: Vec<PoolRecord>,
    /// Its ports (NOT_VISIBLE ones included).
    pub ports: Vec<PortRecord>,
    /// Ids of the hosts it reports.
    pub host_ids: Vec<String>,
}

/// The whole inventory: systems with their pools and ports, each host once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InventoryView {
    /// Registered providers.
    pub providers: Vec<ProviderRecord>,
    /// Systems with their pools and ports.
    pub systems: Vec<SystemInventoryView>,
    /// Every host once, with the systems that report it.
    pub hosts: Vec<HostRecord>,
    /// Capability definitions.
    pub capability_definitions: Vec<CapabilityDefinitionRecord>,
}

/// The controller: store, drivers, and the scheduler's wake-up.
pub struct Controller {
    store: Store,
    catalog: Arc<Catalog>,
    settings: ControllerSettings,
    node: String,
    wake: Notify,
    healthy: AtomicBool,
    metrics: Metrics,
}

impl Controller {
    /// A controller over `store` and `catalog`, running jobs as `node`.
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        settings: ControllerSettings,
        node: String,
    ) -> Self {
        Self {
            metrics: Metrics::new(&node),
            store,
            catalog,
            settings,
            node,
            wake: Notify::new(),
            healthy: AtomicBool::new(true),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The driver catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Scheduling settings.
    pub fn settings(&self) -> &ControllerSettings {
        &self.settings
    }

    /// This host's node name (job leases, tasks).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Resolves when someone asked for work to run now.
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::SeqCst) != healthy {
            if healthy {
                tracing::info!("database reachable again");
            } else {
                tracing::error!("database unreachable; retrying");
            }
        }
    }

    /// The metrics, as Prometheus scrapes them (OpenMetrics text).
    pub async fn metrics_text(&self) -> String {
        let waiting = self.store.pending_jobs().await.ok();
        self.set_healthy(waiting.is_some());
        let objects = self.store.object_counts().await.unwrap_or_default();
        self.metrics
            .encode(&self.catalog.entries(), waiting, &objects)
    }

    /// Whether the database answers now.
    pub async fn health(&self) -> Result<(), String> {
        let result = self.store.ping().await.map_err(|e| e.to_string());
        self.set_healthy(result.is_ok());
        result
    }

    async fn request(&self, task: NewTask) -> Result<TaskRecord, ServiceError> {
        let record = self.store.request_job(&task).await?;
        self.wake.notify_waiters();
        Ok(record)
    }

    /// Registers a provider and starts its first scan.
    pub async fn register_provider(
        &self,
        request: ProviderRequest,
    ) -> Result<(ProviderRecord, TaskRecord), ServiceError> {
        let new = request.validate(&self.catalog.system_types())?;
        let provider = self
            .store
            .insert_provider(&new)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(message) => ServiceError::Conflict(message),
                other => other.into(),
            })?;
        tracing::info!(provider = %provider.name, host = %provider.host, port = provider.port, "provider registered");
        let task = self.scan(&provider.id).await?;
        Ok((provider, task))
    }

    /// Every provider.
    pub async fn providers(&self) -> Result<Vec<ProviderRecord>, ServiceError> {
        Ok(self.store.providers().await?)
    }

    /// One provider, by id or name.
    pub async fn provider(&self, key: &str) -> Result<ProviderRecord, ServiceError> {
        self.store
            .provider(key)
            .await?
            .ok_or_else(|| not_found("provider", key))
    }

    /// Removes a provider; its systems stay, unreachable.
    pub async fn remove_provider(&self, key: &str) -> Result<ProviderRecord, ServiceError> {
        let provider = self.provider(key).await?;
        self.store.delete_provider(&provider.id).await?;
        tracing::info!(provider = %provider.name, "provider removed");
        Ok(provider)
    }

    /// Scans a provider now.
    pub async fn scan(&self, key: &str) -> Result<TaskRecord, ServiceError> {
        let provider = self.provider(key).await?;
        self.request(NewTask {
            kind: JobKind::Scan,
            target_id: provider.id,
            target_name: provider.name,
            origin: Origin::User,
        })
        .await
    }

    /// Systems, optionally of one provider (id or name) or type.
    pub async fn systems(
        &self,
        provider: Option<&str>,
        system_type: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<SystemRecord>, ServiceError> {
        let provider_id = match provider {
            Some(key) => Some(self.provider(key).await?.id),
            None => None,
        };
        let filter = SystemFilter {
            provider_id,
            system_type: system_type.map(str::to_string),
        };
        Ok(self.store.systems(&filter, page).await?)
    }

    /// One system, by id, native GUID or name.
    pub async fn system(&self, key: &str) -> Result<SystemRecord, ServiceError> {
        self.store
            .system(key)
            .await?
            .ok_or_else(|| not_found("system", key))
    }

    /// Discovers a system now (joins a discovery already queued or running).
    pub async fn discover(&self, key: &str) -> Result<TaskRecord, ServiceError> {
        let system = self.system(key).await?;
        self.request(NewTask {
            kind: JobKind::Discover,
            target_id: system.id,
            target_name: system.name,
            origin: Origin::User,
        })
        .await
    }

    /// A system's pools.
    pub async fn pools(
        &self,
        system: &str,
        page: PageRequest,
    ) -> Result<Page<PoolRecord>, ServiceError> {
        let system = self.system(system).await?;
        Ok(self.store.pools(&system.id, page).await?)
    }

    /// A system's ports.
    pub async fn ports(
        &self,
        system: &str,
        page: PageRequest,
    ) -> Result<Page<PortRecord>, ServiceError> {
        let system = self.system(system).await?;
        Ok(self.store.ports(&system.id, page).await?)
    }

    /// The hosts a system reports.
    pub async fn system_hosts(
        &self,
        system: &str,
        page: PageRequest,
    ) -> Result<Page<HostRecord>, ServiceError> {
        let system = self.system(system).await?;
        Ok(self.store.hosts(Some(&system.id), page).await?)
    }

    /// Every host once.
    pub async fn hosts(&self, page: PageRequest) -> Result<Page<HostRecord>, ServiceError> {
        Ok(self.store.hosts(None, page).await?)
    }

    /// One host, by id or native id.
    pub async fn host(&self, key: &str) -> Result<HostRecord, ServiceError> {
        self.store
            .host(key)
            .await?
            .ok_or_else(|| not_found("host", key))
    }

    /// Capability definitions.
    pub async fn capability_definitions(
        &self,
    ) -> Result<Vec<CapabilityDefinitionRecord>, ServiceError> {
        Ok(self.store.capability_definitions().await?)
    }

    /// Tasks, newest first.
    pub async fn tasks(&self, page: PageRequest) -> Result<Page<TaskRecord>, ServiceError> {
        Ok(self.store.tasks(page).await?)
    }

    /// One task.
    pub async fn task(&self, id: &str) -> Result<TaskRecord, ServiceError> {
        self.store
            .task(id)
            .await?
            .ok_or_else(|| not_found("task", id))
    }

    /// The whole inventory, each host once.
    pub async fn inventory(&self) -> Result<InventoryView, ServiceError> {
        let hosts = self.store.hosts(None, PageRequest::ALL).await?.items;
        let mut systems = Vec::new();
        for system in self.systems(None, None, PageRequest::ALL).await?.items {
            let pools = self.store.pools(&system.id, PageRequest::ALL).await?.items;
            let ports = self.store.ports(&system.id, PageRequest::ALL).await?.items;
            let host_ids = hosts
                .iter()
                .filter(|h| h.systems.iter().any(|l| l.system_id == system.id))
                .map(|h| h.id.clone())
                .collect();
            systems.push(SystemInventoryView {
                system,
                pools,
                ports,
                host_ids,
            });
        }
        Ok(InventoryView {
            providers: self.providers().await?,
            systems,
            hosts,
            capability_definitions: self.capability_definitions().await?,
        })
    }

    /// Waits until task `id` ends.
    pub async fn wait_task(&self, id: &str) -> Result<TaskRecord, ServiceError> {
        loop {
            let task = self.task(id).await?;
            if task.is_terminal() {
                return Ok(task);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Waits until no system of `provider` has a discovery queued or running;
    /// returns its systems.
    pub async fn wait_discoveries(
        &self,
        provider: &str,
    ) -> Result<Vec<SystemRecord>, ServiceError> {
        loop {
            let systems = self
                .systems(Some(provider), None, PageRequest::ALL)
                .await?
                .items;
            if systems
                .iter()
                .all(|s| discovery_settled(&s.discovery_status))
            {
                return Ok(systems);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Every driver file with its status.
    pub fn drivers(&self) -> Vec<PluginEntry> {
        self.catalog.entries()
    }

    /// Rescans the plugins directory; one line per change.
    pub async fn rescan_drivers(&self) -> Result<Vec<String>, ServiceError> {
        self.catalog
            .rescan()
            .await
            .map_err(|e| ServiceError::Invalid {
                field: "plugins",
                message: e.to_string(),
            })
    }
}

/// How often waits poll the store.
const WAIT_POLL: Duration = Duration::from_millis(200);

/// Whether a system's discovery status means no discovery is queued or running.
pub fn discovery_settled(status: &str) -> bool {
    matches!(status, "COMPLETE" | "ERROR")
}

fn not_found(kind: &'static str, key: &str) -> ServiceError {
    ServiceError::NotFound {
        kind,
        key: key.to_string(),
    }
}
