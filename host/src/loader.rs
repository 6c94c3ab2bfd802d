//! One driver file -> a loaded driver, or a typed [`Refusal`].
//!
//! Invariants:
//! - Each file is loaded with `lib_header_from_path(..).init_root_module()`,
//!   never `RootModule::load_from_file` (which caches one module per type, so
//!   every later file would silently be the first one). In worker isolation
//!   this runs in the worker: the host itself never maps a driver library.
//! - The SDK version is checked from the library header before anything in
//!   the library runs beyond its static constructors, so a refusal names both
//!   versions.
//! - Libraries are never unloaded (abi_stable leaks them on purpose).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use southbound_sdk::abi::{DriverBox, DriverModRef};
use southbound_sdk::{sdk_compatibility, DriverInfo, SDK_VERSION};

/// File extension of shared libraries on this platform.
pub const LIBRARY_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// Why a driver file is not served. Machine-readable (`code` in JSON) with a
/// one-line text (`Display`, and `message` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// The file cannot be read.
    #[error("cannot read the file: {error}")]
    Unreadable {
        /// The I/O error.
        error: String,
    },
    /// The file is not a shared object.
    #[error("not a shared library (no ELF header)")]
    NotSharedLibrary,
    /// The dynamic loader refused it.
    #[error("cannot be opened as a shared library: {error}")]
    CannotOpen {
        /// The loader's error.
        error: String,
    },
    /// A shared library, but not a driver.
    #[error("not a Southbound driver: the library exports no driver root module")]
    NoRootModule,
    /// Built with an abi_stable whose header this host cannot read.
    #[error("built with an abi_stable version whose ABI this host does not speak")]
    AbiHeader,
    /// The header's version string is not a version.
    #[error("its library header has no valid SDK version: {error}")]
    InvalidSdkVersion {
        /// The parse error.
        error: String,
    },
    /// Built for an SDK this host does not accept.
    #[error("{message}")]
    SdkIncompatible {
        /// SDK version of the driver.
        driver_sdk: String,
        /// SDK version of the host.
        host_sdk: String,
        /// The one-line explanation naming both.
        message: String,
    },
    /// Its types do not have this SDK's layout.
    #[error("its types do not match the layout of southbound-sdk {host_sdk} (rebuild it against this SDK; details with RUST_LOG=debug)")]
    LayoutMismatch {
        /// SDK version of the host.
        host_sdk: String,
    },
    /// Any other loading failure.
    #[error("cannot be loaded: {error}")]
    CannotLoad {
        /// What abi_stable said.
        error: String,
    },
    /// The driver's constructor failed.
    #[error("the driver failed to start: {error}")]
    StartFailed {
        /// The driver's error.
        error: String,
    },
    /// `info()` failed.
    #[error("the driver failed to describe itself: {error}")]
    DescribeFailed {
        /// The driver's error.
        error: String,
    },
    /// `DriverInfo` is incomplete or inconsistent.
    #[error("{error}")]
    InvalidInfo {
        /// Which rule it breaks.
        error: String,
    },
    /// The driver's info and its header disagree on the SDK version.
    #[error("the driver reports SDK {reported} but its library header says {header}")]
    SdkReportMismatch {
        /// What `DriverInfo` says.
        reported: String,
        /// What the header says.
        header: String,
    },
    /// Another file already serves one of its storage system types.
    #[error("storage system type '{system_type}' is already served by {owner} {owner_version}")]
    TypeAlreadyServed {
        /// The contested type.
        system_type: String,
        /// Name of the driver serving it.
        owner: String,
        /// Its version.
        owner_version: String,
    },
    /// The same bytes as a file already loaded (a copy under another name).
    #[error("identical to {file}, which is already loaded")]
    IdenticalTo {
        /// The file loaded first.
        file: String,
    },
    /// Loaded in-process, it did not finish loading within the load
    /// timeout (its loading thread is left behind: code that still runs
    /// cannot be unloaded).
    #[error("did not finish loading within {seconds} s (in-process: its loading thread is left behind until the host exits)")]
    LoadTimedOut {
        /// The load timeout (`load_timeout_secs`).
        seconds: u64,
    },
    /// The worker process could not serve it (died while loading, did not
    /// answer in time, spoke another protocol).
    #[error("{error}")]
    Worker {
        /// What went wrong.
        error: String,
    },
}

