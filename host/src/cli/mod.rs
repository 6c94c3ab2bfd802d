//! The `southbound` command line.

mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use southbound_sdk::{ROption, RString, Secret, StorageProvider, SystemInventory};

use crate::config::Config;
use crate::discovery::{discover_provider, DiscoveryReport};
use crate::isolation::Isolation;
use crate::plugins::{Catalog, PluginEntry, PluginStatus};
use table::Table;

/// Southbound: storage drivers, discovered storage.
#[derive(Debug, Parser)]
#[command(name = "southbound", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "SOUTHBOUND_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the drivers of a plugins directory.
    #[command(subcommand)]
    Drivers(DriversCommand),
    /// Run one full discovery of a storage provider through its driver, without a database.
    Probe(ProbeArgs),
    /// Start a ScaleIO gateway simulator and discover it with the shipped ScaleIO driver.
    Demo(DemoArgs),
    /// Load the drivers and keep them running: SIGHUP rescans the plugins
    /// directory (upgrading replaced drivers), SIGTERM or Ctrl-C stops.
    Serve(ServeArgs),
    /// Serve one driver over the worker channel (started by the host, not by hand).
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Print the driver list as one JSON line (at start and after each rescan) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `__worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Descriptor of the channel to the host.
    #[arg(long)]
    pub channel_fd: i32,
    /// The driver library to serve.
    pub driver_file: PathBuf,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Gateway API version the simulator speaks: 2.6, 3.6 or 4.5.
    #[arg(long, default_value = "3.6")]
    pub api_version: scaleio_simulator::ApiVersion,
    /// Simulator topology: small, large, or a topology file.
    #[arg(long, default_value = "small")]
    pub topology: String,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `drivers` subcommands.
#[derive(Debug, Subcommand)]
pub enum DriversCommand {
    /// List every driver file with its status (loaded, or refused and why).
    List(ListArgs),
}

/// Where the drivers are.
#[derive(Debug, Args)]
pub struct PluginsArg {
    /// Plugins directory [default: the config file's `plugins.dir`, else ./plugins].
    #[arg(long, env = "SOUTHBOUND_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Run drivers in worker processes or in this process [default: the
    /// config file's `isolation.mode`, else worker].
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
}

/// `drivers list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    /// Storage system type; picks the driver.
    #[arg(long = "type")]
    pub system_type: String,
    /// Provider host name or address.
    #[arg(long)]
    pub host: String,
    /// Provider port.
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// User name.
    #[arg(long, default_value = "")]
    pub username: String,
    /// File holding the password (one trailing newline is ignored).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate to trust for the provider's TLS certificate.
    #[arg(long, conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the provider's TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Talk plain HTTP instead of TLS.
    #[arg(long)]
    pub no_ssl: bool,
    /// Deadline of each driver call, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Drivers(DriversCommand::List(args)) => {
            with_catalog(&config, &args.plugins, async |c| {
                print_entries(&c.entries(), args.json, true)
            })
            .await
        }
        Command::Probe(args) => {
            with_catalog(&config, &args.plugins, async |c| probe(c, &args).await).await
        }
        Command::Demo(args) => {
            with_catalog(&config, &args.plugins, async |c| demo(c, &args).await).await
        }
        Command::Serve(args) => serve(&config, &args).await,
        Command::Worker(_) => bail!("the worker mode runs before the async runtime starts"),
    }
}

/// Loads the catalog, runs `command` with it, then stops the drivers (workers
/// get their grace period) whether the command succeeded or not.
async fn with_catalog(
    config: &Config,
    plugins: &PluginsArg,
    command: impl AsyncFnOnce(&Catalog) -> Result<()>,
) -> Result<()> {
    let catalog = load_catalog(config, plugins).await?;
    let result = command(&catalog).await;
    catalog.shutdown().await;
    result
}

async fn load_catalog(config: &Config, plugins: &PluginsArg) -> Result<Catalog> {
    let dir = config.plugins_dir(plugins.plugins.as_deref());
    Ok(Catalog::load(&dir, config.isolation_policy(plugins.isolation)).await?)
}

