//! The live set of drivers of one plugins directory: each file's outcome
//! (loaded or refused), drivers by storage system type, rescans that upgrade
//! replaced files, and a change notification ([`Catalog::subscribe`]) for
//! whoever shows driver status.
//!
//! Invariants:
//! - One type, one driver: the first file (in file-name order) that claims a
//!   type keeps it; later claimants are refused as a whole.
//! - An in-process driver cannot be upgraded without restarting the host
//!   (libraries are never unloaded); a worker driver is upgraded by starting a
//!   new worker and retiring the old one once its calls in flight finish.
//! - A command that needs one type ([`Catalog::load_serving`]) starts only
//!   what can serve it: files [`known_types`] says serve other types are not
//!   started, and the others are abandoned once one serves the type.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use southbound_sdk::DriverInfo;
use tokio::sync::watch;

pub mod known_types;

use known_types::KnownTypes;

use crate::isolation::{Driver, DriverSettings, DriverStatus, Isolation};
use crate::loader::{file_sha256, library_files, Refusal};

/// Errors that stop the whole catalog from loading (a single bad file never does).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The directory cannot be listed.
    #[error("cannot read plugins directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How drivers are run: defaults, per-driver settings, and the binary
/// that serves as worker.
#[derive(Debug, Clone)]
pub struct IsolationPolicy {
    /// Settings of every driver without its own.
    pub defaults: DriverSettings,
    /// Settings by driver name.
    pub per_driver: BTreeMap<String, DriverSettings>,
    /// The `southbound` binary re-executed as worker.
    pub worker_exe: PathBuf,
}

impl IsolationPolicy {
    /// Default settings everywhere, with `isolation`, the current
    /// executable as worker.
    pub fn new(isolation: Isolation) -> Self {
        Self {
            defaults: DriverSettings {
                isolation,
                ..DriverSettings::default()
            },
            per_driver: BTreeMap::new(),
            worker_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("southbound")),
        }
    }

    /// Uses `exe` as the worker binary.
    pub fn with_worker_exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.worker_exe = exe.into();
        self
    }

    /// The settings of driver `name`.
    pub fn settings_for(&self, name: &str) -> &DriverSettings {
        self.per_driver.get(name).unwrap_or(&self.defaults)
    }
}

/// The driver files of `dir`, in file-name order, each with the SHA-256 of
/// its bytes (empty if unreadable).
fn hashed_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, CatalogError> {
    let files = library_files(dir).map_err(|source| CatalogError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(files
        .into_iter()
        .map(|path| {
            let sha256 = file_sha256(&path).unwrap_or_default();
            (path, sha256)
        })
        .collect())
}

/// Retires `drivers` all at once and waits until every one has stopped.
async fn retire_all(drivers: Vec<Arc<dyn Driver>>) {
    let mut stopping = tokio::task::JoinSet::new();
    for driver in drivers {
        stopping.spawn(async move { driver.retire().await });
    }
    // A retirement that panicked has nothing left to wait for.
    while stopping.join_next().await.is_some() {}
}

/// Starts a driver for `path` as the policy says.
async fn open(policy: &IsolationPolicy, path: &Path) -> Result<Arc<dyn Driver>, Refusal> {
    let exe = &policy.worker_exe;
    let start = |settings: DriverSettings| crate::isolation::start(path, settings, exe);
    let driver = start(policy.defaults.clone()).await?;
    let wanted = policy.settings_for(&driver.info().name);
    if *wanted == policy.defaults {
        return Ok(driver);
    }
    // This driver has settings of its own: start it again with them.
    driver.retire().await;
    start(wanted.clone()).await
}

/// What one file of the plugins directory is now.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PluginStatus {
    /// Loaded and serving.
    Loaded {
        /// What the driver reported.
        info: Box<DriverInfo>,
    },
    /// Loaded; its worker died and is being restarted.
    Restarting {
        /// What the driver reported.
        info: Box<DriverInfo>,
        /// Why the worker died.
        last_crash: String,
    },
    /// Loaded, but its worker died too often: calls fail until the file is replaced.
    Quarantined {
        /// What the driver reported.
        info: Box<DriverInfo>,
        /// Why.
        reason: String,
    },
    /// Not loaded.
    Refused {
        /// Why (machine-readable `code`).
        reason: Refusal,
        /// Why, in one line.
        message: String,
        /// What the driver reported, when it loaded before being refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        info: Option<Box<DriverInfo>>,
    },
}