/// The shared-library files of `dir`, sorted by file name. Other files are
/// ignored (a README beside the drivers is fine).
pub fn library_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == LIBRARY_EXTENSION))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads one driver library in this process and instantiates its driver.
pub fn load_library(path: &Path) -> Result<(DriverBox, DriverInfo), Refusal> {
    check_object_format(path)?;
    let header = lib_header_from_path(path).map_err(|e| describe_library_error(&e))?;

    // Our own version rule first, from the header alone, so the message names
    // both versions (abi_stable's would only say "incompatible").
    let library_version =
        header
            .version_strings()
            .parsed()
            .map_err(|e| Refusal::InvalidSdkVersion {
                error: e.to_string(),
            })?;
    let library_version = format!(
        "{}.{}.{}",
        library_version.major, library_version.minor, library_version.patch
    );
    sdk_compatibility(&library_version, SDK_VERSION).map_err(|e| Refusal::SdkIncompatible {
        driver_sdk: library_version.clone(),
        host_sdk: SDK_VERSION.into(),
        message: e.to_string(),
    })?;

    let module = header
        .init_root_module::<DriverModRef>()
        .map_err(|e| describe_library_error(&e))?;
    let driver = (module.new())()
        .into_result()
        .map_err(|e| Refusal::StartFailed {
            error: e.to_string(),
        })?;
    let info = driver
        .info()
        .into_result()
        .map_err(|e| Refusal::DescribeFailed {
            error: e.to_string(),
        })?;
    info.validate()
        .map_err(|error| Refusal::InvalidInfo { error })?;
    if info.sdk_version.as_str() != library_version {
        return Err(Refusal::SdkReportMismatch {
            reported: info.sdk_version.to_string(),
            header: library_version,
        });
    }
    Ok((driver, info))
}

/// Refuses files that are not shared objects before `dlopen` sees them,
/// for a clearer reason than the loader's. Reads only the first bytes.
pub fn check_object_format(path: &Path) -> Result<(), Refusal> {
    let mut magic = [0u8; 4];
    let read = fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| Refusal::Unreadable {
            error: e.to_string(),
        })?;
    let expected: &[u8] = if cfg!(target_os = "linux") {
        b"\x7fELF"
    } else {
        return Ok(());
    };
    if read < expected.len() || &magic[..expected.len()] != expected {
        return Err(Refusal::NotSharedLibrary);
    }
    Ok(())
}

fn describe_library_error(error: &LibraryError) -> Refusal {
    match error {
        LibraryError::OpenError { err, .. } => Refusal::CannotOpen {
            error: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => Refusal::NoRootModule,
        LibraryError::InvalidAbiHeader(_) => Refusal::AbiHeader,
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => Refusal::SdkIncompatible {
            driver_sdk: actual_version.to_string(),
            host_sdk: expected_version.to_string(),
            message: format!("built for southbound-sdk {actual_version}; this host runs southbound-sdk {expected_version}"),
        },
        LibraryError::AbiInstability(details) => {
            // The layout dump runs to tens of kilobytes: debug log only.
            tracing::debug!("ABI layout mismatch: {details}");
            Refusal::LayoutMismatch {
                host_sdk: SDK_VERSION.into(),
            }
        }
        other => Refusal::CannotLoad {
            error: other.to_string(),
        },
    }
}

/// SHA-256 of a file, lower-case hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_one_line_text_and_a_code() {
        let refusal = Refusal::TypeAlreadyServed {
            system_type: "hello".into(),
            owner: "hello-driver".into(),
            owner_version: "0.1.0".into(),
        };
        assert_eq!(
            refusal.to_string(),
            "storage system type 'hello' is already served by hello-driver 0.1.0"
        );
        let json = serde_json::to_value(&refusal).unwrap();
        assert_eq!(json["code"], "type_already_served");
        let back: Refusal = serde_json::from_value(json).unwrap();
        assert_eq!(back, refusal);
        assert_eq!(
            Refusal::NotSharedLibrary.to_string(),
            "not a shared library (no ELF header)"
        );
    }
}
