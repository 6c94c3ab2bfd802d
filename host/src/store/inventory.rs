//! The inventory: systems, pools, ports, hosts and capability definitions;
//! their reads, and the writes of a scan's and a discovery's outcome.

use std::collections::HashMap;

use southbound_sdk::{CapabilityDefinition, ProviderDetails, StorageSystem, SystemInventory};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::jobs::{finish_job, insert_job, ClaimedJob, JobKind, NewTask, Origin};
use super::{
    flag, get_flag, new_id, now_ms, parse_json, to_json, CapabilityDefinitionRecord, HostLink,
    HostRecord, Page, PageRequest, PoolRecord, PortRecord, Store, StoreError, SystemRecord,
    NOT_VISIBLE, VISIBLE,
};

/// Which systems to list.
#[derive(Debug, Clone, Default)]
pub struct SystemFilter {
    /// Only this provider's (id).
    pub provider_id: Option<String>,
    /// Only this type.
    pub system_type: Option<String>,
}

/// What a scan wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanWritten {
    /// Systems seen for the first time.
    pub new_systems: usize,
    /// Systems the provider no longer reports, now unreachable.
    pub now_unreachable: usize,
    /// Discovery tasks queued for systems never discovered.
    pub discovery_tasks: Vec<String>,
}

/// What a discovery wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryWritten {
    /// Inventory rows inserted or updated (systems' details, pools, ports,
    /// hosts, host links, capability definitions). Zero when nothing changed.
    pub rows_written: u64,
    /// Objects of this system that vanished and became NOT_VISIBLE now.
    pub now_not_visible: u64,
}

const SYSTEM_COLUMNS: &str = "id, native_guid, provider_id, system_type, native_id, name, \
    serial_number, model, firmware_version, compatibility, reachable, discovery_status, \
    last_discovery_at, last_discovery_success_at, next_discovery_at, last_discovery_error, data, \
    created_at";

