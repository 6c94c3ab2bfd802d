//! The `southbound` command line: argument parsing and dispatch. Local
//! commands (`drivers list`, `probe`) load drivers themselves; `serve` and
//! `demo` run a host; client commands talk to a running host over the REST
//! API. Rendering lives in `render`; decisions in the service layer.

/// `print!` through [`emit`]: a closed stdout ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::emit(&format!($($arg)*))
    };
}

/// `println!` through [`emit`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::emit(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod client_commands;
mod host_commands;
mod render;
mod table;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use southbound_sdk::{RString, Secret, StorageProvider};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::discovery::discover_provider;
use crate::isolation::Isolation;

pub use client_commands::ClientArgs;
pub use host_commands::{DemoArgs, ServeArgs};

/// Southbound: storage drivers, discovered storage.
#[derive(Debug, Parser)]
#[command(name = "southbound", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "SOUTHBOUND_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log line format on stderr: text, or json for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SOUTHBOUND_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the drivers of a plugins directory.
    #[command(subcommand)]
    Drivers(DriversCommand),
    /// Run one full discovery of a storage provider through its driver, without a database.
    Probe(ProbeArgs),
    /// Run the controller: drivers, database, scheduler and REST API.
    Serve(ServeArgs),
    /// The main job: a ScaleIO simulator registered with a host serving in this process.
    Demo(DemoArgs),
    /// Storage providers of a running host.
    #[command(subcommand)]
    Providers(client_commands::ProvidersCommand),
    /// Scan a provider (or every provider) now.
    Scan(client_commands::ScanArgs),
    /// Discover a storage system (or every system) now.
    Discover(client_commands::DiscoverArgs),
    /// Storage systems of a running host.
    Systems(client_commands::SystemsArgs),
    /// Storage pools of a system.
    Pools(client_commands::ObjectsArgs),
    /// Storage ports of a system.
    Ports(client_commands::ObjectsArgs),
    /// Hosts, each once, with the systems that report them.
    Hosts(client_commands::HostsArgs),
    /// The whole inventory, the way CoprHD's UI lists it.
    Inventory(client_commands::InventoryArgs),
    /// Tasks, or one task.
    Tasks(client_commands::TasksArgs),
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
    /// Exit non-zero when a file is refused or no driver loads.
    #[arg(long)]
    pub strict: bool,
}

/// How to reach a storage provider (`probe`, `providers add`).
#[derive(Debug, Args)]
pub struct ConnectionArgs {
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
    /// File holding the password (one trailing newline is ignored) [default:
    /// prompt on a terminal; refused otherwise].
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// PEM certificate (a CA, or the gateway's own) to trust for the provider's TLS.
    #[arg(long, conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// SHA-256 fingerprint of the certificate the provider presents, to trust
    /// that very certificate (`AB:CD:...` or 64 hex digits).
    #[arg(long, conflicts_with = "insecure")]
    pub cert_sha256: Option<String>,
    /// Do not verify the provider's TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Talk plain HTTP instead of TLS.
    #[arg(long)]
    pub no_ssl: bool,
}

impl ConnectionArgs {
    /// The password: from `--password-file`, else typed at a terminal prompt.
    fn password(&self) -> Result<Secret> {
        if let Some(path) = &self.password_file {
            return read_password(path);
        }
        if !std::io::stdin().is_terminal() {
            bail!("no password: give --password-file FILE (standard input is not a terminal to prompt on)");
        }
        eprint!("Password for {}@{}: ", self.username, self.host);
        let _echo = EchoOff::new();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password")?;
        eprintln!();
        Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
    }

    /// The TLS pins, if any: the `--ca-cert` file and the `--cert-sha256` line.
    fn ca_certificate_pem(&self) -> Result<Option<String>> {
        pins_text(self.ca_cert.as_deref(), self.cert_sha256.as_deref())
    }
}

/// The pins (see [`southbound_sdk::pins`]) from a PEM file and a fingerprint.
pub fn pins_text(pem_file: Option<&Path>, sha256: Option<&str>) -> Result<Option<String>> {
    let mut pins = String::new();
    if let Some(path) = pem_file {
        pins = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read CA certificate {}", path.display()))?;
    }
    if let Some(fingerprint) = sha256 {
        let parsed = southbound_sdk::pins::parse_fingerprint(fingerprint)
            .map_err(|e| anyhow::anyhow!("--cert-sha256: {e}"))?;
        if !pins.is_empty() && !pins.ends_with('\n') {
            pins.push('\n');
        }
        pins.push_str(&southbound_sdk::pins::fingerprint_line(&parsed));
        pins.push('\n');
    }
    Ok(Some(pins).filter(|p| !p.is_empty()))
}

/// Turns terminal echo off for its lifetime (password prompts).
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: plain termios calls on stdin with a zeroed struct.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut term) != 0 {
                return Self(None);
            }
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &term);
            Self(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}

/// `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub plugins: PluginsArg,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Deadline of each driver call, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Systems discovered at once (each system's calls stay in order);
    /// default: the configuration's `[scheduler] max_parallel_jobs`, as
    /// `serve` discovers them.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Drivers(DriversCommand::List(args)) => {
            with_catalog(&config, &args.plugins, None, async |c| {
                drivers_list(c, &args)
            })
            .await
        }
        Command::Probe(args) => {
            let only = Some(args.connection.system_type.as_str());
            let parallel = args.parallel.map_or_else(
                || config.controller_settings().max_parallel_jobs,
                usize::from,
            );
            with_catalog(&config, &args.plugins, only, async |c| {
                probe(c, &args, parallel).await
            })
            .await
        }
        Command::Serve(args) => host_commands::serve(&config, &args).await,
        Command::Demo(args) => host_commands::demo(&config, &args).await,
        Command::Providers(command) => client_commands::providers(&config, command).await,
        Command::Scan(args) => client_commands::scan(&config, args).await,
        Command::Discover(args) => client_commands::discover(&config, args).await,
        Command::Systems(args) => client_commands::systems(&config, args).await,
        Command::Pools(args) => client_commands::pools(&config, args).await,
        Command::Ports(args) => client_commands::ports(&config, args).await,
        Command::Hosts(args) => client_commands::hosts(&config, args).await,
        Command::Inventory(args) => client_commands::inventory(&config, args).await,
        Command::Tasks(args) => client_commands::tasks(&config, args).await,
    }
}