fn print_entries(entries: &[PluginEntry], json: bool, pretty: bool) -> Result<()> {
    if json {
        let text = if pretty {
            serde_json::to_string_pretty(entries)?
        } else {
            serde_json::to_string(entries)?
        };
        println!("{text}");
        return Ok(());
    }
    let mut table = Table::new(&[
        "NAME",
        "VERSION",
        "SDK",
        "TYPES",
        "ISOLATION",
        "STATUS",
        "FILE",
        "SHA-256",
    ]);
    for entry in entries {
        let isolation = match (entry.isolation, entry.worker_pid) {
            (Some(i), Some(pid)) => format!("{i} (pid {pid})"),
            (Some(i), None) => i.to_string(),
            (None, _) => "-".into(),
        };
        let (info, status) = match &entry.status {
            PluginStatus::Loaded { info } => (Some(info), "loaded".to_string()),
            PluginStatus::Restarting { info, last_crash } => {
                (Some(info), format!("restarting: {last_crash}"))
            }
            PluginStatus::Quarantined { info, reason } => {
                (Some(info), format!("quarantined: {reason}"))
            }
            PluginStatus::Refused { reason } => (None, format!("refused: {reason}")),
        };
        let mut cells = match info {
            Some(info) => vec![
                info.name.to_string(),
                info.version.to_string(),
                info.sdk_version.to_string(),
                join(info.storage_system_types.iter()),
            ],
            None => vec!["-".into(), "-".into(), "-".into(), "-".into()],
        };
        cells.extend([
            isolation,
            status,
            entry.path.display().to_string(),
            entry.sha256.clone(),
        ]);
        table.row(cells);
    }
    print!("{}", table.render());
    Ok(())
}

async fn serve(config: &Config, args: &ServeArgs) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let catalog = load_catalog(config, &args.plugins).await?;
    print_entries(&catalog.entries(), args.json, false)?;
    tracing::info!(types = ?catalog.system_types(), "serving; SIGHUP rescans the plugins directory");
    // Reprint the list when a driver's status changes (a restart, a quarantine).
    let statuses = |catalog: &Catalog| -> Vec<String> {
        catalog
            .entries()
            .iter()
            .map(|e| {
                format!(
                    "{:?}{:?}",
                    e.worker_pid,
                    serde_json::to_string(&e.status).unwrap_or_default()
                )
            })
            .collect()
    };
    let mut last = statuses(&catalog);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = statuses(&catalog);
                if now != last {
                    print_entries(&catalog.entries(), args.json, false)?;
                    last = now;
                }
                continue;
            }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: rescanning the plugins directory");
                match catalog.rescan().await {
                    Ok(changes) if changes.is_empty() => tracing::info!("rescan: nothing changed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!("rescan failed: {e}"),
                }
                print_entries(&catalog.entries(), args.json, false)?;
                last = statuses(&catalog);
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping: workers get their grace period");
    catalog.shutdown().await;
    Ok(())
}

