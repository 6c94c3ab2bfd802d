//! `southbound-conformance`: runs the suite against one driver file and one
//! live target; prints each check, a summary, and writes JUnit / JSON
//! reports on request. Exits 1 when a check failed, 2 when it cannot run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use regex::Regex;
use southbound_conformance::{report, run, Options, TargetArgs};
use southbound_host::cli::{describe_error, init_logging, LogFormat};

/// Checks that a Southbound driver keeps the SDK's contract against a live target.
#[derive(Debug, Parser)]
#[command(name = "southbound-conformance", version)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    /// Read settings from a TOML file (keys as the flags: driver, type, host,
    /// port, username, password-file, ca-cert, insecure, no-ssl, isolation,
    /// call-timeout); flags override it.
    #[arg(long = "target", value_name = "FILE.toml")]
    target_file: Option<PathBuf>,
    /// Run only the checks whose name matches this regular expression.
    #[arg(long, value_name = "PATTERN")]
    focus: Option<Regex>,
    /// Skip the checks whose name matches this regular expression.
    #[arg(long, value_name = "PATTERN")]
    skip: Option<Regex>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// List the checks and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    // Worker isolation re-runs this binary as the driver's worker.
    if let Some(code) = southbound_host::isolation::worker::run_if_worker() {
        return code;
    }
    let cli = Cli::parse();
    // Driver log lines are forwarded at info; a report reads better without.
    init_logging(LogFormat::Text, "warn");
    if cli.list {
        for check in southbound_conformance::checks::CHECKS {
            println!("{:<34} {}", check.name, check.description);
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("conformance")
        .enable_all()
        .build();
    let outcome = runtime
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(suite(cli)));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {}", describe_error(&error));
            ExitCode::from(2)
        }
    }
}

/// Runs the suite; `Ok(false)` when a check failed.
async fn suite(cli: Cli) -> Result<bool> {
    let from_file = cli
        .target_file
        .as_deref()
        .map(TargetArgs::from_file)
        .transpose()?
        .unwrap_or_default();
    let target = cli.target.or(from_file).into_target()?;
    println!(
        "southbound-conformance {}: {} against {}:{} ({} isolation)",
        env!("CARGO_PKG_VERSION"),
        target.driver.display(),
        target.host,
        target.port,
        target.isolation
    );
    let options = Options {
        focus: cli.focus,
        skip: cli.skip,
        worker_exe: None,
    };
    let report = run(target, &options, |check| {
        println!("{}", report::line(check))
    })
    .await;
    println!("{}", report.summary());
    if let Some(path) = &cli.junit {
        std::fs::write(path, report::junit(&report))
            .with_context(|| format!("cannot write JUnit report {}", path.display()))?;
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, report::json(&report))
            .with_context(|| format!("cannot write JSON report {}", path.display()))?;
    }
    Ok(report.passed())
}