fn system_from_row(row: &AnyRow) -> Result<SystemRecord, StoreError> {
    Ok(SystemRecord {
        id: row.try_get("id")?,
        native_guid: row.try_get("native_guid")?,
        provider_id: row.try_get("provider_id")?,
        system_type: row.try_get("system_type")?,
        native_id: row.try_get("native_id")?,
        name: row.try_get("name")?,
        serial_number: row.try_get("serial_number")?,
        model: row.try_get("model")?,
        firmware_version: row.try_get("firmware_version")?,
        compatibility: row.try_get("compatibility")?,
        reachable: get_flag(row, "reachable")?,
        discovery_status: row.try_get("discovery_status")?,
        last_discovery_at: row.try_get("last_discovery_at")?,
        last_discovery_success_at: row.try_get("last_discovery_success_at")?,
        next_discovery_at: row.try_get("next_discovery_at")?,
        last_discovery_error: row.try_get("last_discovery_error")?,
        details: parse_json("system", &row.try_get::<String, _>("data")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn visibility(row: &AnyRow) -> Result<String, sqlx::Error> {
    Ok(if get_flag(row, "visible")? {
        VISIBLE
    } else {
        NOT_VISIBLE
    }
    .to_string())
}

/// The GUID of a system (CoprHD: `<type>+<native id>`).
pub fn system_guid(system_type: &str, native_id: &str) -> String {
    format!("{system_type}+{native_id}")
}

/// One object of a system to write: native id, name, JSON document.
struct ObjectRow {
    native_id: String,
    name: String,
    data: String,
}

/// Brings one table of a system's objects (`pools` or `ports`) in line with
/// what the driver reported: inserts new ones, updates changed ones, marks
/// vanished ones NOT_VISIBLE. Unchanged rows are not touched. Returns
/// (rows written, rows made NOT_VISIBLE).
async fn write_objects(
    tx: &mut Transaction<'static, Any>,
    table: &'static str,
    tag: &'static str,
    system: &SystemRecord,
    objects: Vec<ObjectRow>,
    now: i64,
) -> Result<(u64, u64), StoreError> {
    let existing = sqlx::query(&format!(
        "SELECT id, native_id, visible, data FROM {table} WHERE system_id = $1"
    ))
    .bind(&system.id)
    .fetch_all(&mut **tx)
    .await?;
    let mut stored: HashMap<String, (String, bool, String)> = HashMap::new();
    for row in &existing {
        stored.insert(
            row.try_get("native_id")?,
            (
                row.try_get("id")?,
                get_flag(row, "visible")?,
                row.try_get("data")?,
            ),
        );
    }
    let mut written = 0;
    for object in objects {
        match stored.remove(&object.native_id) {
            Some((_, true, data)) if data == object.data => {}
            Some((id, _, _)) => {
                sqlx::query(&format!(
                    "UPDATE {table} SET name = $2, visible = 1, data = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(&id)
                .bind(&object.name)
                .bind(&object.data)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                written += 1;
            }
            None => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (id, system_id, native_guid, native_id, name, visible, data, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $7)"
                ))
                .bind(new_id(&table[..4]))
                .bind(&system.id)
                .bind(format!("{}+{tag}+{}", system.native_guid, object.native_id))
                .bind(&object.native_id)
                .bind(&object.name)
                .bind(&object.data)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                written += 1;
            }
        }
    }
    let mut vanished = 0;
    for (id, visible, _) in stored.into_values() {
        if visible {
            sqlx::query(&format!(
                "UPDATE {table} SET visible = 0, updated_at = $2 WHERE id = $1"
            ))
            .bind(&id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            vanished += 1;
        }
    }
    Ok((written + vanished, vanished))
}

/// Hosts are global: one row per identity, linked to each reporting system.
async fn write_hosts(
    tx: &mut Transaction<'static, Any>,
    system: &SystemRecord,
    inventory: &SystemInventory,
    now: i64,
) -> Result<(u64, u64), StoreError> {
    let linked = sqlx::query(
        "SELECT h.id, h.native_id, h.data, sh.visible FROM system_hosts sh \
         JOIN hosts h ON h.id = sh.host_id WHERE sh.system_id = $1",
    )
    .bind(&system.id)
    .fetch_all(&mut **tx)
    .await?;
    let mut links: HashMap<String, (String, String, bool)> = HashMap::new();
    for row in &linked {
        links.insert(
            row.try_get("native_id")?,
            (
                row.try_get("id")?,
                row.try_get("data")?,
                get_flag(row, "visible")?,
            ),
        );
    }
    let mut written = 0;
    // One order for every transaction: concurrent discoveries of systems
    // that report the same hosts lock them in the same order (no deadlock).
    let mut hosts: Vec<_> = inventory.host_components.iter().collect();
    hosts.sort_by(|a, b| a.native_id.as_str().cmp(b.native_id.as_str()));
    for host in hosts {
        let data = to_json(host);
        let (host_id, stored_data, link) = match links.remove(host.native_id.as_str()) {
            Some((id, stored, visible)) => (id, Some(stored), Some(visible)),
            None => {
                // Another system's discovery may create the same host at the
                // same moment: insert-if-absent (waits for the other
                // transaction on PostgreSQL), then read whichever row won.
                let inserted = sqlx::query(
                    "INSERT INTO hosts (id, native_id, host_name, data, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (native_id) DO NOTHING",
                )
                .bind(new_id("host"))
                .bind(host.native_id.as_str())
                .bind(host.host_name.as_str())
                .bind(&data)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                let row = sqlx::query("SELECT id, data FROM hosts WHERE native_id = $1")
                    .bind(host.native_id.as_str())
                    .fetch_one(&mut **tx)
                    .await?;
                if inserted == 1 {
                    written += 1;
                    (row.try_get("id")?, None, None)
                } else {
                    (row.try_get("id")?, Some(row.try_get("data")?), None)
                }
            }
        };
        if stored_data.as_ref().is_some_and(|stored| *stored != data) {
            sqlx::query(
                "UPDATE hosts SET host_name = $2, data = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(&host_id)
            .bind(host.host_name.as_str())
            .bind(&data)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            written += 1;
        }
        match link {
            Some(true) => {}
            Some(false) => {
                sqlx::query(
                    "UPDATE system_hosts SET visible = 1 WHERE system_id = $1 AND host_id = $2",
                )
                .bind(&system.id)
                .bind(&host_id)
                .execute(&mut **tx)
                .await?;
                written += 1;
            }
            None => {
                sqlx::query(
                    "INSERT INTO system_hosts (system_id, host_id, visible) VALUES ($1, $2, 1)",
                )
                .bind(&system.id)
                .bind(&host_id)
                .execute(&mut **tx)
                .await?;
                written += 1;
            }
        }
    }
    let mut vanished = 0;
    for (host_id, _, visible) in links.into_values() {
        if visible {
            sqlx::query(
                "UPDATE system_hosts SET visible = 0 WHERE system_id = $1 AND host_id = $2",
            )
            .bind(&system.id)
            .bind(&host_id)
            .execute(&mut **tx)
            .await?;
            vanished += 1;
        }
    }
    Ok((written + vanished, vanished))
}

async fn write_definitions(
    tx: &mut Transaction<'static, Any>,
    system_id: &str,
    definitions: &[CapabilityDefinition],
) -> Result<u64, StoreError> {
    let existing = sqlx::query("SELECT uid, data FROM capability_definitions WHERE system_id = $1")
        .bind(system_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut stored: HashMap<String, String> = HashMap::new();
    for row in &existing {
        stored.insert(row.try_get("uid")?, row.try_get("data")?);
    }
    let mut written = 0;
    for definition in definitions {
        let data = to_json(definition);
        if stored.get(definition.uid.as_str()) == Some(&data) {
            continue;
        }
        sqlx::query(
            "INSERT INTO capability_definitions (system_id, uid, data) VALUES ($1, $2, $3) \
             ON CONFLICT (system_id, uid) DO UPDATE SET data = excluded.data",
        )
        .bind(system_id)
        .bind(definition.uid.as_str())
        .bind(&data)
        .execute(&mut **tx)
        .await?;
        written += 1;
    }
    Ok(written)
}

impl Store {
    /// Systems, by name, optionally filtered.
    pub async fn systems(
        &self,
        filter: &SystemFilter,
        page: PageRequest,
    ) -> Result<Page<SystemRecord>, StoreError> {
        let condition = "(CAST($1 AS TEXT) IS NULL OR provider_id = $1) AND (CAST($2 AS TEXT) IS NULL OR system_type = $2)";
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM systems WHERE {condition}"
        ))
        .bind(filter.provider_id.clone())
        .bind(filter.system_type.clone())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {SYSTEM_COLUMNS} FROM systems WHERE {condition} \
             ORDER BY name, native_guid LIMIT $3 OFFSET $4"
        ))
        .bind(filter.provider_id.clone())
        .bind(filter.system_type.clone())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        Ok(Page {
            items: rows.iter().map(system_from_row).collect::<Result<_, _>>()?,
            total,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// One system, by id, native GUID or name.
    pub async fn system(&self, key: &str) -> Result<Option<SystemRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SYSTEM_COLUMNS} FROM systems WHERE id = $1 OR native_guid = $1 OR name = $1 \
             ORDER BY CASE WHEN id = $1 THEN 0 WHEN native_guid = $1 THEN 1 ELSE 2 END LIMIT 1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(system_from_row).transpose()
    }

    /// A system's pools, by name.
    pub async fn pools(
        &self,
        system_id: &str,
        page: PageRequest,
    ) -> Result<Page<PoolRecord>, StoreError> {
        self.system_objects("pools", system_id, page, |row, pool| {
            Ok(PoolRecord {
                id: row.try_get("id")?,
                system_id: row.try_get("system_id")?,
                native_guid: row.try_get("native_guid")?,
                discovery_status: visibility(row)?,
                pool,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .await
    }

    /// A system's ports, by name.
    pub async fn ports(
        &self,
        system_id: &str,
        page: PageRequest,
    ) -> Result<Page<PortRecord>, StoreError> {
        self.system_objects("ports", system_id, page, |row, port| {
            Ok(PortRecord {
                id: row.try_get("id")?,
                system_id: row.try_get("system_id")?,
                native_guid: row.try_get("native_guid")?,
                discovery_status: visibility(row)?,
                port,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .await
    }

    /// One page of a system's objects of `table` (`pools` or `ports`), each
    /// row and its parsed document made into a record by `record`.
    async fn system_objects<T: serde::de::DeserializeOwned, R>(
        &self,
        table: &'static str,
        system_id: &str,
        page: PageRequest,
        record: impl Fn(&AnyRow, T) -> Result<R, sqlx::Error>,
    ) -> Result<Page<R>, StoreError> {
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE system_id = $1"
        ))
        .bind(system_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT id, system_id, native_guid, visible, data, updated_at FROM {table} \
             WHERE system_id = $1 ORDER BY name, native_id LIMIT $2 OFFSET $3"
        ))
        .bind(system_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                let document = parse_json(table, &row.try_get::<String, _>("data")?)?;
                Ok(record(row, document)?)
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page {
            items,
            total,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// Hosts, by name; each once, with the systems that report it. With
    /// `system_id`, only the hosts that system reports.
    pub async fn hosts(
        &self,
        system_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<HostRecord>, StoreError> {
        let condition = "(CAST($1 AS TEXT) IS NULL OR id IN (SELECT host_id FROM system_hosts WHERE system_id = $1))";
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM hosts WHERE {condition}"
        ))
        .bind(system_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT id, native_id, host_name, data, updated_at FROM hosts WHERE {condition} \
             ORDER BY host_name, native_id LIMIT $2 OFFSET $3"
        ))
        .bind(system_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        let links = sqlx::query(&format!(
            "SELECT sh.host_id, sh.system_id, s.native_guid, sh.visible FROM system_hosts sh \
             JOIN systems s ON s.id = sh.system_id WHERE sh.host_id IN \
             (SELECT id FROM hosts WHERE {condition} ORDER BY host_name, native_id LIMIT $2 OFFSET $3) \
             ORDER BY s.native_guid"
        ))
        .bind(system_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        let mut by_host: HashMap<String, Vec<HostLink>> = HashMap::new();
        for link in &links {
            by_host
                .entry(link.try_get("host_id")?)
                .or_default()
                .push(HostLink {
                    system_id: link.try_get("system_id")?,
                    system_guid: link.try_get("native_guid")?,
                    discovery_status: visibility(link)?,
                });
        }
        let items = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(HostRecord {
                    systems: by_host.remove(&id).unwrap_or_default(),
                    id,
                    native_id: row.try_get("native_id")?,
                    host_name: row.try_get("host_name")?,
                    host: parse_json("host", &row.try_get::<String, _>("data")?)?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page {
            items,
            total,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// One host, by id or native id.
    pub async fn host(&self, key: &str) -> Result<Option<HostRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT id FROM hosts WHERE id = $1 OR native_id = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let rows = sqlx::query(
            "SELECT h.id, h.native_id, h.host_name, h.data, h.updated_at, sh.system_id, \
             s.native_guid, sh.visible FROM hosts h \
             LEFT JOIN system_hosts sh ON sh.host_id = h.id \
             LEFT JOIN systems s ON s.id = sh.system_id WHERE h.id = $1 ORDER BY s.native_guid",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut systems = Vec::new();
        for row in &rows {
            if let Some(system_id) = row.try_get::<Option<String>, _>("system_id")? {
                systems.push(HostLink {
                    system_id,
                    system_guid: row.try_get("native_guid")?,
                    discovery_status: visibility(row)?,
                });
            }
        }
        Ok(Some(HostRecord {
            id,
            native_id: first.try_get("native_id")?,
            host_name: first.try_get("host_name")?,
            host: parse_json("host", &first.try_get::<String, _>("data")?)?,
            systems,
            updated_at: first.try_get("updated_at")?,
        }))
    }

    /// Every capability definition, once per uid, with the systems declaring it.
    pub async fn capability_definitions(
        &self,
    ) -> Result<Vec<CapabilityDefinitionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT system_id, uid, data FROM capability_definitions ORDER BY uid, system_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut records: Vec<CapabilityDefinitionRecord> = Vec::new();
        for row in &rows {
            let uid: String = row.try_get("uid")?;
            let system_id: String = row.try_get("system_id")?;
            match records.last_mut() {
                Some(last) if last.definition.uid == uid.as_str() => {
                    last.system_ids.push(system_id)
                }
                _ => records.push(CapabilityDefinitionRecord {
                    definition: parse_json(
                        "capability definition",
                        &row.try_get::<String, _>("data")?,
                    )?,
                    system_ids: vec![system_id],
                }),
            }
        }
        Ok(records)
    }

    /// Writes a successful scan of `job`'s provider in one transaction:
    /// provider details; new systems created; known ones reachable again;
    /// systems no longer reported unreachable; a discovery job queued for
    /// every system never discovered. The task gets what `conclude` says.
    pub async fn complete_scan(
        &self,
        job: &ClaimedJob,
        node: &str,
        details: &ProviderDetails,
        systems: &[StorageSystem],
        next_scan_at: i64,
        conclude: impl FnOnce(&ScanWritten) -> (&'static str, String),
    ) -> Result<ScanWritten, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let provider_id = &job.target_id;
        sqlx::query(
            "UPDATE providers SET version = $2, manufacturer = $3, compatibility = 'COMPATIBLE', \
             connection_status = 'CONNECTED', scan_status = 'COMPLETE', last_scan_at = $4, \
             last_scan_success_at = $4, next_scan_at = $5, last_scan_error = NULL WHERE id = $1",
        )
        .bind(provider_id)
        .bind(details.provider_version.as_str())
        .bind(details.manufacturer.as_str())
        .bind(now)
        .bind(next_scan_at)
        .execute(&mut *tx)
        .await?;
        let mut written = ScanWritten::default();
        let mut reported = Vec::new();
        for system in systems {
            let guid = system_guid(&system.system_type, &system.native_id);
            let row = sqlx::query(
                "SELECT id, name, last_discovery_at FROM systems WHERE native_guid = $1",
            )
            .bind(&guid)
            .fetch_optional(&mut *tx)
            .await?;
            let name = if system.name.is_empty() {
                system.native_id.to_string()
            } else {
                system.name.to_string()
            };
            let (id, name, discovered) = match row {
                Some(row) => {
                    let id: String = row.try_get("id")?;
                    sqlx::query("UPDATE systems SET provider_id = $2, reachable = 1 WHERE id = $1")
                        .bind(&id)
                        .bind(provider_id)
                        .execute(&mut *tx)
                        .await?;
                    let discovered = row
                        .try_get::<Option<i64>, _>("last_discovery_at")?
                        .is_some();
                    (id, row.try_get::<String, _>("name")?, discovered)
                }
                None => {
                    let id = new_id("sys");
                    sqlx::query(
                        "INSERT INTO systems (id, native_guid, provider_id, system_type, native_id, \
                         name, serial_number, model, firmware_version, compatibility, reachable, \
                         discovery_status, next_discovery_at, data, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'UNKNOWN', 1, 'CREATED', $10, $11, $10)",
                    )
                    .bind(&id)
                    .bind(&guid)
                    .bind(provider_id)
                    .bind(system.system_type.as_str())
                    .bind(system.native_id.as_str())
                    .bind(&name)
                    .bind(system.serial_number.as_str())
                    .bind(system.model.as_str())
                    .bind(system.firmware_version.as_str())
                    .bind(now)
                    .bind(to_json(system))
                    .execute(&mut *tx)
                    .await?;
                    written.new_systems += 1;
                    (id, name, false)
                }
            };
            if !discovered {
                let task = NewTask {
                    kind: JobKind::Discover,
                    target_id: id.clone(),
                    target_name: name,
                    origin: Origin::User,
                };
                if let Some(task_id) = insert_job(&mut tx, self.backend, &task, now).await? {
                    written.discovery_tasks.push(task_id);
                }
            }
            reported.push(id);
        }
        let known = sqlx::query("SELECT id FROM systems WHERE provider_id = $1 AND reachable = 1")
            .bind(provider_id)
            .fetch_all(&mut *tx)
            .await?;
        for row in &known {
            let id: String = row.try_get("id")?;
            if !reported.contains(&id) {
                sqlx::query("UPDATE systems SET reachable = 0 WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                written.now_unreachable += 1;
            }
        }
        let (status, message) = conclude(&written);
        finish_job(&mut tx, job, node, status, &message).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Records a failed scan: provider not connected (or incompatible), the
    /// error kept, the task FAILED. Its systems are left as they were.
    pub async fn fail_scan(
        &self,
        job: &ClaimedJob,
        node: &str,
        error: &str,
        incompatible: bool,
        next_scan_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE providers SET connection_status = $2, compatibility = CASE WHEN $3 = 1 \
             THEN 'INCOMPATIBLE' ELSE compatibility END, scan_status = 'ERROR', last_scan_at = $4, \
             next_scan_at = $5, last_scan_error = $6 WHERE id = $1",
        )
        .bind(&job.target_id)
        .bind(if incompatible {
            "CONNECTED"
        } else {
            "NOTCONNECTED"
        })
        .bind(flag(incompatible))
        .bind(now)
        .bind(next_scan_at)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        finish_job(&mut tx, job, node, "FAILED", error).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a successful discovery of `job`'s system in ONE transaction,
    /// only what changed: the system's details, its pools and ports (vanished
    /// ones NOT_VISIBLE), its hosts and their links, its capability
    /// definitions; status COMPLETE. The task gets what `conclude` says.
    pub async fn complete_discovery(
        &self,
        job: &ClaimedJob,
        node: &str,
        inventory: &SystemInventory,
        definitions: &[CapabilityDefinition],
        next_discovery_at: i64,
        conclude: impl FnOnce(&DiscoveryWritten) -> (&'static str, String),
    ) -> Result<DiscoveryWritten, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {SYSTEM_COLUMNS} FROM systems WHERE id = $1"
        ))
        .bind(&job.target_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))?;
        let system = system_from_row(&row)?;
        let mut written = DiscoveryWritten::default();
        let data = to_json(&inventory.system);
        let stored_data: String = row.try_get("data")?;
        let details = &inventory.system;
        let name = if details.name.is_empty() {
            system.name.clone()
        } else {
            details.name.to_string()
        };
        if stored_data != data {
            written.rows_written += 1;
        }
        sqlx::query(
            "UPDATE systems SET name = $2, serial_number = $3, model = $4, firmware_version = $5, \
             data = $6, compatibility = 'COMPATIBLE', reachable = 1, discovery_status = 'COMPLETE', \
             last_discovery_at = $7, last_discovery_success_at = $7, next_discovery_at = $8, \
             last_discovery_error = NULL WHERE id = $1",
        )
        .bind(&system.id)
        .bind(&name)
        .bind(details.serial_number.as_str())
        .bind(details.model.as_str())
        .bind(details.firmware_version.as_str())
        .bind(&data)
        .bind(now)
        .bind(next_discovery_at)
        .execute(&mut *tx)
        .await?;
        let pools = inventory
            .pools
            .iter()
            .map(|p| ObjectRow {
                native_id: p.native_id.to_string(),
                name: p.name.to_string(),
                data: to_json(p),
            })
            .collect();
        let ports = inventory
            .ports
            .iter()
            .map(|p| ObjectRow {
                native_id: p.native_id.to_string(),
                name: p.name.to_string(),
                data: to_json(p),
            })
            .collect();
        for (rows, vanished) in [
            write_objects(&mut tx, "pools", "POOL", &system, pools, now).await?,
            write_objects(&mut tx, "ports", "PORT", &system, ports, now).await?,
            write_hosts(&mut tx, &system, inventory, now).await?,
            (
                write_definitions(&mut tx, &system.id, definitions).await?,
                0,
            ),
        ] {
            written.rows_written += rows;
            written.now_not_visible += vanished;
        }
        let (status, message) = conclude(&written);
        finish_job(&mut tx, job, node, status, &message).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Records a failed discovery: the inventory stays exactly as it was;
    /// the system gets status ERROR, the time and the error, and is
    /// unreachable; with `incompatible` (firmware the driver does not
    /// support) also INCOMPATIBLE and the reported details. The task FAILED.
    pub async fn fail_discovery(
        &self,
        job: &ClaimedJob,
        node: &str,
        error: &str,
        incompatible: Option<&StorageSystem>,
        next_discovery_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE systems SET discovery_status = 'ERROR', reachable = 0, last_discovery_at = $2, \
             next_discovery_at = $3, last_discovery_error = $4 WHERE id = $1",
        )
        .bind(&job.target_id)
        .bind(now)
        .bind(next_discovery_at)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let Some(details) = incompatible {
            sqlx::query(
                "UPDATE systems SET compatibility = 'INCOMPATIBLE', firmware_version = $2, \
                 data = $3 WHERE id = $1",
            )
            .bind(&job.target_id)
            .bind(details.firmware_version.as_str())
            .bind(to_json(details))
            .execute(&mut *tx)
            .await?;
        }
        finish_job(&mut tx, job, node, "FAILED", error).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many objects of each kind the inventory holds (visible ones).
    pub async fn object_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::new();
        for (kind, sql) in [
            ("providers", "SELECT COUNT(*) AS n FROM providers"),
            ("systems", "SELECT COUNT(*) AS n FROM systems"),
            ("pools", "SELECT COUNT(*) AS n FROM pools WHERE visible = 1"),
            ("ports", "SELECT COUNT(*) AS n FROM ports WHERE visible = 1"),
            ("hosts", "SELECT COUNT(*) AS n FROM hosts"),
        ] {
            let n: i64 = sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?;
            counts.push((kind, n));
        }
        Ok(counts)
    }
}
