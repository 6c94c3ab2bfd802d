//! A running controller host: data directory, store, drivers, service
//! layer, scheduler and REST API on one listener. `southbound serve` and
//! `southbound demo` both start one; so do the tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, IsolationPolicy};
use crate::datadir::DataDir;
use crate::secrets::Sealer;
use crate::service::{Controller, ControllerSettings};
use crate::store::{redact_url, Store};

/// Everything a host needs to start.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The plugins directory.
    pub plugins_dir: PathBuf,
    /// How drivers run.
    pub policy: IsolationPolicy,
    /// Data directory (SQLite file, secret key, token, server URL).
    pub data_dir: DataDir,
    /// PostgreSQL URL; `None` for the embedded SQLite in the data directory.
    pub database_url: Option<String>,
    /// Where the API listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Token file to use instead of the data directory's.
    pub token_file: Option<PathBuf>,
    /// Scheduling.
    pub settings: ControllerSettings,
    /// This host's node name; default `<hostname>-<pid>`.
    pub node: Option<String>,
}

/// A started host. Call [`RunningHost::shutdown`] to stop it gracefully.
pub struct RunningHost {
    /// The API's base URL (`http://addr:port`).
    pub url: String,
    /// The service layer.
    pub controller: Arc<Controller>,
    /// The API token.
    pub token: String,
    /// Where the token is kept.
    pub token_file: PathBuf,
    data_dir: DataDir,
    stop: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    server: JoinHandle<()>,
}

/// `<hostname>-<pid>`: unique among hosts sharing a database.
pub fn default_node_name() -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{hostname}-{}", std::process::id())
}

/// Starts a host: migrates the database, loads the drivers, binds the API,
/// writes its URL to the data directory, starts the scheduler.
pub async fn start(options: HostOptions) -> Result<RunningHost> {
    options
        .settings
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid [scheduler] settings: {e}"))?;
    let data_dir = options.data_dir;
    data_dir
        .create()
        .with_context(|| format!("cannot create data directory {}", data_dir.path().display()))?;
    let sealer = Sealer::from_env_or_file(&data_dir.secret_key_file())?;
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| data_dir.sqlite_url());
    let store = Store::open(&url, sealer)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    tracing::info!(database = %redact_url(&url), "database ready");
    let token = data_dir
        .api_token(options.token_file.as_deref())
        .context("cannot read or create the API token")?;
    let token_file = options
        .token_file
        .clone()
        .unwrap_or_else(|| data_dir.token_file());
    let catalog = Arc::new(Catalog::load(&options.plugins_dir, options.policy).await?);
    let node = options.node.unwrap_or_else(default_node_name);
    let controller = Arc::new(Controller::new(
        store,
        Arc::clone(&catalog),
        options.settings,
        node,
    ));

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    std::fs::write(data_dir.server_file(), format!("{url}\n"))
        .with_context(|| format!("cannot write {}", data_dir.server_file().display()))?;

    let (stop, stop_rx) = watch::channel(false);
    let app = crate::api::app(Arc::clone(&controller), &token);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("API server failed: {e}");
        }
    });
    let scheduler = tokio::spawn(crate::scheduler::run(Arc::clone(&controller), stop_rx));
    tracing::info!(url = %url, node = %controller.node(), "serving");
    Ok(RunningHost {
        url,
        controller,
        token,
        token_file,
        data_dir,
        stop,
        scheduler,
        server,
    })
}

impl RunningHost {
    /// Stops gracefully: no new jobs; running ones finish within the grace
    /// period or are released to other hosts; the API stops; workers get
    /// their grace period.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.scheduler.await;
        let _ = self.server.await;
        self.controller.catalog().shutdown().await;
        let _ = std::fs::remove_file(self.data_dir.server_file());
        self.controller.store().close().await;
    }
}
