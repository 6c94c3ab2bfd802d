//! What the suite runs against: a driver file and a live target, from
//! command-line flags, a `--target FILE.toml`, or code.
//!
//! [`TargetArgs`] is the one definition of the settings: each field is both a
//! flag (`--ca-cert`) and a key of the target file (`ca-cert`). Flags win
//! over the file; relative paths in the file are relative to the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use southbound_host::isolation::Isolation;
use southbound_sdk::{RString, Secret, StorageProvider};

/// Why the settings cannot make a [`Target`].
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A required setting is missing.
    #[error("no {0}: give --{0} (or `{0} = ...` in the target file)")]
    Missing(&'static str),
    /// A file named by a setting cannot be read.
    #[error("cannot read {what} {}: {error}", path.display())]
    Unreadable {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The target file is not valid TOML for these settings.
    #[error("target file {}: {error}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// The TLS pins cannot be read.
    #[error("{0}")]
    Pins(String),
    /// The password file cannot be read.
    #[error("{0}")]
    Password(String),
    /// Settings that cannot go together.
    #[error("{0}")]
    Conflict(&'static str),
}

/// The settings, as flags and as target-file keys (all optional here;
/// [`TargetArgs::into_target`] says which are required).
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TargetArgs {
    /// The driver file (a cdylib) to check.
    #[arg(long)]
    pub driver: Option<PathBuf>,
    /// The storage system type to check; must be one the driver declares
    /// [default: the driver's first].
    #[arg(long = "type")]
    #[serde(rename = "type")]
    pub system_type: Option<String>,
    /// The target's management host name or address.
    #[arg(long)]
    pub host: Option<String>,
    /// The target's management port [default: 443].
    #[arg(long)]
    pub port: Option<u16>,
    /// User name on the target.
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the target's password (one trailing newline is ignored).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// PEM certificate (a CA, or the target's own) to trust for its TLS.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// SHA-256 fingerprint of the certificate the target presents, to trust
    /// that very certificate (`AB:CD:...` or 64 hex digits).
    #[arg(long)]
    pub cert_sha256: Option<String>,
    /// Do not verify the target's TLS certificate.
    #[arg(long)]
    #[serde(default)]
    pub insecure: bool,
    /// Talk plain HTTP instead of TLS.
    #[arg(long)]
    #[serde(default)]
    pub no_ssl: bool,
    /// Where the driver's code runs [default: worker].
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// Longest a driver call may take in the checks, seconds [default: 60].
    #[arg(long)]
    pub call_timeout: Option<u64>,
}

impl TargetArgs {
    /// Reads a target file; relative paths in it become relative to it.
    pub fn from_file(path: &Path) -> Result<Self, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|error| TargetError::Unreadable {
            what: "target file",
            path: path.to_path_buf(),
            error,
        })?;
        let mut args: Self = toml::from_str(&text).map_err(|e| TargetError::InvalidFile {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [&mut args.driver, &mut args.password_file, &mut args.ca_cert]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(args)
    }

    /// These settings, with `fallback`'s where these have none.
    pub fn or(self, fallback: Self) -> Self {
        Self {
            driver: self.driver.or(fallback.driver),
            system_type: self.system_type.or(fallback.system_type),
            host: self.host.or(fallback.host),
            port: self.port.or(fallback.port),
            username: self.username.or(fallback.username),
            password_file: self.password_file.or(fallback.password_file),
            ca_cert: self.ca_cert.or(fallback.ca_cert),
            cert_sha256: self.cert_sha256.or(fallback.cert_sha256),
            insecure: self.insecure || fallback.insecure,
            no_ssl: self.no_ssl || fallback.no_ssl,
            isolation: self.isolation.or(fallback.isolation),
            call_timeout: self.call_timeout.or(fallback.call_timeout),
        }
    }

    /// Checks the settings and reads the files they name.
    pub fn into_target(self) -> Result<Target, TargetError> {
        if self.insecure && (self.ca_cert.is_some() || self.cert_sha256.is_some()) {
            return Err(TargetError::Conflict(
                "--ca-cert / --cert-sha256 and --insecure cannot go together: pin a certificate or skip verification",
            ));
        }
        let password_file = self
            .password_file
            .ok_or(TargetError::Missing("password-file"))?;
        let password = southbound_host::cli::read_password(&password_file)
            .map_err(|e| TargetError::Password(southbound_host::cli::describe_error(&e)))?;
        let ca_certificate_pem =
            southbound_host::cli::pins_text(self.ca_cert.as_deref(), self.cert_sha256.as_deref())
                .map_err(|e| TargetError::Pins(southbound_host::cli::describe_error(&e)))?;
        Ok(Target {
            driver: self.driver.ok_or(TargetError::Missing("driver"))?,
            system_type: self.system_type,
            host: self.host.ok_or(TargetError::Missing("host"))?,
            port: self.port.unwrap_or(443),
            username: self.username.unwrap_or_default(),
            password,
            use_ssl: !self.no_ssl,
            ca_certificate_pem,
            insecure: self.insecure,
            isolation: self.isolation.unwrap_or(Isolation::Worker),
            call_timeout: Duration::from_secs(self.call_timeout.unwrap_or(60)),
        })
    }
}

/// A driver file and the live target to check it against.
#[derive(Debug, Clone)]
pub struct Target {
    /// The driver file.
    pub driver: PathBuf,
    /// The system type to check (`None`: the driver's first).
    pub system_type: Option<String>,
    /// Management host.
    pub host: String,
    /// Management port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// TLS on.
    pub use_ssl: bool,
    /// TLS pins ([`southbound_sdk::pins`]).
    pub ca_certificate_pem: Option<String>,
    /// TLS verification off.
    pub insecure: bool,
    /// Where the driver's code runs.
    pub isolation: Isolation,
    /// Longest a driver call may take.
    pub call_timeout: Duration,
}

impl Target {
    /// The storage provider the checks hand the driver.
    pub fn provider(&self) -> StorageProvider {
        StorageProvider {
            provider_type: RString::new(),
            host: self.host.as_str().into(),
            port: self.port,
            username: self.username.as_str().into(),
            password: self.password.clone(),
            use_ssl: self.use_ssl,
            ca_certificate_pem: self.ca_certificate_pem.clone().map(RString::from).into(),
            insecure: self.insecure,
            details: Default::default(),
        }
    }
}
