//! Providers: registration, reads, removal, and the connection settings a
//! driver call needs (the only place a password is opened).

use southbound_sdk::{ROption, RString, Secret, StorageProvider};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{flag, get_flag, new_id, now_ms, ProviderRecord, Store, StoreError};

/// What an operator registers.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// Unique display name.
    pub name: String,
    /// Storage system type (picks the driver).
    pub system_type: String,
    /// Management address.
    pub host: String,
    /// Management port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password (sealed before it is stored).
    pub password: Secret,
    /// TLS on.
    pub use_ssl: bool,
    /// PEM CA certificate to pin.
    pub ca_certificate_pem: Option<String>,
    /// TLS verification off.
    pub insecure: bool,
}

const PROVIDER_COLUMNS: &str = "id, name, system_type, host, port, username, use_ssl, \
    ca_certificate_pem, insecure, connection_status, compatibility, version, manufacturer, \
    scan_status, last_scan_at, last_scan_success_at, next_scan_at, last_scan_error, created_at";

fn provider_from_row(row: &AnyRow) -> Result<ProviderRecord, sqlx::Error> {
    Ok(ProviderRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        system_type: row.try_get("system_type")?,
        host: row.try_get("host")?,
        port: u16::try_from(row.try_get::<i64, _>("port")?).unwrap_or(0),
        username: row.try_get("username")?,
        use_ssl: get_flag(row, "use_ssl")?,
        ca_certificate_pinned: row
            .try_get::<Option<String>, _>("ca_certificate_pem")?
            .is_some(),
        insecure: get_flag(row, "insecure")?,
        connection_status: row.try_get("connection_status")?,
        compatibility: row.try_get("compatibility")?,
        version: row.try_get("version")?,
        manufacturer: row.try_get("manufacturer")?,
        scan_status: row.try_get("scan_status")?,
        last_scan_at: row.try_get("last_scan_at")?,
        last_scan_success_at: row.try_get("last_scan_success_at")?,
        next_scan_at: row.try_get("next_scan_at")?,
        last_scan_error: row.try_get("last_scan_error")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Registers a provider (password sealed). A taken name or address is a
    /// [`StoreError::Conflict`].
    pub async fn insert_provider(&self, new: &NewProvider) -> Result<ProviderRecord, StoreError> {
        let id = new_id("prov");
        let sealed = self.sealer.seal(&new.password, &id);
        let now = now_ms();
        let taken = sqlx::query(
            "SELECT name, host, port FROM providers WHERE name = $1 \
             OR (system_type = $2 AND host = $3 AND port = $4)",
        )
        .bind(&new.name)
        .bind(&new.system_type)
        .bind(&new.host)
        .bind(i64::from(new.port))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = taken {
            let name: String = row.try_get("name")?;
            return Err(StoreError::Conflict(if name == new.name {
                format!("a provider named '{name}' is already registered")
            } else {
                format!(
                    "{}:{} is already registered as provider '{name}'",
                    new.host, new.port
                )
            }));
        }
        sqlx::query(
            "INSERT INTO providers (id, name, system_type, host, port, username, password_sealed, \
             use_ssl, ca_certificate_pem, insecure, connection_status, compatibility, version, \
             manufacturer, scan_status, next_scan_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'INITIALIZING', 'UNKNOWN', '', '', \
             'CREATED', $11, $11)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(&new.system_type)
        .bind(&new.host)
        .bind(i64::from(new.port))
        .bind(&new.username)
        .bind(&sealed)
        .bind(flag(new.use_ssl))
        .bind(new.ca_certificate_pem.clone())
        .bind(flag(new.insecure))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.message().to_lowercase().contains("unique") => {
                StoreError::Conflict(format!(
                    "provider '{}' or {}:{} is already registered",
                    new.name, new.host, new.port
                ))
            }
            _ => StoreError::Database(e),
        })?;
        self.provider(&id)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Every provider, by name.
    pub async fn providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(provider_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// One provider, by id or name.
    pub async fn provider(&self, id_or_name: &str) -> Result<Option<ProviderRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = $1 OR name = $1"
        ))
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(provider_from_row).transpose()?)
    }

    /// Removes a provider and its pending jobs. Its systems stay in the
    /// inventory, unreachable and without a provider (as CoprHD does when a
    /// provider stops reporting a system). Returns whether it existed.
    pub async fn delete_provider(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The provider's row first, as a scan's write takes it (no deadlock).
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT id FROM providers WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE systems SET reachable = 0, provider_id = NULL WHERE provider_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM jobs WHERE kind = 'scan' AND target_id = $1 AND lease_owner IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM providers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// The settings a driver call needs, with the password opened. Only the
    /// workflow calls this, right before calling the driver.
    pub async fn provider_connection(
        &self,
        id: &str,
    ) -> Result<Option<StorageProvider>, StoreError> {
        let row = sqlx::query(
            "SELECT host, port, username, password_sealed, use_ssl, ca_certificate_pem, insecure \
             FROM providers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = row.try_get("password_sealed")?;
        Ok(Some(StorageProvider {
            provider_type: RString::new(),
            host: row.try_get::<String, _>("host")?.into(),
            port: u16::try_from(row.try_get::<i64, _>("port")?).unwrap_or(0),
            username: row.try_get::<String, _>("username")?.into(),
            password: self.sealer.open(&sealed, id)?,
            use_ssl: get_flag(&row, "use_ssl")?,
            ca_certificate_pem: match row.try_get::<Option<String>, _>("ca_certificate_pem")? {
                Some(pem) => ROption::RSome(pem.into()),
                None => ROption::RNone,
            },
            insecure: get_flag(&row, "insecure")?,
            details: Default::default(),
        }))
    }
}
