//! The plugins directory: finding driver files, loading each on its own,
//! refusing the bad ones with one clear reason, registering the good ones
//! under the storage system types they serve, and replacing them when their
//! file changes (rescan).
//!
//! Invariants:
//! - Each file is loaded with `lib_header_from_path(..).init_root_module()`,
//!   never `RootModule::load_from_file` (which caches one module per type, so
//!   every later file would silently be the first one). In worker isolation
//!   that happens in the worker: the host never maps a driver library.
//! - The SDK version is checked from the library header before anything in
//!   the library runs beyond its static constructors.
//! - Libraries are never unloaded (abi_stable leaks them on purpose), so an
//!   in-process driver cannot be upgraded without restarting the host; a
//!   worker driver is upgraded by starting a new worker and retiring the old
//!   one once its calls in flight finish.
//! - One type, one driver: the first file (in file-name order) that claims a
//!   type keeps it; later claimants are refused as a whole.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use abi_stable::library::{lib_header_from_path, LibraryError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use southbound_sdk::abi::{DriverBox, DriverModRef};
use southbound_sdk::{sdk_compatibility, DriverInfo, SDK_VERSION};

use crate::isolation::{
    Driver, DriverSettings, DriverStatus, InProcessDriver, Isolation, WorkerDriver,
};

/// File extension of shared libraries on this platform.
pub const LIBRARY_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

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
        /// Why, in one line.
        reason: String,
    },
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
    /// Outcome.
    #[serde(flatten)]
    pub status: PluginStatus,
}

#[derive(Clone)]
enum Outcome {
    Loaded(Arc<dyn Driver>),
    Refused(String),
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
}

