use clap::Parser;
use southbound_host::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    // A worker serves one driver over its channel, synchronously: no runtime,
    // no log subscriber (its stderr becomes the host's log lines).
    if let Some(code) = southbound_host::isolation::worker::run_if_worker() {
        return code;
    }
    let cli = Cli::parse();
    cli::init_logging(cli.log_format, "info");
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
