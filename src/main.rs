//! The `imageplane` command: parses flags, sets up logging, binds the listener, prints
//! `imageplane listening on ADDR` on stdout once ready, and serves until SIGTERM or SIGINT.

use clap::Parser;
use imageplane::config::{Cli, Command, ServeArgs};
use imageplane::server::{self, Settings};
use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("imageplane: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    imageplane::telemetry::init(args.log_level.as_deref(), args.log_format)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let address = listener.local_addr()?;
    println!("imageplane listening on {address}");
    std::io::stdout().flush()?;
    let settings = Settings {
        operation_delay: args.operation_delay,
        advertise_address: args.advertise_address,
        request_timeout: args.request_timeout,
    };
    server::serve(listener, settings, shutdown_signal()).await
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
