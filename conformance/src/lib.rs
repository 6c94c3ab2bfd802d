//! # southbound-conformance
//!
//! What csi-sanity is to CSI drivers, for Southbound drivers: checks that a
//! driver file keeps the SDK's contract against a live target, and says
//! exactly where it does not. Every check has a stable name (see
//! [`checks::CHECKS`]) and ends passed, failed or skipped with a reason.
//!
//! The suite reaches the driver through the host's own loader and isolation
//! code, and judges its objects with the host's own rules
//! (`southbound_host::validation`): a driver that passes is one the host
//! accepts.
//!
//! Two ways to run it:
//!
//! - the `southbound-conformance` binary (see the crate's README);
//! - from a vendor's own `cargo test`:
//!
//! ```no_run
//! use southbound_conformance::{run, Options, TargetArgs};
//!
//! # async fn example() {
//! let target = TargetArgs {
//!     driver: Some("target/debug/libmy_driver.so".into()),
//!     host: Some("array.example.com".into()),
//!     username: Some("admin".into()),
//!     password_file: Some("tests/array-password".into()),
//!     ..TargetArgs::default()
//! }
//! .into_target()
//! .expect("target settings");
//! let report = run(target, &Options::default(), |check| {
//!     println!("{}", southbound_conformance::report::line(check))
//! })
//! .await;
//! report.assert_passed();
//! # }
//! ```
//!
//! In worker isolation (the default) the worker is the
//! `southbound-conformance` binary ([`Options::worker_exe`]); a test that
//! has none at hand uses `isolation: Some(Isolation::InProcess)`.

pub mod checks;
pub mod report;
pub mod suite;
pub mod target;

pub use southbound_host::isolation::Isolation;
pub use suite::{run, CheckResult, Options, Outcome, Report};
pub use target::{Target, TargetArgs, TargetError};
