use clap::Parser;
use southbound_host::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A worker serves one driver over its channel, synchronously: no runtime,
    // no log subscriber (its stderr becomes the host's log lines).
    if let Command::Worker(args) = &cli.command {
        return southbound_host::isolation::worker::run(&args.driver_file, args.channel_fd);
    }
    let filter =
        EnvFilter::try_from_env("SOUTHBOUND_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
