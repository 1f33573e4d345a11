//! The `imageplane` command: parses flags, sets up logging, binds the listener, prints
//! `imageplane listening on ADDR` on stdout once ready, and serves until SIGTERM or SIGINT.

use imageplane::config::{CheckArgs, Command, ServeArgs, StateCommand, StateFileArgs};
use imageplane::domain::identity::TokenFile;
use imageplane::domain::Offerings;
use imageplane::server::listener::ConnectionLimits;
use imageplane::server::tls::{Tls, TlsSource};
use imageplane::server::{serve, Settings};
use imageplane::store::DatabaseUrl;
use imageplane::work::import::ImportSettings;
use imageplane::work::timing::Timing;
use std::io::Write;
use std::process::ExitCode;

/// mimalloc, not glibc malloc: a control plane keeps many small records alive for long,
/// and glibc's free-list upkeep was the largest single cost of a create under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // The flags whose text a layer above the command line reads, checked for the config
    // file's line.
    let cli =
        imageplane::config::parse(&[("operation-delay", |text| Timing::parse(text).map(drop))]);
    match cli.command {
        Command::Serve(args) => match run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("imageplane: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => check(args).await,
        Command::State(args) => match state(args.command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("imageplane: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `imageplane state export|import FILE`: a snapshot of a stopped store.
async fn state(command: StateCommand) -> Result<(), String> {
    let (args, export) = match command {
        StateCommand::Export(args) => (args, true),
        StateCommand::Import(args) => (args, false),
    };
    let StateFileArgs {
        file,
        data_dir,
        database_url,
    } = args;
    let database = match &database_url {
        Some(url) => DatabaseUrl::parse(url).map_err(|error| format!("--database-url: {error}"))?,
        None => DatabaseUrl::default_in(&data_dir),
    };
    let named = file.display().to_string();
    if export {
        let bytes = imageplane::store::export(&database)
            .await
            .map_err(|error| {
                format!(
                    "cannot read the state of {}: {}",
                    database.display(),
                    imageplane::error::Error::from(error)
                )
            })?;
        match named.as_str() {
            "-" => std::io::stdout().write_all(&bytes),
            _ => std::fs::write(&file, &bytes),
        }
        .map_err(|error| format!("{named}: {error}"))?;
        eprintln!(
            "imageplane: {}: the state written to {named} ({} bytes)",
            database.display(),
            bytes.len()
        );
        return Ok(());
    }
    let bytes = match named.as_str() {
        "-" => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
        }
        _ => std::fs::read(&file),
    }
    .map_err(|error| format!("{named}: {error}"))?;
    let prepared = imageplane::store::snapshot::read(bytes)
        .await
        .map_err(|error| format!("{named}: {error}"))?;
    let replica = imageplane::store::Replica::new(imageplane::server::DEFAULT_LEASE);
    let store = imageplane::store::open(&database, replica)
        .await
        .map_err(|error| format!("cannot open {}: {error}", database.display()))?;
    let outcome = match store.import_state(prepared).await {
        Ok(counts) => Ok(format!(
            "{}: the state replaced from {named} (schema {}): {} resources, {} operations, \
             {} idempotency keys, {} IAM tokens",
            database.display(),
            counts.schema,
            counts.resources,
            counts.operations,
            counts.idempotency_keys,
            counts.iam_tokens
        )),
        Err(error) => Err(format!(
            "{named}: {}",
            imageplane::error::Error::from(error)
        )),
    };
    let closed = store.close().await;
    let report = outcome?;
    closed.map_err(|error| format!("closing {}: {error}", database.display()))?;
    eprintln!("imageplane: {report}");
    Ok(())
}

/// `imageplane check`: prints what the database holds and every damaged part.
async fn check(args: CheckArgs) -> ExitCode {
    let database = match &args.database_url {
        Some(url) => match DatabaseUrl::parse(url) {
            Ok(database) => database,
            Err(error) => {
                eprintln!("imageplane: --database-url: {error}");
                return ExitCode::from(2);
            }
        },
        None => DatabaseUrl::default_in(&args.data_dir),
    };
    let report = match imageplane::store::check(&database).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("imageplane: cannot check {}: {error}", database.display());
            return ExitCode::from(2);
        }
    };
    for problem in report.problems.iter().take(1000) {
        println!("damaged: {problem}");
    }
    println!(
        "{}: {} resources and {} operations read, {} damaged part(s)",
        database.display(),
        report.resources,
        report.operations,
        report.problems.len()
    );
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Held to the end: dropping it writes the lines still queued.
    let _log = imageplane::telemetry::init(args.log_level.as_deref(), args.log_format)?;
    if let Some(seed) = args.deterministic_ids {
        imageplane::ids::make_deterministic(seed);
        tracing::info!(seed, "ids and times come from a seeded sequence");
    }
    let database = match &args.database_url {
        Some(url) => DatabaseUrl::parse(url).map_err(|error| format!("--database-url: {error}"))?,
        None => DatabaseUrl::default_in(&args.data_dir),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let address = listener.local_addr()?;
    let seeds = seeds(&args)?;
    let restore = match &args.restore {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read(path)
                .map_err(|error| format!("--restore {}: {error}", path.display()))?,
        )),
        None => None,
    };
    let auth_tokens = match &args.auth_tokens {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("--auth-tokens {}: {error}", path.display()))?;
            Some(
                TokenFile::parse(&text, &path.display().to_string())
                    .map_err(|error| format!("--auth-tokens {error}"))?,
            )
        }
        None => None,
    };
    let tls = if args.tls_self_signed {
        Some(TlsSource::SelfSigned {
            dir: args.data_dir.join("tls"),
        })
    } else {
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    };
    let tls = tls.map(|source| Tls::load(&source)).transpose()?;
    let settings = Settings {
        tls,
        public_images: !args.no_public_images,
        seeds,
        restore,
        auth_tokens,
        iam_token_lifetime: args.iam_token_lifetime,
        operation_timing: Timing::parse(&args.operation_delay)
            .map_err(|error| format!("--operation-delay: {error}"))?,
        enable_admin: args.enable_admin,
        console: !args.no_console,
        advertise_address: args.advertise_address,
        request_timeout: args.request_timeout,
        shutdown_grace: args.shutdown_grace,
        database,
        lease: args.lease_duration,
        operation_retention: args.operation_retention,
        import: ImportSettings {
            max_concurrent: args.max_concurrent_imports as usize,
            allow_hosts: args
                .import_allow_hosts
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
            max_bytes: args.import_max_bytes,
            extra_roots_pem: match &args.import_ca_file {
                Some(path) => std::fs::read(path)
                    .map_err(|error| format!("--import-ca-file {}: {error}", path.display()))?,
                None => Vec::new(),
            },
            timeout: args.import_timeout,
            min_rate: args.import_min_rate,
            ..ImportSettings::default()
        },
        offerings: Offerings {
            zones: listed(&args.zones),
            disk_types: listed(&args.disk_types),
        },
        connections: ConnectionLimits {
            max_connections: args.max_connections as usize,
            first_request_timeout: args.first_request_timeout,
            idle_timeout: args.idle_timeout,
            receive_timeout: args.request_receive_timeout,
            connection_buffer: usize::try_from(args.connection_buffer_limit).unwrap_or(usize::MAX),
            total_buffer: usize::try_from(args.total_buffer_limit).unwrap_or(usize::MAX),
        },
    };
    // Handlers first: a SIGTERM that arrives while starting, or right after the
    // announcement, must stop the server gracefully, not kill it.
    let shutdown = shutdown_signal()?;
    // Everything that can fail at start (the store opened and migrated, seeds loaded, the
    // services built) has, before the server says it is ready; meanwhile the port answers
    // that it is starting.
    serve(listener, settings, shutdown, move || {
        println!("imageplane listening on {address}");
        let _ = std::io::stdout().flush();
    })
    .await
}

/// The texts of the `--seed` files, as (path, text).
fn seeds(args: &ServeArgs) -> Result<Vec<(String, String)>, String> {
    let mut seeds = Vec::new();
    for path in &args.seeds {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("--seed {}: {error}", path.display()))?;
        seeds.push((path.display().to_string(), text));
    }
    Ok(seeds)
}

/// A comma-separated flag's values, trimmed, without empty ones.
fn listed(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .collect()
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on either signal.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
