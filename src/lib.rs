//! imageplane: Yandex Cloud's image APIs, wire-compatible, on one port.
//!
//! The modules are layers, listed here from the top down; a module uses its own layer and
//! the ones below it, never one above (`tests/layers.rs` keeps this). ARCHITECTURE.md has
//! the map.

pub mod server;

pub mod gateway;

pub mod rpc;

pub mod api;

pub mod domain;

pub mod work;

pub mod store;

pub mod model;

pub mod config;
pub mod error;
pub mod faults;
pub mod ids;
pub mod metrics;
pub mod pb;
pub mod redact;
pub mod strict_json;
pub mod telemetry;
