//! The host's configuration file (TOML). Command-line flags and environment
//! variables override it; it overrides the built-in defaults.
//!
//! ```toml
//! [plugins]
//! dir = "/var/lib/southbound/plugins"
//!
//! [isolation]                 # every driver
//! mode = "worker"             # or "in-process"
//! call_timeout_secs = 300
//! memory_limit_mib = 2048
//! memory_cgroup = true        # else an address-space limit
//! shutdown_grace_secs = 5
//!
//! [drivers."scaleio-driver"]  # one driver, by name; unset keys inherit [isolation]
//! call_timeout_secs = 600
//!
//! [server]
//! listen = "127.0.0.1:8080"
//! data_dir = "/var/lib/southbound"
//! database_url = "postgres://southbound@db/southbound"
//!
//! [scheduler]
//! discovery_interval_secs = 3600
//! scan_interval_secs = 600
//! min_discovery_interval_secs = 600
//! min_scan_interval_secs = 60
//! max_parallel_jobs = 4
//! lease_secs = 60
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::IsolationPolicy;
use crate::isolation::{DriverSettings, Isolation};
use crate::service::ControllerSettings;

/// Default plugins directory, relative to the working directory.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[plugins]`.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// `[isolation]`: how every driver runs.
    #[serde(default)]
    pub isolation: IsolationConfig,
    /// `[drivers."<name>"]`: how one driver runs.
    #[serde(default)]
    pub drivers: BTreeMap<String, IsolationConfig>,
    /// `[server]`: where `serve` listens and keeps its data.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[scheduler]`: discovery and scan periods, parallelism, leases.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address of the API (default 127.0.0.1:8080).
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (default: SQLite in the data directory).
    pub database_url: Option<String>,
}

/// `[scheduler]`; each key overrides one [`ControllerSettings`] default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Rediscovery period, seconds.
    pub discovery_interval_secs: Option<u64>,
    /// Provider scan period, seconds.
    pub scan_interval_secs: Option<u64>,
    /// Minimum time between two scheduled discoveries of a system, seconds.
    pub min_discovery_interval_secs: Option<u64>,
    /// Minimum time between two scheduled scans of a provider, seconds.
    pub min_scan_interval_secs: Option<u64>,
    /// Jobs one host runs at once.
    pub max_parallel_jobs: Option<usize>,
    /// Job lease, seconds.
    pub lease_secs: Option<u64>,
    /// How often to look for due work, milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// Grace period for running jobs at shutdown, seconds.
    pub shutdown_grace_secs: Option<u64>,
}

/// How drivers run: the keys of `[isolation]` (every driver) and of each
/// `[drivers."<name>"]` (one driver; unset keys inherit `[isolation]`). One
/// set of keys for both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationConfig {
    /// `worker` (default) or `in-process`.
    #[serde(alias = "isolation")]
    pub mode: Option<Isolation>,
    /// Longest a call may take, seconds.
    pub call_timeout_secs: Option<u64>,
    /// Worker memory limit, MiB.
    pub memory_limit_mib: Option<u64>,
    /// Bound workers' memory with a cgroup where possible; default on.
    pub memory_cgroup: Option<bool>,
    /// Grace period for stopping workers, seconds.
    pub shutdown_grace_secs: Option<u64>,
    /// Longest a worker may take to load its driver, seconds.
    pub load_timeout_secs: Option<u64>,
    /// Largest answer a worker may send, MiB.
    pub max_answer_mib: Option<u64>,
    /// Refuse signals a worker aims outside itself (seccomp for the host,
    /// Landlock for the rest); default on.
    pub signal_filter: Option<bool>,
    /// A PID namespace per worker; default on.
    pub pid_namespace: Option<bool>,
}

impl IsolationConfig {
    /// These keys over `settings`.
    fn apply(&self, settings: &mut DriverSettings) {
        let secs = Duration::from_secs;
        if let Some(m) = self.mode {
            settings.isolation = m;
        }
        if let Some(t) = self.call_timeout_secs {
            settings.call_timeout = secs(t);
        }
        if let Some(m) = self.memory_limit_mib {
            settings.memory_limit_mib = m;
        }
        if let Some(c) = self.memory_cgroup {
            settings.memory_cgroup = c;
        }
        if let Some(g) = self.shutdown_grace_secs {
            settings.shutdown_grace = secs(g);
        }
        if let Some(t) = self.load_timeout_secs {
            settings.handshake_timeout = secs(t);
        }
        if let Some(m) = self.max_answer_mib {
            settings.max_answer_mib = m;
        }
        if let Some(f) = self.signal_filter {
            settings.signal_filter = f;
        }
        if let Some(n) = self.pid_namespace {
            settings.pid_namespace = n;
        }
    }
}

