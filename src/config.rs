//! The command line: every flag of `imageplane serve`, each with an environment fallback.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "imageplane",
    version,
    about = "Yandex Cloud's image APIs, wire-compatible, on one port"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every API (gRPC, reflection, health) on one listener.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free port).
    #[arg(long, env = "IMAGEPLANE_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: String,

    /// Directory for persistent state. Unused until the on-disk store lands: state is
    /// kept in memory and lost on exit.
    #[arg(long, env = "IMAGEPLANE_DATA_DIR", default_value = "./imageplane-data")]
    pub data_dir: PathBuf,

    /// Log filter, e.g. `info` or `imageplane=debug,tower_http=info`. Default: RUST_LOG,
    /// else `info`.
    #[arg(long, env = "IMAGEPLANE_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Log line format.
    #[arg(long, env = "IMAGEPLANE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long the background work of a copy (an image from an image, disk or snapshot;
    /// a snapshot; a disk) takes, e.g. `0s`, `500ms`, `2m`.
    #[arg(long, env = "IMAGEPLANE_OPERATION_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub operation_delay: Duration,

    /// The host:port that ApiEndpointService tells SDKs to use. Default: the bound address.
    #[arg(long, env = "IMAGEPLANE_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// Longest time one RPC may take; a longer one fails with DEADLINE_EXCEEDED. `0s`
    /// (the default) sets no server-side deadline: every call is served from memory, and a
    /// deadline the client sends (grpc-timeout) is honoured either way.
    #[arg(long, env = "IMAGEPLANE_REQUEST_TIMEOUT", default_value = "0s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// On SIGTERM/SIGINT, how long to wait for running calls to end and clients to close
    /// their connections before closing them.
    #[arg(long, env = "IMAGEPLANE_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}
