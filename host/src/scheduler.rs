//! The scheduler: queues periodic scans and discoveries when they are due,
//! claims jobs from the database (any host's, on-demand or periodic) up to
//! the parallel limit, runs them with a renewed lease, and on stop lets
//! running jobs finish within a grace period, then releases the rest.
//!
//! The database is the only coordination: several hosts run this loop over
//! one PostgreSQL; the job table's uniqueness and leases keep each job on
//! one host at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::service::Controller;
use crate::store::ClaimedJob;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs the scheduler until `stop` turns true.
pub async fn run(controller: Arc<Controller>, mut stop: watch::Receiver<bool>) {
    let settings = controller.settings().clone();
    let node = controller.node().to_string();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut backoff = settings.poll_interval;
    tracing::info!(node = %node, parallel = settings.max_parallel_jobs, "scheduler started");
    while !*stop.borrow() {
        let woken = controller.woken();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let mut failed = false;
        if let Err(e) = controller
            .store()
            .queue_due_jobs(
                millis(settings.min_scan_interval),
                millis(settings.min_discovery_interval),
            )
            .await
        {
            tracing::warn!("cannot queue due jobs: {e}");
            failed = true;
        }
        while !failed && running.len() < settings.max_parallel_jobs {
            match controller
                .store()
                .claim_job(&node, millis(settings.lease))
                .await
            {
                Ok(Some(job)) => {
                    let controller = Arc::clone(&controller);
                    running.spawn(async move { run_with_lease(&controller, job).await });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("cannot claim a job: {e}");
                    failed = true;
                }
            }
        }
        controller.set_healthy(!failed);
        // Retry a failing database with backoff; otherwise poll as configured.
        let wait = if failed {
            backoff = (backoff * 2).min(Duration::from_secs(30));
            backoff
        } else {
            backoff = settings.poll_interval;
            settings.poll_interval
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(wait) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!(
        running = running.len(),
        "scheduler stopping: running jobs get {} s to finish",
        settings.shutdown_grace.as_secs()
    );
    let drained = tokio::time::timeout(settings.shutdown_grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
    match controller.store().release_jobs(&node).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("released {n} unfinished jobs for other hosts"),
        Err(e) => tracing::warn!("cannot release jobs (their leases will expire): {e}"),
    }
}

/// Runs `job`, renewing its lease at a third of its length until it ends.
async fn run_with_lease(controller: &Controller, job: ClaimedJob) {
    let lease = controller.settings().lease;
    let renew = async {
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            match controller
                .store()
                .renew_lease(&job, controller.node(), millis(lease))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = %job.id, "lease lost to another host; its result will not be written");
                    std::future::pending::<()>().await;
                }
                Err(e) => tracing::warn!(job = %job.id, "cannot renew the lease: {e}"),
            }
        }
    };
    tokio::select! {
        _ = controller.run_job(&job) => {}
        _ = renew => {}
    }
}
