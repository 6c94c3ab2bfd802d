//! `serve` and `demo`: commands that run a host in this process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{render, PluginsArg};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::serve::{self, HostOptions, RunningHost};

/// Default API listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Data directory [default: the config's `server.data_dir`, else
    /// $XDG_DATA_HOME/southbound or ~/.local/share/southbound].
    #[arg(long, env = "SOUTHBOUND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL [default: the config's `server.database_url`, else SQLite in the data directory].
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// API listen address; port 0 picks a free port [default: the config's `server.listen`, else 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Write the API's port to this file once listening.
    #[arg(long)]
    pub port_file: Option<PathBuf>,
    /// API token file [default: api.token in the data directory, created on first start].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print the driver list as one JSON line (at start and on each change) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Gateway API version the simulator speaks: 2.6, 3.6 or 4.5.
    #[arg(long, default_value = "3.6")]
    pub api_version: String,
    /// Simulator topology: small, large, or a topology file.
    #[arg(long, default_value = "small")]
    pub topology: String,
    /// Print the inventory as one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Exit after printing the inventory instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

fn print_drivers(host: &RunningHost, json: bool) -> Result<()> {
    let entries = host.controller.drivers();
    if json {
        outln!("{}", serde_json::to_string(&entries)?);
    } else {
        out!("{}", render::drivers(&entries));
    }
    Ok(())
}

pub(super) async fn serve(config: &Config, args: &ServeArgs) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let data_dir = DataDir::resolve(
        args.data_dir
            .as_deref()
            .or(config.server.data_dir.as_deref()),
    )?;
    let listen = match args.listen.or(config.server.listen) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse()?,
    };
    let host = serve::start(HostOptions {
        plugins_dir: config.plugins_dir(args.plugins.plugins.as_deref()),
        policy: config.isolation_policy(args.plugins.isolation),
        data_dir: data_dir.clone(),
        database_url: args
            .database_url
            .clone()
            .or_else(|| config.server.database_url.clone()),
        listen,
        token_file: args.token_file.clone(),
        settings: config.controller_settings(),
        node: None,
    })
    .await?;
    if let Some(port_file) = &args.port_file {
        let port = host.url.rsplit(':').next().unwrap_or_default();
        std::fs::write(port_file, format!("{port}\n"))
            .with_context(|| format!("cannot write {}", port_file.display()))?;
    }
    outln!(
        "Southbound serving at {} (web console {}/ui; data directory {}, API token in {})",
        host.url,
        host.url,
        data_dir.path().display(),
        host.token_file.display()
    );
    print_drivers(&host, args.json)?;
    let mut changes = host.controller.catalog().subscribe();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() { break; }
                print_drivers(&host, args.json)?;
            }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: rescanning the plugins directory");
                match host.controller.rescan_drivers().await {
                    Ok(changes) if changes.is_empty() => tracing::info!("rescan: nothing changed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!("rescan failed: {e}"),
                }
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping: running jobs finish or are released; workers get their grace period");
    host.shutdown().await;
    Ok(())
}

#[cfg(not(feature = "demo"))]
pub(super) async fn demo(_config: &Config, _args: &DemoArgs) -> Result<()> {
    anyhow::bail!(
        "this build has no demo: build with `cargo build -p southbound-host --features demo` (scripts/demo.sh does)"
    )
}

/// The demo: a ScaleIO simulator (HTTPS, its certificate pinned) registered
/// with a host serving in this process on a fresh SQLite data directory.
#[cfg(feature = "demo")]
pub(super) async fn demo(config: &Config, args: &DemoArgs) -> Result<()> {
    use scaleio_simulator::{SimConfig, Simulator, TopologySpec};
    use southbound_sdk::Secret;

    use crate::service::ProviderRequest;

    let api_version = args
        .api_version
        .parse()
        .map_err(|e| anyhow::anyhow!("--api-version: {e}"))?;
    let sim = Simulator::start(SimConfig {
        api_version,
        topology: TopologySpec::named_or_file(&args.topology)?,
        ..SimConfig::default()
    })
    .await?;
    let data_dir = tempfile_dir()?;
    let host = serve::start(HostOptions {
        plugins_dir: config.plugins_dir(args.plugins.plugins.as_deref()),
        policy: config.isolation_policy(args.plugins.isolation),
        data_dir: DataDir::resolve(Some(&data_dir))?,
        database_url: None,
        listen: "127.0.0.1:0".parse()?,
        token_file: None,
        settings: config.controller_settings(),
        node: None,
    })
    .await?;
    let result = demo_run(&host, &sim, args).await;
    if result.is_ok() && !args.once {
        outln!(
            "\nServing at {} until Ctrl-C (web console {}/ui; sign in with the token in {})\nTry:  target/debug/southbound inventory --data-dir {}",
            host.url,
            host.url,
            host.token_file.display(),
            data_dir.display()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    host.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    return result;

    async fn demo_run(host: &RunningHost, sim: &Simulator, args: &DemoArgs) -> Result<()> {
        let controller = &host.controller;
        let (provider, scan) = controller
            .register_provider(ProviderRequest {
                system_type: "scaleio".into(),
                host: sim.addr().ip().to_string(),
                port: Some(sim.addr().port()),
                username: scaleio_simulator::DEFAULT_USERNAME.into(),
                password: Secret::new(scaleio_simulator::DEFAULT_PASSWORD),
                name: Some("scaleio-sim".into()),
                use_ssl: Some(true),
                ca_certificate_pem: sim.cert_pem().map(str::to_string),
                insecure: false,
            })
            .await?;
        let scan = controller.wait_task(&scan.id).await?;
        if !scan.status.eq("READY") {
            anyhow::bail!(
                "scan of the simulator ended {}: {}",
                scan.status,
                scan.message
            );
        }
        controller.wait_discoveries(&provider.id).await?;
        let inventory = controller.inventory().await?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&inventory)?);
            return Ok(());
        }
        let stats = sim.state().stats();
        outln!(
            "ScaleIO gateway simulator at {} (API {}, {} topology, certificate pinned)",
            sim.base_url(),
            args.api_version,
            args.topology
        );
        outln!(
            "Registered with Southbound at {}; scanned and discovered with {} HTTP requests ({} login)\n",
            host.url, stats.requests_total, stats.logins
        );
        out!("{}", render::inventory(&inventory, false));
        Ok(())
    }
}

/// A fresh private temporary directory for the demo's data.
#[cfg(feature = "demo")]
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "southbound-demo-{}-{}",
        std::process::id(),
        crate::store::now_ms()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
