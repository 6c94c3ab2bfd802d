//! `scaleio-sim`: a ScaleIO / PowerFlex gateway for demos, tests and benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use scaleio_simulator::{ApiVersion, SessionLimits, SimConfig, Simulator, TopologySpec};

/// A ScaleIO / PowerFlex gateway that speaks the real REST API.
#[derive(Debug, Parser)]
#[command(name = "scaleio-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Write the bound port to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Write the self-signed certificate (PEM) a client can pin to this file.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Gateway API version: 2.6, 3.6 or 4.5.
    #[arg(long, default_value = "3.6")]
    api_version: ApiVersion,
    /// Gateway user name.
    #[arg(long, default_value = scaleio_simulator::DEFAULT_USERNAME)]
    username: String,
    /// Gateway password.
    #[arg(long, default_value = scaleio_simulator::DEFAULT_PASSWORD)]
    password: String,
    /// `small`, `large`, or a topology file (JSON).
    #[arg(long, default_value = "small")]
    topology: String,
    /// A token unused this long expires, seconds.
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// A token expires this long after login, seconds.
    #[arg(long, default_value_t = 8 * 3600)]
    token_lifetime: u64,
    /// Logins beyond this many live sessions are refused.
    #[arg(long, default_value_t = 128)]
    max_sessions: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCALEIO_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = SimConfig {
        listen: args.listen,
        tls: !args.plain_http,
        identity: None,
        api_version: args.api_version,
        username: args.username,
        password: args.password,
        sessions: SessionLimits {
            idle_timeout: Duration::from_secs(args.idle_timeout),
            lifetime: Duration::from_secs(args.token_lifetime),
            max_sessions: args.max_sessions,
        },
        topology: TopologySpec::named_or_file(&args.topology)?,
    };
    let sim = Simulator::start(config).await?;
    if let (Some(path), Some(pem)) = (&args.cert_out, sim.cert_pem()) {
        std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.port_file {
        std::fs::write(path, sim.addr().port().to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("ScaleIO simulator at {}", sim.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
