//! Tasks and jobs. A job is one pending or running scan or discovery; its
//! task is what operators poll. Jobs are claimed with a lease that the
//! running node renews; an expired lease lets another node take the job
//! over. At most one job per (kind, target): a request for a target that
//! already has one joins it.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{new_id, now_ms, Backend, Page, PageRequest, Store, StoreError, TaskRecord};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Scan a provider (target: provider id).
    Scan,
    /// Discover a system (target: system id).
    Discover,
}

impl JobKind {
    /// Name in the database and in tasks.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Discover => "discover",
        }
    }

    fn target_table(self) -> &'static str {
        match self {
            Self::Scan => "providers",
            Self::Discover => "systems",
        }
    }

    fn target_kind(self) -> &'static str {
        match self {
            Self::Scan => "provider",
            Self::Discover => "system",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "scan" => Some(Self::Scan),
            "discover" => Some(Self::Discover),
            _ => None,
        }
    }
}

/// Who asked for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An operator (API, CLI, web), or a scan that found a new system.
    User,
    /// The periodic schedule.
    Scheduler,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Scheduler => "scheduler",
        }
    }
}

/// A task to create with a job.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// What to do.
    pub kind: JobKind,
    /// Provider or system id.
    pub target_id: String,
    /// Its name, for people.
    pub target_name: String,
    /// Who asked.
    pub origin: Origin,
}

/// A job this node holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Job id.
    pub id: String,
    /// What to do.
    pub kind: JobKind,
    /// Provider or system id.
    pub target_id: String,
    /// The task operators poll.
    pub task_id: String,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
    /// The node that held it before, if its lease expired.
    pub previous_owner: Option<String>,
}

const TASK_COLUMNS: &str = "id, operation, target_kind, target_id, target_name, status, progress, \
    message, origin, node, created_at, started_at, ended_at";

