//! The plugins directory: finding driver files, loading each on its own,
//! refusing the bad ones with one clear reason, and registering the good
//! ones under the storage system types they serve.
//!
//! Invariants:
//! - Each file is loaded with `lib_header_from_path(..).init_root_module()`,
//!   never `RootModule::load_from_file` (which caches one module per type, so
//!   every later file would silently be the first one).
//! - The SDK version is checked from the library header before anything in
//!   the library runs beyond its static constructors.
//! - Libraries are never unloaded (abi_stable leaks them on purpose).
//! - One type, one driver: the first file (in file-name order) that claims a
//!   type keeps it; later claimants are refused as a whole.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use southbound_sdk::abi::{DriverBox, DriverModRef};
use southbound_sdk::{sdk_compatibility, DriverInfo, SDK_VERSION};

use crate::isolation::{Driver, InProcessDriver};

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

/// What happened to one file of the plugins directory.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PluginStatus {
    /// Loaded and registered.
    Loaded {
        /// What the driver reported.
        info: Box<DriverInfo>,
    },
    /// Not loaded.
    Refused {
        /// Why, in one line.
        reason: String,
    },
}

/// One file of the plugins directory.
#[derive(Clone, Serialize)]
pub struct PluginEntry {
    /// Path of the file.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex; empty if it could not be read.
    pub sha256: String,
    /// Outcome.
    #[serde(flatten)]
    pub status: PluginStatus,
}

/// The drivers of one plugins directory, by storage system type.
#[derive(Default)]
pub struct Catalog {
    entries: Vec<PluginEntry>,
    by_type: BTreeMap<String, Arc<dyn Driver>>,
}

impl Catalog {
    /// Loads every shared library in `dir`, in file-name order. Files that
    /// fail are recorded as refused and logged; the rest still load.
    pub fn load_dir(dir: &Path) -> Result<Self, CatalogError> {
        let mut catalog = Self::default();
        for path in library_files(dir)? {
            catalog.add_file(&path);
        }
        Ok(catalog)
    }

    /// Loads one file into the catalog; returns its entry.
    pub fn add_file(&mut self, path: &Path) -> &PluginEntry {
        let sha256 = file_sha256(path).unwrap_or_default();
        let status = match self.load_and_register(path) {
            Ok(info) => {
                tracing::info!(
                    file = %path.display(),
                    driver = %info.name,
                    version = %info.version,
                    types = ?info.storage_system_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "driver loaded"
                );
                PluginStatus::Loaded {
                    info: Box::new(info),
                }
            }
            Err(reason) => {
                tracing::warn!("{}: refused: {reason}", path.display());
                PluginStatus::Refused { reason }
            }
        };
        self.entries.push(PluginEntry {
            path: path.to_path_buf(),
            sha256,
            status,
        });
        self.entries.last().expect("entry just pushed")
    }

    fn load_and_register(&mut self, path: &Path) -> Result<DriverInfo, String> {
        let (driver, info) = load_library(path)?;
        if let Some((taken, owner)) = info
            .storage_system_types
            .iter()
            .find_map(|t| self.by_type.get(t.as_str()).map(|owner| (t, owner)))
        {
            return Err(format!(
                "storage system type '{taken}' is already served by {} {}",
                owner.info().name,
                owner.info().version
            ));
        }
        let driver: Arc<dyn Driver> = Arc::new(InProcessDriver::new(driver, info.clone()));
        for system_type in &info.storage_system_types {
            self.by_type
                .insert(system_type.to_string(), Arc::clone(&driver));
        }
        Ok(info)
    }

    /// Every file seen, in load order.
    pub fn entries(&self) -> &[PluginEntry] {
        &self.entries
    }

    /// The driver serving `system_type`.
    pub fn driver(&self, system_type: &str) -> Option<Arc<dyn Driver>> {
        self.by_type.get(system_type).cloned()
    }

    /// Every served storage system type, sorted.
    pub fn system_types(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
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
