//! rkms: a KMS host emulator and test client, built on the sans-I/O core in `rkms-proto`.
//!
//! Modules depend inward: `server` and `client` (I/O) use `policy` (decisions) and the
//! catalog, which use the protocol core; nothing in the core knows about them.
//!
//! Cargo features (all default) add the optional parts: `web` (dashboard, API, metrics),
//! `postgres`, `sqlite` (client stores) and `dns` (SRV discovery and publishing); see
//! [`features`].
#![forbid(unsafe_code)]

pub mod addr;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod commands;
pub mod compat;
pub mod config;
pub mod dns;
pub mod escape;
pub mod features;
pub mod interval;
pub mod logging;
pub mod out;
pub mod platform;
pub mod policy;
pub mod server;
pub mod service;
pub mod web;