/// Writes to stdout. When the reader has gone (`southbound ... | head`), the
/// command ends quietly with success instead of panicking on the broken pipe.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        tracing::warn!("cannot write to standard output: {e}");
    }
}

/// The error and its causes on one line, each cause once: a message that
/// already contains its cause (an error whose text includes its source)
/// does not repeat it.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Prints `value` as pretty JSON, or the text `render` makes.
fn print_json_or<T: serde::Serialize>(
    json: bool,
    value: &T,
    render: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(value)?);
    } else {
        out!("{}", render());
    }
    Ok(())
}

/// Loads the catalog (only the driver serving `only_type`, if given), runs
/// `command` with it, then stops the drivers (workers get their grace
/// period) whether the command succeeded or not.
async fn with_catalog(
    config: &Config,
    plugins: &PluginsArg,
    only_type: Option<&str>,
    command: impl AsyncFnOnce(&Catalog) -> Result<()>,
) -> Result<()> {
    let dir = config.plugins_dir(plugins.plugins.as_deref());
    let policy = config.isolation_policy(plugins.isolation);
    let catalog = match only_type {
        Some(system_type) => Catalog::load_serving(&dir, policy, system_type).await?,
        None => Catalog::load(&dir, policy).await?,
    };
    let result = command(&catalog).await;
    catalog.shutdown().await;
    result
}

fn drivers_list(catalog: &Catalog, args: &ListArgs) -> Result<()> {
    let entries = catalog.entries();
    if entries.is_empty() {
        eprintln!(
            "no drivers found in {} (driver files end in .{}){}",
            catalog.dir().display(),
            crate::loader::LIBRARY_EXTENSION,
            not_a_cdylib_hint(catalog.dir())
        );
    } else {
        print_json_or(args.json, &entries, || render::drivers(&entries))?;
    }
    let refused = entries
        .iter()
        .filter(|e| matches!(e.status, crate::catalog::PluginStatus::Refused { .. }))
        .count();
    if args.strict && (entries.is_empty() || refused > 0) {
        bail!(
            "--strict: {refused} of {} driver files refused, {} loaded",
            entries.len(),
            entries.len() - refused
        );
    }
    Ok(())
}

/// Names Rust libraries built without `crate-type = ["cdylib"]` (`.rlib`,
/// `.a`) found where drivers were expected, with the fix.
fn not_a_cdylib_hint(dir: &Path) -> String {
    let Ok(read) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let rlibs: Vec<String> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rlib" || x == "a"))
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if rlibs.is_empty() {
        return String::new();
    }
    format!(
        "; {} is a Rust library, not a driver: add `crate-type = [\"cdylib\"]` to the [lib] section of its Cargo.toml, rebuild, and copy the .{} file here",
        rlibs.join(", "),
        crate::loader::LIBRARY_EXTENSION
    )
}

async fn probe(catalog: &Catalog, args: &ProbeArgs, parallel: usize) -> Result<()> {
    let connection = &args.connection;
    let Some(driver) = catalog.driver(&connection.system_type) else {
        let known = catalog.system_types();
        bail!(
            "no driver serves storage system type '{}' (served: {})",
            connection.system_type,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let provider = StorageProvider {
        provider_type: RString::new(),
        host: connection.host.as_str().into(),
        port: connection.port,
        username: connection.username.as_str().into(),
        password: connection.password()?,
        use_ssl: !connection.no_ssl,
        ca_certificate_pem: connection.ca_certificate_pem()?.map(RString::from).into(),
        insecure: connection.insecure,
        details: Default::default(),
    };
    let report = discover_provider(
        &driver,
        &provider,
        Duration::from_secs(args.timeout),
        parallel,
    )
    .await?;
    print_json_or(args.json, &report, || render::report(&report))
}

/// Logs to stderr: the filter from `SOUTHBOUND_LOG`, else `RUST_LOG`, else
/// `default_filter` (a malformed filter is reported, not silently dropped); colour
/// only on a terminal without `NO_COLOR`; JSON lines with `--log-format json`.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let wanted = ["SOUTHBOUND_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (*name, value)));
    let (filter, bad) = match &wanted {
        Some((name, text)) => match tracing_subscriber::EnvFilter::try_new(text) {
            Ok(filter) => (filter, None),
            Err(e) => (
                tracing_subscriber::EnvFilter::new(default_filter),
                Some(format!("{name}={text:?}: {e}")),
            ),
        },
        None => (tracing_subscriber::EnvFilter::new(default_filter), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
    if let Some(bad) = bad {
        tracing::warn!("ignoring a malformed log filter, logging at {default_filter}: {bad}");
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_printed_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let inner = anyhow::anyhow!("cannot read plugins directory /x: {io}");
        let error = inner.context("cannot start");
        assert_eq!(
            super::describe_error(&error),
            "cannot start: cannot read plugins directory /x: No such file or directory (os error 2)"
        );
        let chained = anyhow::Error::new(io).context("cannot read password file /p");
        assert_eq!(
            super::describe_error(&chained),
            "cannot read password file /p: No such file or directory (os error 2)"
        );
    }
}
