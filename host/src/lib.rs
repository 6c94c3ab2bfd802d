//! # southbound-host
//!
//! The controller host behind the `southbound` binary. See `ARCHITECTURE.md`
//! at the repository root for the map. Layers, top to bottom:
//!
//! - clients: [`cli`] (through [`client`] and the REST API), [`api`];
//! - [`service`]: every operation, shared by all clients and the [`scheduler`];
//! - [`store`] (the only module with SQL) and [`catalog`] (drivers);
//! - [`discovery`] + [`validation`]: the driver calls and the object rules;
//! - [`isolation`] + [`loader`]: how a driver file runs.
//!
//! Drivers never see the store; the store never sees a driver.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod datadir;
pub mod discovery;
pub mod isolation;
pub mod loader;
pub mod metrics;
pub mod scheduler;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod store;
pub mod units;
pub mod validation;
pub mod web;
