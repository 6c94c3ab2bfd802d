//! What each driver file serves, remembered between runs, so that a command
//! that needs one storage system type starts only the driver serving it.
//!
//! Keyed by the file's SHA-256: a replaced file is a new key, so an entry
//! can never describe other bytes than the ones it was learned from. The
//! cache is a hint, never a source of truth: it is read and written
//! best-effort (a missing, unreadable or corrupt cache only means files are
//! started to learn their types), in `$XDG_CACHE_HOME/southbound` (else
//! `~/.cache/southbound`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use southbound_sdk::DriverInfo;

/// Entries kept at most: old ones beyond it are dropped.
const MAX_ENTRIES: usize = 512;

/// The cache file's name in the cache directory.
const FILE_NAME: &str = "driver-types.json";

/// What one file served when it last loaded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Known {
    /// The driver's name and version, for log lines.
    pub driver: String,
    /// The storage system types it serves.
    pub types: Vec<String>,
    /// When it was learned (seconds since the epoch), to drop the oldest.
    pub learned: u64,
}

/// The cache: file SHA-256 → what the file serves.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct KnownTypes {
    files: BTreeMap<String, Known>,
}

fn cache_file() -> Option<PathBuf> {
    Some(crate::datadir::xdg_dir("XDG_CACHE_HOME", ".cache")?.join(FILE_NAME))
}

impl KnownTypes {
    /// The cache as last written; empty when there is none or it is unreadable.
    pub fn read() -> Self {
        cache_file()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// What the file with this SHA-256 serves, if known.
    pub fn get(&self, sha256: &str) -> Option<&Known> {
        self.files.get(sha256)
    }

    /// Remembers what the file with this SHA-256 serves.
    pub fn learn(&mut self, sha256: &str, info: &DriverInfo) {
        if sha256.is_empty() {
            return;
        }
        let learned = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.files.insert(
            sha256.to_string(),
            Known {
                driver: format!("{} {}", info.name, info.version),
                types: info
                    .storage_system_types
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
                learned,
            },
        );
    }

    /// Drops the oldest entries past [`MAX_ENTRIES`].
    fn prune(&mut self) {
        while self.files.len() > MAX_ENTRIES {
            let oldest = self
                .files
                .iter()
                .min_by_key(|(_, k)| k.learned)
                .map(|(sha, _)| sha.clone());
            if let Some(sha) = oldest {
                self.files.remove(&sha);
            }
        }
    }

    /// Writes the cache (atomically: a reader sees the old or the new one).
    /// Failures are logged at debug level and otherwise ignored.
    pub fn write(mut self) {
        self.prune();
        let Some(path) = cache_file() else { return };
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // A name of its own per write: writers in other processes and
            // threads never share a half-written file.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let temp = path.with_extension(format!("json.{}.{n}", std::process::id()));
            std::fs::write(&temp, serde_json::to_vec(&self)?)?;
            std::fs::rename(&temp, &path)
        })();
        if let Err(e) = written {
            tracing::debug!("cannot write the driver type cache {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_learned_and_the_oldest_dropped_past_the_bound() {
        let info = DriverInfo::new("d", "1.0.0", "v").with_system_type("t");
        let mut cache = KnownTypes::default();
        cache.learn("", &info);
        assert!(cache.files.is_empty(), "an unreadable file has no key");
        for i in 0..MAX_ENTRIES + 3 {
            cache.learn(&format!("{i:064}"), &info);
            cache.files.get_mut(&format!("{i:064}")).unwrap().learned = i as u64;
        }
        assert_eq!(cache.get(&format!("{:064}", 1)).unwrap().types, ["t"]);
        let json = serde_json::to_vec(&cache).unwrap();
        let mut back: KnownTypes = serde_json::from_slice(&json).unwrap();
        back.prune();
        assert_eq!(back.files.len(), MAX_ENTRIES);
        assert!(back.get(&format!("{:064}", 2)).is_none());
        assert!(back.get(&format!("{:064}", 3)).is_some());
    }
}