impl PluginStatus {
    /// What the driver reported about itself, when it was readable.
    pub fn info(&self) -> Option<&DriverInfo> {
        match self {
            Self::Loaded { info }
            | Self::Restarting { info, .. }
            | Self::Quarantined { info, .. } => Some(info),
            Self::Refused { info, .. } => info.as_deref(),
        }
    }

    /// The status in words: `loaded`, `restarting: <why>`, ...
    pub fn describe(&self) -> String {
        match self {
            Self::Loaded { .. } => "loaded".into(),
            Self::Restarting { last_crash, .. } => format!("restarting: {last_crash}"),
            Self::Quarantined { reason, .. } => format!("quarantined: {reason}"),
            Self::Refused { message, .. } => format!("refused: {message}"),
        }
    }
}

/// One file of the plugins directory, as `drivers list` shows it.
#[derive(Clone, Serialize)]
pub struct PluginEntry {
    /// Path of the file.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes when it was loaded, hex; empty if unreadable.
    pub sha256: String,
    /// Where the driver runs, if loaded.
    pub isolation: Option<Isolation>,
    /// Pid of its worker, if it runs in one.
    pub worker_pid: Option<u32>,
    /// How many times its worker has been restarted.
    pub restarts: u64,
    /// The memory bound in force for its worker, e.g. `2048 MiB memory
    /// (cgroup v1)` or `2048 MiB address space (RLIMIT_AS)`; none in-process.
    pub memory_limit: Option<String>,
    /// How its worker's processes are contained: `PID namespace`, or the
    /// process group only and why; none in-process.
    pub containment: Option<String>,
    /// Outcome.
    #[serde(flatten)]
    pub status: PluginStatus,
}

#[derive(Clone)]
enum Outcome {
    Loaded(Arc<dyn Driver>),
    Refused(Refusal, Option<Box<DriverInfo>>),
}

struct FileEntry {
    path: PathBuf,
    sha256: String,
    outcome: Outcome,
}

#[derive(Default)]
struct Inner {
    files: Vec<FileEntry>,
    by_type: BTreeMap<String, Arc<dyn Driver>>,
    /// Types served by files a one-type load did not start (for messages).
    not_started: std::collections::BTreeSet<String>,
}

