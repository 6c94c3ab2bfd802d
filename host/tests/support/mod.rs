//! Shared by the host's integration tests and benchmarks: builds the driver
//! libraries (shipped example and test fixtures) as real cdylibs and hands
//! out their paths.

#![allow(dead_code)]

pub mod browser;
mod plugins;
pub use plugins::plugin_path;

use std::path::{Path, PathBuf};

/// Copies the libraries of `crates` into a fresh directory, under their own
/// file names; returns the directory (kept alive by the `TempDir`).
pub fn plugins_dir(crates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for krate in crates {
        let src = plugin_path(krate);
        let dst = dir.path().join(src.file_name().expect("file name"));
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
    dir
}

/// A policy with `settings` for every driver; workers are the `southbound`
/// binary built for these tests.
pub fn policy(
    settings: southbound_host::isolation::DriverSettings,
) -> southbound_host::catalog::IsolationPolicy {
    let mut policy = southbound_host::catalog::IsolationPolicy::new(settings.isolation)
        .with_worker_exe(env!("CARGO_BIN_EXE_southbound"));
    policy.defaults = settings;
    policy
}

/// Loads a plugins directory with the given isolation and default settings.
pub async fn catalog(
    dir: &Path,
    isolation: southbound_host::isolation::Isolation,
) -> southbound_host::catalog::Catalog {
    let settings = southbound_host::isolation::DriverSettings {
        isolation,
        ..Default::default()
    };
    southbound_host::catalog::Catalog::load(dir, policy(settings))
        .await
        .expect("catalog loads")
}

/// Writes a hello-driver array description with `ports` ports and returns its path.
pub fn hello_array(dir: &Path, ports: usize) -> PathBuf {
    let ports: Vec<serde_json::Value> = (0..ports)
        .map(|i| {
            serde_json::json!({
                "id": format!("eth{i}"),
                "ip": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                "zone": if i % 2 == 0 { "A" } else { "B" },
                "up": i % 7 != 3,
            })
        })
        .collect();
    let array = serde_json::json!({
        "username": "admin",
        "password": "s3cret",
        "firmware": "3.1.4",
        "systems": [{
            "id": "SYS-1", "name": "alpha", "model": "Hello 9000",
            "pools": [
                {"id": "p1", "name": "fast", "total_gib": 100, "free_gib": 40, "subscribed_gib": 150,
                 "media": "SSD", "provisioning": "THIN", "dedup": true, "tiering_policy": "gold"},
                {"id": "p2", "name": "slow", "total_gib": 10, "free_gib": 5, "subscribed_gib": 0,
                 "media": "sata", "provisioning": "THICK", "online": false}
            ],
            "ports": ports,
            "hosts": [{"name": "h1", "iqn": "iqn.2026-11.test:h1", "os": "Esx"}]
        }, {
            "id": "SYS-2", "name": "beta", "model": "Hello 100"
        }]
    });
    let path = dir.join("array.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&array).expect("json")).expect("write array");
    path
}

/// A fresh PostgreSQL database of one test or benchmark run, created on the
/// server `admin_url` names; [`PostgresDatabase::drop_database`] removes it.
pub struct PostgresDatabase {
    /// The new database's URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates `<prefix>_<random hex>` on the server of `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str) -> Self {
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).expect("random bytes");
        let name = format!("{prefix}_{:016x}", u64::from_le_bytes(bytes));
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("CREATE DATABASE");
        pool.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = &base[..base.rfind('/').expect("a database URL with a path")];
        Self {
            url: format!("{server}/{name}"),
            admin_url: admin_url.to_string(),
            name,
        }
    }

    /// Drops the database, disconnecting whoever is still on it.
    pub async fn drop_database(&self) {
        if let Ok(pool) = sqlx::AnyPool::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&pool)
            .await;
            pool.close().await;
        }
    }
}

/// The inventory rows a discovery task says it wrote ("…; N inventory rows
/// written, …").
pub fn rows_written(task: &serde_json::Value) -> u64 {
    let message = task["message"].as_str().unwrap_or_default();
    message
        .split(" inventory rows written")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rows written in {message:?}"))
}

/// This process's peak resident memory, KiB (`VmHWM`).
pub fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The median of measurements (the upper one of an even count): what the
/// benchmarks that print their figures report.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
