use std::io::IsTerminal;

use clap::Parser;
use southbound_host::cli::{self, Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

/// Logs to stderr: the filter from `SOUTHBOUND_LOG`, else `RUST_LOG`, else
/// `info` (a malformed filter is reported, not silently dropped); colour
/// only on a terminal without `NO_COLOR`; JSON lines with `--log-format json`.
fn init_logging(format: LogFormat) {
    let wanted = ["SOUTHBOUND_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (*name, value)));
    let (filter, bad) = match &wanted {
        Some((name, text)) => match EnvFilter::try_new(text) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("{name}={text:?}: {e}")),
            ),
        },
        None => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
    if let Some(bad) = bad {
        tracing::warn!("ignoring a malformed log filter, logging at info: {bad}");
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A worker serves one driver over its channel, synchronously: no runtime,
    // no log subscriber (its stderr becomes the host's log lines).
    if let Command::Worker(args) = &cli.command {
        return southbound_host::isolation::worker::run(&args.driver_file, args.channel_fd);
    }
    init_logging(cli.log_format);
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
            eprintln!("error: {}", cli::describe_error(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
