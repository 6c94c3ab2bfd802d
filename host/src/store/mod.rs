//! The inventory store: the only module with SQL.
//!
//! One implementation over sqlx's `Any` driver serves PostgreSQL (production,
//! several hosts) and SQLite (the embedded default). The schema and every
//! query are written in the SQL both understand (`$n` parameters, TEXT and
//! BIGINT columns, `ON CONFLICT`); the one statement that differs is the job
//! claim, which on PostgreSQL uses `FOR UPDATE SKIP LOCKED`. Migrations are
//! embedded in the binary (`host/migrations/`) and run at open.
//!
//! Invariants:
//! - Drivers never see the store: the workflow hands drivers
//!   `StorageProvider` settings and writes what they return.
//! - A discovery writes in ONE transaction and only what changed; it never
//!   deletes an inventory object (vanished ones become NOT_VISIBLE).
//! - Passwords are stored sealed ([`crate::secrets`]) and only
//!   [`Store::provider_connection`] opens them, for the driver call.
//! - Every write of a job's outcome checks, in its transaction, that this
//!   node still holds the job's lease (fencing): a node whose lease expired
//!   cannot overwrite the work of the node that took the job over.
//! - SQLite runs with one connection: one writer, no `SQLITE_BUSY`.

mod inventory;
pub use inventory::{system_guid, DiscoveryWritten, ScanWritten, SystemFilter};
mod jobs;
mod providers;
mod records;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use jobs::{ClaimedJob, JobKind, NewTask, Origin};
pub use providers::NewProvider;
pub use records::*;

use crate::secrets::{Sealer, SecretError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: production; several hosts may share it.
    Postgres,
    /// SQLite: the embedded single-host default.
    Sqlite,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database this build speaks.
    #[error("unsupported database URL '{0}': use postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    /// The database failed or cannot be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique name or address is taken.
    #[error("{0}")]
    Conflict(String),
    /// A stored document does not parse (a bug, or a hand-edited row).
    #[error("corrupt {what} in the database: {error}")]
    Corrupt {
        /// Which document.
        what: &'static str,
        /// The parse error.
        error: String,
    },
    /// Another host uses this SQLite database.
    #[error("{0}")]
    InUse(String),
    /// The database's credentials were sealed with another secret key.
    #[error("this database's credentials were sealed with another secret key: give every host that shares the database the same key (SOUTHBOUND_SECRET_KEY, or the same secret.key file)")]
    WrongSecretKey,
    /// A sealed credential does not open.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// This node no longer holds the job's lease; its result was not written.
    #[error("the lease on job {0} was lost (another node took it over); result not written")]
    LeaseLost(String),
}

/// The inventory store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    sealer: Sealer,
    /// SQLite: the lock that keeps a second host off the file.
    _single_host: Option<std::sync::Arc<std::fs::File>>,
}

impl Store {
    /// Connects to `url` (`postgres://...` or `sqlite://...`) and brings the
    /// schema up to date.
    pub async fn open(url: &str, sealer: Sealer) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let single_host = match backend {
            Backend::Sqlite => sqlite_path(url)
                .map(|path| lock_single_host(&path))
                .transpose()?
                .map(std::sync::Arc::new),
            Backend::Postgres => None,
        };
        let options = AnyPoolOptions::new().acquire_timeout(std::time::Duration::from_secs(10));
        let pool = match backend {
            Backend::Postgres => options.max_connections(8).connect(url).await?,
            Backend::Sqlite => {
                let pool = options.max_connections(1).connect(url).await?;
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&pool)
                    .await?;
                pool
            }
        };
        MIGRATOR.run(&pool).await?;
        check_secret_key(&pool, &sealer).await?;
        Ok(Self {
            pool,
            backend,
            sealer,
            _single_host: single_host,
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The first host seals a check value into the database; every later host
/// must open it, or it would write credentials no other host can read.
async fn check_secret_key(pool: &AnyPool, sealer: &Sealer) -> Result<(), StoreError> {
    const NAME: &str = "secret_key_check";
    let sealed = sealer.seal(&southbound_sdk::Secret::new(NAME), NAME);
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(NAME)
        .bind(&sealed)
        .execute(pool)
        .await?;
    let stored: String = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(NAME)
        .fetch_one(pool)
        .await?
        .try_get("value")?;
    match sealer.open(&stored, NAME) {
        Ok(check) if check.expose() == NAME => Ok(()),
        _ => Err(StoreError::WrongSecretKey),
    }
}

/// The file of a `sqlite:` URL (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// SQLite is single-host: an exclusive lock on `<db>.lock`, held for the
/// store's lifetime, refuses a second host with a clear message (instead of
/// two schedulers on one file).
fn lock_single_host(db: &std::path::Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let lock_path = db.with_extension("lock");
    let open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path);
    let mut file = match open {
        Ok(file) => file,
        // No place for the lock (the database itself will say why).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::InUse(format!(
                "cannot create {}: {e}",
                lock_path.display()
            )))
        }
        Err(e) => {
            return Err(StoreError::InUse(format!(
                "cannot open {}: {e}",
                lock_path.display()
            )))
        }
    };
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(StoreError::InUse(format!(
            "another southbound host ({}) is using the SQLite database {}; SQLite is single-host: use PostgreSQL (--database-url) to run several hosts",
            holder.trim(),
            db.display()
        )));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "pid {}", std::process::id());
    Ok(file)
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh opaque id: `prefix` + 16 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    // getrandom only fails without an entropy source; fall back to time.
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes = (now_ms() as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    format!("{prefix}-{:016x}", u64::from_le_bytes(bytes))
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

fn get_flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        error: e.to_string(),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Model types are plain data: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_ids_are_fresh() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        let a = new_id("task");
        assert!(a.starts_with("task-") && a.len() == 21, "{a}");
        assert_ne!(a, new_id("task"));
    }
}
