//! # southbound-host
//!
//! The controller host behind the `southbound` binary. See `ARCHITECTURE.md`
//! at the repository root for the map.

pub mod cli;
pub mod config;
pub mod discovery;
pub mod isolation;
pub mod plugins;