/// The drivers of one plugins directory, by storage system type.
pub struct Catalog {
    dir: PathBuf,
    policy: Arc<IsolationPolicy>,
    inner: Mutex<Inner>,
    rescan_lock: tokio::sync::Mutex<()>,
    /// Bumped on every change of a file's outcome or a driver's status.
    generation: Arc<watch::Sender<u64>>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Catalog {
    /// Loads every shared library in `dir`, in file-name order. Files that
    /// fail are recorded as refused and logged; the rest still load.
    pub async fn load(dir: &Path, policy: IsolationPolicy) -> Result<Self, CatalogError> {
        let catalog = Self::empty(dir, policy);
        catalog.rescan().await?;
        Ok(catalog)
    }

    fn empty(dir: &Path, policy: IsolationPolicy) -> Self {
        Self {
            dir: dir.to_path_buf(),
            policy: Arc::new(policy),
            inner: Mutex::new(Inner::default()),
            rescan_lock: tokio::sync::Mutex::new(()),
            generation: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Loads only the driver serving `system_type`, for a command that needs
    /// no other. Files the type cache ([`known_types`]) says serve other types
    /// are not started; of the files it says serve this type, only the first
    /// (in file-name order). Files not known yet start in parallel; the first
    /// to serve the type is kept, and the rest are stopped, or abandoned
    /// while still loading: none is waited for. Without a driver for the
    /// type, [`Catalog::system_types`] names the types seen on the way.
    pub async fn load_serving(
        dir: &Path,
        policy: IsolationPolicy,
        system_type: &str,
    ) -> Result<Self, CatalogError> {
        let catalog = Self::empty(dir, policy);
        let files = hashed_files(dir)?;
        let mut cache = KnownTypes::read();
        let mut not_started = std::collections::BTreeSet::new();
        let mut starting = tokio::task::JoinSet::new();
        let mut known_server = false;
        for (path, sha256) in files {
            if let Some(known) = cache.get(&sha256) {
                let serves = known.types.iter().any(|t| t == system_type);
                if !serves || known_server {
                    tracing::debug!(
                        file = %path.display(),
                        driver = %known.driver,
                        types = ?known.types,
                        "not started: not needed for type {system_type}"
                    );
                    not_started.extend(known.types.iter().cloned());
                    continue;
                }
                known_server = true;
            }
            let policy = Arc::clone(&catalog.policy);
            starting.spawn(async move {
                let opened = open(&policy, &path).await;
                (path, sha256, opened)
            });
        }
        let mut unused = Vec::new();
        while let Some(done) = starting.join_next().await {
            let Ok((path, sha256, opened)) = done else {
                continue;
            };
            let driver = match opened {
                Ok(driver) => driver,
                Err(reason) => {
                    tracing::warn!("{}: refused: {reason}", path.display());
                    continue;
                }
            };
            cache.learn(&sha256, driver.info());
            let serves = driver
                .info()
                .storage_system_types
                .iter()
                .any(|t| t.as_str() == system_type);
            if serves && catalog.register(&driver, None).is_ok() {
                lock(&catalog.inner).files.push(FileEntry {
                    path,
                    sha256,
                    outcome: Outcome::Loaded(driver),
                });
                break;
            }
            not_started.extend(
                driver
                    .info()
                    .storage_system_types
                    .iter()
                    .map(|t| t.to_string()),
            );
            unused.push(driver);
        }
        // Drivers still loading are abandoned: their workers are killed.
        starting.shutdown().await;
        retire_all(unused).await;
        cache.write();
        lock(&catalog.inner).not_started = not_started;
        Ok(catalog)
    }

    /// Registers `new` for the types it serves, replacing `old` (same file).
    fn register(
        &self,
        new: &Arc<dyn Driver>,
        old: Option<&Arc<dyn Driver>>,
    ) -> Result<(), Refusal> {
        let mut inner = lock(&self.inner);
        let info = new.info();
        for system_type in &info.storage_system_types {
            if let Some(owner) = inner.by_type.get(system_type.as_str()) {
                if !old.is_some_and(|old| Arc::ptr_eq(old, owner)) {
                    return Err(Refusal::TypeAlreadyServed {
                        system_type: system_type.to_string(),
                        owner: owner.info().name.to_string(),
                        owner_version: owner.info().version.to_string(),
                    });
                }
            }
        }
        if let Some(old) = old {
            inner.by_type.retain(|_, d| !Arc::ptr_eq(d, old));
        }
        for system_type in &info.storage_system_types {
            inner
                .by_type
                .insert(system_type.to_string(), Arc::clone(new));
        }
        Ok(())
    }

    /// Brings the catalog in line with the directory: loads new files,
    /// replaces drivers whose file changed (their old worker finishes its calls
    /// in flight first), drops drivers whose file is gone. Returns one line per
    /// change.
    pub async fn rescan(&self) -> Result<Vec<String>, CatalogError> {
        let _one_at_a_time = self.rescan_lock.lock().await;
        let files = hashed_files(&self.dir)?;
        // Every file that needs starting starts at once: one slow or hanging
        // driver delays the others by nothing (each has its load timeout).
        let mut starting = tokio::task::JoinSet::new();
        {
            let inner = lock(&self.inner);
            for (path, sha256) in &files {
                let unchanged = inner
                    .files
                    .iter()
                    .any(|f| &f.path == path && &f.sha256 == sha256);
                let copy = !sha256.is_empty()
                    && inner.files.iter().any(|f| {
                        &f.path != path
                            && &f.sha256 == sha256
                            && matches!(f.outcome, Outcome::Loaded(_))
                    });
                if unchanged || copy {
                    continue;
                }
                let (policy, path) = (Arc::clone(&self.policy), path.clone());
                starting.spawn(async move {
                    let opened = open(&policy, &path).await;
                    (path, opened)
                });
            }
        }
        let mut opened: HashMap<PathBuf, Result<Arc<dyn Driver>, Refusal>> = HashMap::new();
        while let Some(done) = starting.join_next().await {
            if let Ok((path, result)) = done {
                opened.insert(path, result);
            }
        }
        let mut changes = Vec::new();
        let (mut cache, mut learned) = (KnownTypes::read(), false);
        for (path, sha256) in &files {
            let sha256 = sha256.clone();
            let previous = lock(&self.inner)
                .files
                .iter()
                .find(|f| &f.path == path)
                .map(|f| (f.sha256.clone(), f.outcome.clone()));
            let old = match previous {
                Some((old_sha, _)) if old_sha == sha256 => continue,
                Some((_, Outcome::Loaded(old))) if old.isolation() == Isolation::InProcess => {
                    let line = format!(
                        "{}: changed, but {} runs in-process and libraries are never unloaded; restart the host (or run it in a worker) to upgrade",
                        path.display(),
                        old.info().name
                    );
                    tracing::warn!("{line}");
                    changes.push(line);
                    continue;
                }
                Some((_, Outcome::Loaded(old))) => Some(old),
                _ => None,
            };
            // A copy of a loaded file is refused without starting it.
            let copy_of = lock(&self.inner)
                .files
                .iter()
                .find(|f| {
                    &f.path != path
                        && !sha256.is_empty()
                        && f.sha256 == sha256
                        && matches!(f.outcome, Outcome::Loaded(_))
                })
                .map(|f| f.path.display().to_string());
            let outcome = match copy_of {
                Some(file) => {
                    // Started beside its twin in this pass: stop it again.
                    if let Some(Ok(started)) = opened.remove(path) {
                        started.retire().await;
                    }
                    Outcome::Refused(Refusal::IdenticalTo { file }, None)
                }
                None => match match opened.remove(path) {
                    Some(result) => result,
                    None => open(&self.policy, path).await,
                } {
                    Ok(new) => match self.register(&new, old.as_ref()) {
                        Ok(()) => Outcome::Loaded(new),
                        Err(reason) => {
                            let info = Box::new(new.info().clone());
                            new.retire().await;
                            Outcome::Refused(reason, Some(info))
                        }
                    },
                    Err(reason) => Outcome::Refused(reason, None),
                },
            };
            if let Outcome::Loaded(loaded) = &outcome {
                cache.learn(&sha256, loaded.info());
                learned = true;
            }
            let line = match (&outcome, &old) {
                (Outcome::Refused(reason, _), Some(old)) => {
                    // Keep serving the old version; the next rescan tries again.
                    let line = format!(
                        "{}: replacement refused: {reason}; still serving {} {}",
                        path.display(),
                        old.info().name,
                        old.info().version
                    );
                    tracing::warn!("{line}");
                    changes.push(line);
                    continue;
                }
                (Outcome::Refused(reason, _), None) => {
                    let line = format!("{}: refused: {reason}", path.display());
                    tracing::warn!("{line}");
                    line
                }
                (Outcome::Loaded(new), Some(old)) => {
                    let line = format!(
                        "{}: upgraded {} {} -> {} {}",
                        path.display(),
                        old.info().name,
                        old.info().version,
                        new.info().name,
                        new.info().version
                    );
                    tracing::info!("{line}");
                    self.watch_status(new);
                    let old = Arc::clone(old);
                    tokio::spawn(async move { old.retire().await });
                    line
                }
                (Outcome::Loaded(new), None) => {
                    self.watch_status(new);
                    let info = new.info();
                    tracing::info!(
                        file = %path.display(),
                        driver = %info.name,
                        version = %info.version,
                        isolation = %new.isolation(),
                        pid = new.worker_pid().unwrap_or(0),
                        types = ?info.storage_system_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                        "driver loaded"
                    );
                    format!("{}: loaded {} {}", path.display(), info.name, info.version)
                }
            };
            changes.push(line);
            let mut inner = lock(&self.inner);
            let entry = FileEntry {
                path: path.clone(),
                sha256,
                outcome,
            };
            match inner.files.iter_mut().find(|f| &f.path == path) {
                Some(existing) => *existing = entry,
                None => inner.files.push(entry),
            }
        }
        // Files that are gone.
        let removed: Vec<FileEntry> = {
            let mut inner = lock(&self.inner);
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.files)
                .into_iter()
                .partition(|f| !files.iter().any(|(path, _)| path == &f.path));
            inner.files = kept;
            for entry in &gone {
                if let Outcome::Loaded(driver) = &entry.outcome {
                    inner.by_type.retain(|_, d| !Arc::ptr_eq(d, driver));
                }
            }
            gone
        };
        for entry in removed {
            let line = format!("{}: removed", entry.path.display());
            tracing::info!("{line}");
            changes.push(line);
            if let Outcome::Loaded(driver) = entry.outcome {
                tokio::spawn(async move { driver.retire().await });
            }
        }
        if learned {
            cache.write();
        }
        if !changes.is_empty() {
            self.generation.send_modify(|g| *g += 1);
        }
        Ok(changes)
    }

    /// A receiver that changes whenever a file's outcome or a driver's
    /// status changes (a load, an upgrade, a crash, a restart, a quarantine).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Bumps the generation whenever `driver`'s status changes, until it is retired.
    fn watch_status(&self, driver: &Arc<dyn Driver>) {
        let driver = Arc::clone(driver);
        let generation = Arc::clone(&self.generation);
        tokio::spawn(async move {
            while driver.status_changed().await {
                generation.send_modify(|g| *g += 1);
            }
        });
    }

    /// Every file seen, in load order, with its live status.
    pub fn entries(&self) -> Vec<PluginEntry> {
        lock(&self.inner)
            .files
            .iter()
            .map(|f| {
                let (status, driver) = match &f.outcome {
                    Outcome::Refused(reason, info) => (
                        PluginStatus::Refused {
                            reason: reason.clone(),
                            message: reason.to_string(),
                            info: info.clone(),
                        },
                        None,
                    ),
                    Outcome::Loaded(driver) => {
                        let info = Box::new(driver.info().clone());
                        let status = match driver.status() {
                            DriverStatus::Ready => PluginStatus::Loaded { info },
                            DriverStatus::Restarting { last_crash } => {
                                PluginStatus::Restarting { info, last_crash }
                            }
                            DriverStatus::Quarantined { reason } => {
                                PluginStatus::Quarantined { info, reason }
                            }
                        };
                        (status, Some(driver))
                    }
                };
                PluginEntry {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    isolation: driver.map(|d| d.isolation()),
                    worker_pid: driver.and_then(|d| d.worker_pid()),
                    restarts: driver.map_or(0, |d| d.restarts()),
                    memory_limit: driver.and_then(|d| d.memory_limit()),
                    containment: driver.and_then(|d| d.containment()),
                    status,
                }
            })
            .collect()
    }

    /// The plugins directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The driver serving `system_type` now.
    pub fn driver(&self, system_type: &str) -> Option<Arc<dyn Driver>> {
        lock(&self.inner).by_type.get(system_type).cloned()
    }

    /// Every served storage system type, sorted.
    pub fn system_types(&self) -> Vec<String> {
        let inner = lock(&self.inner);
        let mut types: std::collections::BTreeSet<String> = inner.by_type.keys().cloned().collect();
        types.extend(inner.not_started.iter().cloned());
        types.into_iter().collect()
    }

    /// Retires every driver (workers finish their calls, then exit or are
    /// killed after their grace period).
    pub async fn shutdown(&self) {
        let drivers: Vec<Arc<dyn Driver>> = {
            let mut inner = lock(&self.inner);
            inner.by_type.clear();
            inner
                .files
                .drain(..)
                .filter_map(|f| match f.outcome {
                    Outcome::Loaded(d) => Some(d),
                    Outcome::Refused(..) => None,
                })
                .collect()
        };
        retire_all(drivers).await;
    }
}
