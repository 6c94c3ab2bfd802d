//! Logging for drivers.
//!
//! A driver library cannot share the host's `tracing` subscriber (each
//! cdylib has its own copy of every static), so drivers log through these
//! functions, which write one line per event to stderr:
//! `southbound-driver <LEVEL> <message>`. Run in a worker process, the host
//! turns those lines into its own log events tagged with the driver name and
//! pid. Never log a password or token.

use std::fmt::Display;
use std::io::Write;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something the operator should look at.
    Warn,
    /// Normal operation.
    Info,
    /// Detail for troubleshooting.
    Debug,
}

impl Level {
    /// The level's name as written in the line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }
}

/// Prefix of every driver log line.
pub const LINE_PREFIX: &str = "southbound-driver";

/// Writes one log line. Newlines in the message are escaped so that one
/// event stays one line.
pub fn log(level: Level, message: impl Display) {
    let message = message.to_string().replace('\n', "\\n");
    // A failed write to stderr has nowhere to be reported.
    let _ = writeln!(
        std::io::stderr().lock(),
        "{LINE_PREFIX} {} {message}",
        level.as_str()
    );
}

/// [`log`] at [`Level::Warn`].
pub fn warn(message: impl Display) {
    log(Level::Warn, message);
}

/// [`log`] at [`Level::Info`].
pub fn info(message: impl Display) {
    log(Level::Info, message);
}

/// [`log`] at [`Level::Debug`].
pub fn debug(message: impl Display) {
    log(Level::Debug, message);
}

/// Parses a line written by [`log`]: `(level, message)`.
pub fn parse_line(line: &str) -> Option<(Level, &str)> {
    let rest = line.strip_prefix(LINE_PREFIX)?.strip_prefix(' ')?;
    let (level, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let level = match level {
        "ERROR" => Level::Error,
        "WARN" => Level::Warn,
        "INFO" => Level::Info,
        "DEBUG" => Level::Debug,
        _ => return None,
    };
    Some((level, message))
}