fn task_from_row(row: &AnyRow) -> Result<TaskRecord, sqlx::Error> {
    Ok(TaskRecord {
        id: row.try_get("id")?,
        operation: row.try_get("operation")?,
        target_kind: row.try_get("target_kind")?,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        status: row.try_get("status")?,
        progress: u8::try_from(row.try_get::<i64, _>("progress")?.clamp(0, 100)).unwrap_or(0),
        message: row.try_get("message")?,
        origin: row.try_get("origin")?,
        node: row.try_get("node")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// Creates the job and its task unless one exists for the target; returns
/// the new task id, or `None` when a job was already there.
pub(super) async fn insert_job(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    task: &NewTask,
    due_at: i64,
) -> Result<Option<String>, StoreError> {
    // Lock order, everywhere: the target's row, then its job. (A request and
    // another host's scheduler queueing the same target would otherwise
    // deadlock on PostgreSQL.)
    if backend == Backend::Postgres {
        sqlx::query(&format!(
            "SELECT id FROM {} WHERE id = $1 FOR UPDATE",
            task.kind.target_table()
        ))
        .bind(&task.target_id)
        .fetch_optional(&mut **tx)
        .await?;
    }
    let job_id = new_id("job");
    let task_id = new_id("task");
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, kind, target_id, task_id, origin, due_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (kind, target_id) DO NOTHING",
    )
    .bind(&job_id)
    .bind(task.kind.as_str())
    .bind(&task.target_id)
    .bind(&task_id)
    .bind(task.origin.as_str())
    .bind(due_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO tasks (id, operation, target_kind, target_id, target_name, status, progress, \
         message, origin, created_at) VALUES ($1, $2, $3, $4, $5, 'QUEUED', 0, 'Queued', $6, $7)",
    )
    .bind(&task_id)
    .bind(task.kind.as_str())
    .bind(task.kind.target_kind())
    .bind(&task.target_id)
    .bind(&task.target_name)
    .bind(task.origin.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    let status_sql = match task.kind {
        JobKind::Scan => "UPDATE providers SET scan_status = 'SCHEDULED' WHERE id = $1",
        JobKind::Discover => "UPDATE systems SET discovery_status = 'SCHEDULED' WHERE id = $1",
    };
    sqlx::query(status_sql)
        .bind(&task.target_id)
        .execute(&mut **tx)
        .await?;
    Ok(Some(task_id))
}

/// Ends a job: its task gets `status` and `message`, the job row goes.
/// Fails with [`StoreError::LeaseLost`] if `node` no longer holds it.
pub(super) async fn finish_job(
    tx: &mut Transaction<'static, Any>,
    job: &ClaimedJob,
    node: &str,
    status: &str,
    message: &str,
) -> Result<(), StoreError> {
    let deleted = sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_owner = $2")
        .bind(&job.id)
        .bind(node)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(StoreError::LeaseLost(job.id.clone()));
    }
    let message = match &job.previous_owner {
        Some(previous) => {
            format!("{message} (taken over from node {previous}, whose lease expired)")
        }
        None => message.to_string(),
    };
    sqlx::query(
        "UPDATE tasks SET status = $2, progress = 100, message = $3, ended_at = $4 WHERE id = $1",
    )
    .bind(&job.task_id)
    .bind(status)
    .bind(&message)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// An on-demand job: runs at once. If the target already has a job, that
    /// one is made due now and its task is returned.
    pub async fn request_job(&self, task: &NewTask) -> Result<TaskRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let task_id = match insert_job(&mut tx, self.backend, task, now).await? {
            Some(id) => id,
            None => {
                sqlx::query(
                    "UPDATE jobs SET due_at = $3 WHERE kind = $1 AND target_id = $2 AND due_at > $3",
                )
                .bind(task.kind.as_str())
                .bind(&task.target_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("SELECT task_id FROM jobs WHERE kind = $1 AND target_id = $2")
                    .bind(task.kind.as_str())
                    .bind(&task.target_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("task_id")?
            }
        };
        tx.commit().await?;
        self.task(&task_id)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Queues the periodic jobs that are due: scans of providers whose
    /// `next_scan_at` has come, discoveries of systems whose
    /// `next_discovery_at` has come, never sooner than `min_*_interval_ms`
    /// after the last run (CoprHD's refresh-interval guard). Returns how many
    /// jobs were queued. Safe to run on several nodes at once.
    pub async fn queue_due_jobs(
        &self,
        min_scan_interval_ms: i64,
        min_discovery_interval_ms: i64,
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        // Due: its time has come, its last run is older than the guard, no job yet.
        let kinds = [
            (
                JobKind::Scan,
                "providers",
                "next_scan_at <= $1 AND (last_scan_at IS NULL OR last_scan_at <= $2) \
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'scan' AND j.target_id = t.id)",
                now - min_scan_interval_ms,
            ),
            (
                JobKind::Discover,
                "systems",
                "provider_id IS NOT NULL AND next_discovery_at <= $1 \
                 AND (last_discovery_at IS NULL OR last_discovery_at <= $2) \
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'discover' AND j.target_id = t.id)",
                now - min_discovery_interval_ms,
            ),
        ];
        // On PostgreSQL the target's row is locked and the condition checked
        // again: a host that just finished this target's job (and moved its
        // next run) commits first, so no second run slips into one cycle.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF t",
            Backend::Sqlite => "",
        };
        let mut queued = 0;
        for (kind, table, due, guard) in kinds {
            let candidates = sqlx::query(&format!("SELECT id, name FROM {table} t WHERE {due}"))
                .bind(now)
                .bind(guard)
                .fetch_all(&self.pool)
                .await?;
            for row in candidates {
                let task = NewTask {
                    kind,
                    target_id: row.try_get("id")?,
                    target_name: row.try_get("name")?,
                    origin: Origin::Scheduler,
                };
                let mut tx = self.pool.begin().await?;
                let still_due = sqlx::query(&format!(
                    "SELECT id FROM {table} t WHERE id = $3 AND {due}{lock}"
                ))
                .bind(now)
                .bind(guard)
                .bind(&task.target_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                if still_due
                    && insert_job(&mut tx, self.backend, &task, now)
                        .await?
                        .is_some()
                {
                    queued += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(queued)
    }

    /// Claims the oldest due job that nobody holds (or whose holder's lease
    /// expired) for `node`, with a lease of `lease_ms`, and marks its task
    /// running.
    pub async fn claim_job(
        &self,
        node: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let candidate_sql = match self.backend {
            Backend::Postgres => {
                "SELECT id, kind, target_id, task_id, attempts, lease_owner FROM jobs \
                 WHERE due_at <= $1 AND (lease_owner IS NULL OR lease_expires_at < $1) \
                 ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
            // One connection, one writer: the transaction is the lock.
            Backend::Sqlite => {
                "SELECT id, kind, target_id, task_id, attempts, lease_owner FROM jobs \
                 WHERE due_at <= $1 AND (lease_owner IS NULL OR lease_expires_at < $1) \
                 ORDER BY due_at, id LIMIT 1"
            }
        };
        let Some(row) = sqlx::query(candidate_sql)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        let job = ClaimedJob {
            id: row.try_get("id")?,
            kind: JobKind::parse(&kind).ok_or(StoreError::Corrupt {
                what: "job kind",
                error: kind.clone(),
            })?,
            target_id: row.try_get("target_id")?,
            task_id: row.try_get("task_id")?,
            attempts: row.try_get::<i64, _>("attempts")? + 1,
            previous_owner: row
                .try_get::<Option<String>, _>("lease_owner")?
                .filter(|owner| owner != node),
        };
        sqlx::query(
            "UPDATE jobs SET lease_owner = $2, lease_expires_at = $3, attempts = attempts + 1 \
             WHERE id = $1",
        )
        .bind(&job.id)
        .bind(node)
        .bind(now + lease_ms)
        .execute(&mut *tx)
        .await?;
        let message = match &job.previous_owner {
            Some(previous) => format!(
                "Started on node {node}; taken over from node {previous}, whose lease expired"
            ),
            None => format!("Started on node {node}"),
        };
        sqlx::query(
            "UPDATE tasks SET status = 'PROVISIONING', progress = 5, message = $2, node = $3, \
             started_at = $4 WHERE id = $1",
        )
        .bind(&job.task_id)
        .bind(&message)
        .bind(node)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // After the commit, on its own: a claim holds the job row, and taking
        // the target's row too would invert the lock order of a request
        // (target, then job) and deadlock with it.
        let status_sql = match job.kind {
            JobKind::Scan => "UPDATE providers SET scan_status = 'IN_PROGRESS' WHERE id = $1",
            JobKind::Discover => {
                "UPDATE systems SET discovery_status = 'IN_PROGRESS' WHERE id = $1"
            }
        };
        if let Err(e) = sqlx::query(status_sql)
            .bind(&job.target_id)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(job = %job.id, "cannot mark the target in progress: {e}");
        }
        Ok(Some(job))
    }

    /// Extends `node`'s lease on a job; `false` if it no longer holds it.
    pub async fn renew_lease(
        &self,
        job: &ClaimedJob,
        node: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE jobs SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2")
                .bind(&job.id)
                .bind(node)
                .bind(now_ms() + lease_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives back every job `node` holds (graceful stop), so another node
    /// takes them at once. Returns how many.
    pub async fn release_jobs(&self, node: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Jobs first, then their tasks: the order a claim takes them in.
        let released = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1 \
             RETURNING task_id",
        )
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        for row in &released {
            sqlx::query("UPDATE tasks SET status = 'QUEUED', message = $2 WHERE id = $1")
                .bind(row.try_get::<String, _>("task_id")?)
                .bind(format!(
                    "Queued again: node {node} stopped before finishing"
                ))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    /// Records a running task's progress (percent and message).
    pub async fn task_progress(
        &self,
        task_id: &str,
        progress: u8,
        message: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET progress = $2, message = $3 WHERE id = $1 AND status = 'PROVISIONING'")
            .bind(task_id)
            .bind(i64::from(progress))
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Jobs not yet finished (waiting or running).
    pub async fn pending_jobs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM jobs")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Tasks, newest first.
    pub async fn tasks(&self, page: PageRequest) -> Result<Page<TaskRecord>, StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tasks")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
        ))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        Ok(Page {
            items: rows.iter().map(task_from_row).collect::<Result<_, _>>()?,
            total,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// One task.
    pub async fn task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(task_from_row).transpose()?)
    }
}