/// `[plugins]`: where driver files live.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// The plugins directory.
    pub dir: Option<PathBuf>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or unknown keys.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads `path`; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// How drivers run: `[isolation]` and `[drivers.*]` over the built-in
    /// defaults, with `mode` (a command-line flag) overriding the default mode.
    pub fn isolation_policy(&self, mode: Option<Isolation>) -> IsolationPolicy {
        let mut defaults = DriverSettings::default();
        self.isolation.apply(&mut defaults);
        // A command-line mode applies to every driver.
        if let Some(m) = mode {
            defaults.isolation = m;
        }
        let mut policy = IsolationPolicy::new(defaults.isolation);
        policy.defaults = defaults.clone();
        for (name, keys) in &self.drivers {
            let mut settings = defaults.clone();
            keys.apply(&mut settings);
            if let Some(m) = mode {
                settings.isolation = m;
            }
            policy.per_driver.insert(name.clone(), settings);
        }
        policy
    }

    /// Scheduling: `[scheduler]` over the defaults; driver calls of a
    /// discovery get the drivers' default call timeout.
    pub fn controller_settings(&self) -> ControllerSettings {
        let mut settings = ControllerSettings::default();
        let s = &self.scheduler;
        let secs = Duration::from_secs;
        if let Some(v) = s.discovery_interval_secs {
            settings.discovery_interval = secs(v);
        }
        if let Some(v) = s.scan_interval_secs {
            settings.scan_interval = secs(v);
        }
        if let Some(v) = s.min_discovery_interval_secs {
            settings.min_discovery_interval = secs(v);
        }
        if let Some(v) = s.min_scan_interval_secs {
            settings.min_scan_interval = secs(v);
        }
        if let Some(v) = s.max_parallel_jobs {
            settings.max_parallel_jobs = v;
        }
        if let Some(v) = s.lease_secs {
            settings.lease = secs(v);
        }
        if let Some(v) = s.poll_interval_ms {
            settings.poll_interval = Duration::from_millis(v);
        }
        if let Some(v) = s.shutdown_grace_secs {
            settings.shutdown_grace = secs(v);
        }
        settings.call_timeout = self.isolation_policy(None).defaults.call_timeout;
        settings
    }

    /// The plugins directory: `flag` if given, else the file's, else the default.
    pub fn plugins_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| self.plugins.dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGINS_DIR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_driver_settings_inherit_and_override() {
        let config: Config = toml::from_str(
            r#"
            [isolation]
            call_timeout_secs = 30
            memory_limit_mib = 512
            [drivers."scaleio-driver"]
            memory_cgroup = false
            mode = "in-process"
            call_timeout_secs = 90
            shutdown_grace_secs = 2
            [drivers."old-style"]
            isolation = "in-process"
            "#,
        )
        .unwrap();
        let policy = config.isolation_policy(None);
        assert_eq!(policy.defaults.isolation, Isolation::Worker);
        assert_eq!(policy.defaults.call_timeout, Duration::from_secs(30));
        let scaleio = policy.settings_for("scaleio-driver");
        assert_eq!(scaleio.isolation, Isolation::InProcess);
        assert_eq!(scaleio.call_timeout, Duration::from_secs(90));
        assert_eq!(scaleio.memory_limit_mib, 512);
        assert!(!scaleio.memory_cgroup);
        assert_eq!(scaleio.shutdown_grace, Duration::from_secs(2));
        assert_eq!(
            policy.settings_for("old-style").isolation,
            Isolation::InProcess
        );
        assert_eq!(policy.settings_for("other"), &policy.defaults);
        let forced = config.isolation_policy(Some(Isolation::Worker));
        assert_eq!(
            forced.settings_for("scaleio-driver").isolation,
            Isolation::Worker
        );
        assert!(toml::from_str::<Config>("[isolation]\nmode = \"sideways\"").is_err());
    }

    /// The configuration the README documents is one the host accepts.
    #[test]
    fn the_readme_configuration_parses() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .find(|b| b.contains("[isolation]"))
            .expect("the README documents the configuration file");
        let config: Config = toml::from_str(block).expect("the README's configuration parses");
        let policy = config.isolation_policy(None);
        assert_eq!(
            policy.settings_for("scaleio-driver").call_timeout,
            Duration::from_secs(600)
        );
        assert_eq!(policy.defaults.handshake_timeout, Duration::from_secs(30));
    }
}