/// The drivers of one plugins directory, by storage system type.
pub struct Catalog {
    dir: PathBuf,
    policy: IsolationPolicy,
    inner: Mutex<Inner>,
    rescan_lock: tokio::sync::Mutex<()>,
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
        let catalog = Self {
            dir: dir.to_path_buf(),
            policy,
            inner: Mutex::new(Inner::default()),
            rescan_lock: tokio::sync::Mutex::new(()),
        };
        catalog.rescan().await?;
        Ok(catalog)
    }

    /// Starts a driver for `path` as the policy says.
    async fn open(&self, path: &Path) -> Result<Arc<dyn Driver>, String> {
        let start = |settings: DriverSettings| async move {
            let driver: Arc<dyn Driver> = match settings.isolation {
                Isolation::InProcess => {
                    let (driver, info) = load_library(path)?;
                    Arc::new(InProcessDriver::new(driver, info))
                }
                Isolation::Worker => {
                    // Cheap refusals first; the host itself never maps the library.
                    check_object_format(path)?;
                    Arc::new(WorkerDriver::start(&self.policy.worker_exe, path, settings).await?)
                }
            };
            Ok::<_, String>(driver)
        };
        let driver = start(self.policy.defaults.clone()).await?;
        let wanted = self.policy.settings_for(&driver.info().name);
        if *wanted == self.policy.defaults {
            return Ok(driver);
        }
        // This driver has settings of its own: start it again with them.
        driver.retire().await;
        start(wanted.clone()).await
    }

    /// Registers `new` for the types it serves, replacing `old` (same file).
    fn register(&self, new: &Arc<dyn Driver>, old: Option<&Arc<dyn Driver>>) -> Result<(), String> {
        let mut inner = lock(&self.inner);
        let info = new.info();
        for system_type in &info.storage_system_types {
            if let Some(owner) = inner.by_type.get(system_type.as_str()) {
                if !old.is_some_and(|old| Arc::ptr_eq(old, owner)) {
                    return Err(format!(
                        "storage system type '{system_type}' is already served by {} {}",
                        owner.info().name,
                        owner.info().version
                    ));
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
        let files = library_files(&self.dir)?;
        let mut changes = Vec::new();
        for path in &files {
            let sha256 = file_sha256(path).unwrap_or_default();
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
            let outcome = match self.open(path).await {
                Ok(new) => match self.register(&new, old.as_ref()) {
                    Ok(()) => Outcome::Loaded(new),
                    Err(reason) => {
                        new.retire().await;
                        Outcome::Refused(reason)
                    }
                },
                Err(reason) => Outcome::Refused(reason),
            };
            let line = match (&outcome, &old) {
                (Outcome::Refused(reason), Some(old)) => {
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
                (Outcome::Refused(reason), None) => {
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
                    let old = Arc::clone(old);
                    tokio::spawn(async move { old.retire().await });
                    line
                }
                (Outcome::Loaded(new), None) => {
                    let info = new.info();
                    tracing::info!(
                        file = %path.display(),
                        driver = %info.name,
                        version = %info.version,
                        isolation = %new.isolation(),
                        pid = ?new.worker_pid(),
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
                .partition(|f| !files.contains(&f.path));
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
        Ok(changes)
    }

    /// Every file seen, in load order, with its live status.
    pub fn entries(&self) -> Vec<PluginEntry> {
        lock(&self.inner)
            .files
            .iter()
            .map(|f| {
                let (status, isolation, worker_pid) = match &f.outcome {
                    Outcome::Refused(reason) => (
                        PluginStatus::Refused {
                            reason: reason.clone(),
                        },
                        None,
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
                        (status, Some(driver.isolation()), driver.worker_pid())
                    }
                };
                PluginEntry {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                    isolation,
                    worker_pid,
                    status,
                }
            })
            .collect()
    }

    /// The driver serving `system_type` now.
    pub fn driver(&self, system_type: &str) -> Option<Arc<dyn Driver>> {
        lock(&self.inner).by_type.get(system_type).cloned()
    }

    /// Every served storage system type, sorted.
    pub fn system_types(&self) -> Vec<String> {
        lock(&self.inner).by_type.keys().cloned().collect()
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
                    Outcome::Refused(_) => None,
                })
                .collect()
        };
        let tasks: Vec<_> = drivers
            .into_iter()
            .map(|d| tokio::spawn(async move { d.retire().await }))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The shared-library files of `dir`, sorted by file name. Other files are
/// ignored (a README beside the drivers is fine).
pub fn library_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let read_dir = fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = read_dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == LIBRARY_EXTENSION))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads one driver library in this process and instantiates its driver.
/// The error is the one-line refusal reason.
pub fn load_library(path: &Path) -> Result<(DriverBox, DriverInfo), String> {
    check_object_format(path)?;
    let header = lib_header_from_path(path).map_err(|e| describe_library_error(&e))?;

    // Our own version rule first, from the header alone, so the message names
    // both versions (abi_stable's would only say "incompatible").
    let library_version = header
        .version_strings()
        .parsed()
        .map_err(|e| format!("its library header has no valid SDK version: {e}"))?;
    let library_version = format!(
        "{}.{}.{}",
        library_version.major, library_version.minor, library_version.patch
    );
    sdk_compatibility(&library_version, SDK_VERSION).map_err(|e| e.to_string())?;

    let module = header
        .init_root_module::<DriverModRef>()
        .map_err(|e| describe_library_error(&e))?;
    let driver = (module.new())()
        .into_result()
        .map_err(|e| format!("the driver failed to start: {e}"))?;
    let info = driver
        .info()
        .into_result()
        .map_err(|e| format!("the driver failed to describe itself: {e}"))?;
    info.validate()?;
    if info.sdk_version.as_str() != library_version {
        return Err(format!(
            "the driver reports SDK {} but its library header says {library_version}",
            info.sdk_version
        ));
    }
    Ok((driver, info))
}

/// Refuses files that are not shared objects before `dlopen` sees them,
/// for a clearer reason than the loader's.
fn check_object_format(path: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    let read = fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    let expected: &[u8] = if cfg!(target_os = "linux") {
        b"\x7fELF"
    } else {
        return Ok(());
    };
    if read < expected.len() || &magic[..expected.len()] != expected {
        return Err("not a shared library (no ELF header)".into());
    }
    Ok(())
}

fn describe_library_error(error: &LibraryError) -> String {
    match error {
        LibraryError::OpenError { err, .. } => format!("cannot be opened as a shared library: {err}"),
        LibraryError::GetSymbolError { .. } => {
            "not a Southbound driver: the library exports no driver root module".into()
        }
        LibraryError::InvalidAbiHeader(_) => {
            "built with an abi_stable version whose ABI this host does not speak".into()
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!("built for southbound-sdk {actual_version}; this host runs southbound-sdk {expected_version}"),
        LibraryError::AbiInstability(details) => {
            // The layout dump runs to tens of kilobytes: debug log only.
            tracing::debug!("ABI layout mismatch: {details}");
            format!(
                "its types do not match the layout of southbound-sdk {SDK_VERSION} \
                 (rebuild it against this SDK; details with RUST_LOG=debug)"
            )
        }
        other => format!("cannot be loaded: {other}"),
    }
}

/// SHA-256 of a file, lower-case hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
