//! imageplane: Yandex Cloud's image APIs, wire-compatible, on one port.
//!
//! Layers, outside in: `server` (wiring, listener, reflection, health) → `api` (one gRPC
//! adapter per service) → `domain` (the rules) → `executor` (background work) and `store`
//! (records). ARCHITECTURE.md has the map.

pub mod access_log;
pub mod api;
pub mod auth;
pub mod call;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod executor;
pub mod gateway;
pub mod grpc_codec;
pub mod ids;
pub mod import;
pub mod listener;
pub mod operations;
pub mod pb;
pub mod redact;
pub mod request_budget;
pub mod resource;
pub mod rpc_layer;
pub mod seed;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod validation;