async fn probe(catalog: &Catalog, args: &ProbeArgs) -> Result<()> {
    let Some(driver) = catalog.driver(&args.system_type) else {
        let known = catalog.system_types();
        bail!(
            "no driver serves storage system type '{}' (served: {})",
            args.system_type,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let provider = provider_from_args(args)?;
    let report = discover_provider(
        driver.as_ref(),
        &provider,
        Duration::from_secs(args.timeout),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_report(&report));
    }
    Ok(())
}

/// The demo: a ScaleIO simulator (HTTPS, its self-signed certificate pinned)
/// discovered through the ScaleIO driver from the plugins directory.
async fn demo(catalog: &Catalog, args: &DemoArgs) -> Result<()> {
    use scaleio_simulator::{SimConfig, Simulator, TopologySpec};

    let Some(driver) = catalog.driver("scaleio") else {
        bail!("no driver serves storage system type 'scaleio': put libscaleio_driver.so in the plugins directory");
    };
    let sim = Simulator::start(SimConfig {
        api_version: args.api_version,
        topology: TopologySpec::named_or_file(&args.topology)?,
        ..SimConfig::default()
    })
    .await?;
    let provider = StorageProvider {
        provider_type: "scaleioapi".into(),
        host: sim.addr().ip().to_string().into(),
        port: sim.addr().port(),
        username: scaleio_simulator::DEFAULT_USERNAME.into(),
        password: Secret::new(scaleio_simulator::DEFAULT_PASSWORD),
        use_ssl: true,
        ca_certificate_pem: sim.cert_pem().map(RString::from).into(),
        insecure: false,
        details: Default::default(),
    };
    let report = discover_provider(driver.as_ref(), &provider, Duration::from_secs(60)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let stats = sim.state().stats();
    println!(
        "ScaleIO gateway simulator at {} (API {}, {} topology, certificate pinned)",
        sim.base_url(),
        args.api_version,
        args.topology
    );
    println!(
        "Discovered through {} {} ({}) with {} HTTP requests ({} login)\n",
        driver.info().name,
        driver.info().version,
        match driver.worker_pid() {
            Some(pid) => format!("worker pid {pid}"),
            None => driver.isolation().to_string(),
        },
        stats.requests_total,
        stats.logins
    );
    print!("{}", render_report(&report));
    Ok(())
}

fn provider_from_args(args: &ProbeArgs) -> Result<StorageProvider> {
    let password = match &args.password_file {
        Some(path) => read_password(path)?,
        None => Secret::default(),
    };
    let ca_certificate_pem = match &args.ca_cert {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read CA certificate {}", path.display()))?;
            ROption::RSome(RString::from(pem))
        }
        None => ROption::RNone,
    };
    Ok(StorageProvider {
        provider_type: RString::new(),
        host: args.host.as_str().into(),
        port: args.port,
        username: args.username.as_str().into(),
        password,
        use_ssl: !args.no_ssl,
        ca_certificate_pem,
        insecure: args.insecure,
        details: Default::default(),
    })
}

/// Reads a password file, dropping one trailing line ending.
pub fn read_password(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(Secret::new(trimmed))
}

fn join<'a, S: AsRef<str> + 'a>(items: impl IntoIterator<Item = &'a S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(",")
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// KiB to GB (GiB, as CoprHD's UI counts them), two decimals.
fn gb(kib: u64) -> String {
    format!("{:.2}", kib as f64 / (1024.0 * 1024.0))
}

fn opt<T: std::fmt::Display>(value: &ROption<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Renders a discovery report the way CoprHD's UI lists a discovered system
/// (Physical Assets > Storage Systems, then its pools, ports and hosts).
pub fn render_report(report: &DiscoveryReport) -> String {
    let mut out = String::new();
    let mut systems = Table::new(&[
        "NAME",
        "NATIVE ID",
        "TYPE",
        "SERIAL",
        "MODEL",
        "FIRMWARE",
        "SUPPORTED",
    ]);
    for inv in &report.systems {
        let s = &inv.system;
        systems.row(vec![
            s.name.to_string(),
            s.native_id.to_string(),
            s.system_type.to_string(),
            s.serial_number.to_string(),
            s.model.to_string(),
            s.firmware_version.to_string(),
            if s.is_supported_version { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&format!(
        "Storage systems ({})\n{}",
        report.systems.len(),
        systems.render()
    ));
    for inv in &report.systems {
        out.push_str(&render_inventory(inv));
    }
    let mut caps = Table::new(&["UID", "CATEGORY", "PROPERTIES"]);
    for d in &report.capability_definitions {
        caps.row(vec![
            d.uid.to_string(),
            d.category.to_string(),
            join(d.property_names.iter()),
        ]);
    }
    out.push_str(&format!(
        "\nCapability definitions ({})\n{}",
        report.capability_definitions.len(),
        caps.render()
    ));
    out
}

fn render_inventory(inv: &SystemInventory) -> String {
    let name = if inv.system.name.is_empty() {
        &inv.system.native_id
    } else {
        &inv.system.name
    };
    let mut pools = Table::new(&[
        "NAME",
        "NATIVE ID",
        "TOTAL GB",
        "FREE GB",
        "SUBSCRIBED GB",
        "PROVISIONING",
        "DRIVE TYPES",
        "STATUS",
    ]);
    for p in &inv.pools {
        pools.row(vec![
            p.name.to_string(),
            p.native_id.to_string(),
            gb(p.total_capacity_kib),
            gb(p.free_capacity_kib),
            gb(p.subscribed_capacity_kib),
            p.resource_type.to_string(),
            list(&p.supported_drive_types),
            p.operational_status.to_string(),
        ]);
    }
    let mut ports = Table::new(&[
        "NAME",
        "NETWORK ID",
        "TRANSPORT",
        "IP ADDRESS",
        "TCP PORT",
        "HA ZONE",
        "STATUS",
    ]);
    for p in &inv.ports {
        ports.row(vec![
            p.name.to_string(),
            p.port_network_id.to_string(),
            p.transport_type.to_string(),
            p.ip_address.to_string(),
            opt(&p.tcp_port),
            p.ha_zone.to_string(),
            p.operational_status.to_string(),
        ]);
    }
    let mut hosts = Table::new(&["HOST", "NATIVE ID", "OS", "INITIATORS", "STATUS"]);
    for h in &inv.host_components {
        let initiators: Vec<String> = h
            .initiators
            .iter()
            .map(|i| format!("{} {}", i.protocol, i.port))
            .collect();
        hosts.row(vec![
            h.host_name.to_string(),
            h.native_id.to_string(),
            h.os_type.to_string(),
            initiators.join(", "),
            h.operational_status.to_string(),
        ]);
    }
    format!(
        "\nStorage pools of {name} ({})\n{}\nStorage ports of {name} ({})\n{}\nHosts of {name} ({})\n{}",
        inv.pools.len(),
        pools.render(),
        inv.ports.len(),
        ports.render(),
        inv.host_components.len(),
        hosts.render()
    )
}
