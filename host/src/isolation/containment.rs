//! What a worker sets up for itself first thing after `exec`, while it is
//! still single-threaded, and how it reports the outcome.
//!
//! - A PID namespace of its own ([`namespace`](super::namespace)): what a
//!   driver starts ends with its worker, and no outside process is visible.
//! - Landlock signal scoping (Linux 6.12 and later): the worker's processes
//!   cannot signal any process outside them, the host and other workers
//!   included. It holds where no namespace can be made, and covers what the
//!   seccomp filter ([`sandbox`](super::sandbox)) cannot express ("not
//!   ours") beyond the host's own pid and group.
//!
//! Both are asked for by the host ([`Fences`], on the worker's command line)
//! and either can be missing on a given kernel; the worker says which in its
//! handshake ([`Containment`]), `drivers list` shows it, and the host warns.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the host asks a worker to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fences {
    /// A PID namespace of its own (`pid_namespace`).
    pub pid_namespace: bool,
    /// Landlock signal scoping (part of `signal_filter`).
    pub signal_scope: bool,
}

const PID_NAMESPACE: &str = "pid-namespace";
const SIGNAL_SCOPE: &str = "signal-scope";
const NONE: &str = "none";

impl Fences {
    /// As a command-line value: `pid-namespace,signal-scope`, or `none`.
    pub fn to_arg(self) -> String {
        let names: Vec<&str> = [
            (self.pid_namespace, PID_NAMESPACE),
            (self.signal_scope, SIGNAL_SCOPE),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            NONE.into()
        } else {
            names.join(",")
        }
    }

    /// Parses [`Fences::to_arg`]'s output; `None` for anything else.
    pub fn from_arg(arg: &str) -> Option<Self> {
        let mut fences = Self {
            pid_namespace: false,
            signal_scope: false,
        };
        if arg == NONE {
            return Some(fences);
        }
        for name in arg.split(',') {
            match name {
                PID_NAMESPACE => fences.pid_namespace = true,
                SIGNAL_SCOPE => fences.signal_scope = true,
                _ => return None,
            }
        }
        Some(fences)
    }

    /// Sets up what is asked for. Must be called before any thread starts.
    /// Returns in the worker proper only (see [`super::namespace::enter`]);
    /// `keep_out` are the descriptors that belong to it alone.
    pub fn enter(self, keep_out: &[std::os::fd::RawFd]) -> Containment {
        // Scoped first: the namespace's processes inherit the domain.
        let signals_open = if self.signal_scope {
            scope_signals().err()
        } else {
            Some("turned off (signal_filter = false)".into())
        };
        let no_pid_namespace = if self.pid_namespace {
            super::namespace::enter(keep_out).err()
        } else {
            Some("turned off (pid_namespace = false)".into())
        };
        Containment {
            no_pid_namespace,
            signals_open,
        }
    }
}

/// How a worker is contained, as its handshake reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Containment {
    /// Why the worker has no PID namespace of its own; `None` when it has.
    pub no_pid_namespace: Option<String>,
    /// Why the worker's signals are not scoped; `None` when they are.
    pub signals_open: Option<String>,
}

impl Containment {
    /// What an operator should know when something is missing, for the
    /// host's warning; `None` when the worker is fully contained.
    pub fn warning(&self) -> Option<String> {
        let mut risks = Vec::new();
        if self.no_pid_namespace.is_some() {
            risks.push(
                "if this host is killed with SIGKILL, processes the driver started outlive it; run the host under a service manager that ends its whole control group (systemd's default KillMode=control-group)",
            );
        }
        if self.no_pid_namespace.is_some() && self.signals_open.is_some() {
            risks.push("the driver can signal other workers by pid");
        }
        (!risks.is_empty()).then(|| format!("worker {self}: {}", risks.join("; ")))
    }
}

impl fmt::Display for Containment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.no_pid_namespace {
            None => f.write_str("PID namespace")?,
            Some(why) => write!(f, "process group only (no PID namespace: {why})")?,
        }
        match &self.signals_open {
            None => f.write_str(", signals scoped (Landlock)"),
            Some(why) => write!(f, ", signals not scoped ({why})"),
        }
    }
}

/// Confines the signals this process and its future children send to
/// themselves (a Landlock domain scoped for signals); `Err` says why not.
fn scope_signals() -> Result<(), String> {
    use landlock::{LandlockStatus, Ruleset, RulesetAttr, RulesetStatus, Scope};
    let status = Ruleset::default()
        .scope(Scope::Signal)
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| ruleset.restrict_self())
        .map_err(|e| format!("Landlock: {e}"))?;
    match (status.ruleset, status.landlock) {
        (RulesetStatus::FullyEnforced, _) => Ok(()),
        (_, LandlockStatus::NotEnabled) => Err("Landlock is not enabled in this kernel".into()),
        (_, LandlockStatus::NotImplemented) => Err("this kernel has no Landlock".into()),
        (_, LandlockStatus::Available { .. }) => {
            Err("this kernel's Landlock cannot scope signals (Linux 6.12 or later can)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_round_trip_through_the_command_line() {
        for pid_namespace in [false, true] {
            for signal_scope in [false, true] {
                let fences = Fences {
                    pid_namespace,
                    signal_scope,
                };
                assert_eq!(Fences::from_arg(&fences.to_arg()), Some(fences));
            }
        }
        assert_eq!(Fences::from_arg("pid-namespace,chroot"), None);
        assert_eq!(Fences::from_arg(""), None);
    }

    #[test]
    fn containment_reads_as_drivers_list_shows_it() {
        let full = Containment {
            no_pid_namespace: None,
            signals_open: None,
        };
        assert_eq!(full.to_string(), "PID namespace, signals scoped (Landlock)");
        assert_eq!(full.warning(), None);
        let bare = Containment {
            no_pid_namespace: Some("EPERM".into()),
            signals_open: Some("this kernel has no Landlock".into()),
        };
        assert_eq!(
            bare.to_string(),
            "process group only (no PID namespace: EPERM), signals not scoped (this kernel has no Landlock)"
        );
        let warning = bare.warning().unwrap();
        assert!(warning.contains("KillMode=control-group"), "{warning}");
        assert!(warning.contains("other workers"), "{warning}");
    }
}
