//! The command line: every flag of `imageplane serve`, each with an environment fallback,
//! and a TOML file (`--config FILE`) that may carry any of them: a flag on the command
//! line wins over its environment variable, which wins over the file, which wins over the
//! default. An unknown key or a bad value in the file stops the start naming the file, the
//! line and the key ([`parse`]).

use clap::parser::ValueSource;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
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
    /// Serve every API (gRPC, REST, reflection, health) on one listener.
    Serve(Box<ServeArgs>),
    /// Read the whole database and name what is damaged (exit 0: nothing; 1: damage;
    /// 2: it could not be read). Changes nothing; a server may be running on it.
    Check(CheckArgs),
    /// State snapshots of a stopped store (a running server: GET and PUT
    /// /imageplane/v1/state).
    State(StateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StateCommand {
    /// Writes the whole state to FILE (`-`: standard output) as a snapshot.
    Export(StateFileArgs),
    /// Replaces the whole state with the snapshot in FILE (`-`: standard input); a
    /// snapshot of an older schema is migrated, a newer one refused.
    Import(StateFileArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StateFileArgs {
    /// The snapshot file; `-` for standard output or input.
    pub file: PathBuf,

    /// Directory of the embedded database, as for `serve`.
    #[arg(long, env = "IMAGEPLANE_DATA_DIR", default_value = "./imageplane-data")]
    pub data_dir: PathBuf,

    /// The database, as for `serve` (default: SQLite in --data-dir). A SQLite database
    /// must not be in use by a server; on PostgreSQL the import is one transaction, which
    /// the servers' operations running on it do not survive.
    #[arg(long, env = "IMAGEPLANE_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Directory of the embedded database, as for `serve`.
    #[arg(long, env = "IMAGEPLANE_DATA_DIR", default_value = "./imageplane-data")]
    pub data_dir: PathBuf,

    /// The database to check, as for `serve` (default: SQLite in --data-dir).
    #[arg(long, env = "IMAGEPLANE_DATABASE_URL")]
    pub database_url: Option<String>,
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
    /// A TOML file of settings: each key is a flag's name without `--` (`listen`,
    /// `database-url`, `operation-delay`, ...) and its value; flags and environment
    /// variables given as well win over it. See docs/configuration.md.
    #[arg(long, env = "IMAGEPLANE_CONFIG")]
    pub config: Option<PathBuf>,

    /// A state snapshot (GET /imageplane/v1/state, `imageplane state export`) that
    /// replaces the stored state at every start, before the seed files are loaded.
    #[arg(long, env = "IMAGEPLANE_RESTORE")]
    pub restore: Option<PathBuf>,

    /// Address to listen on (host:port; port 0 picks a free port).
    #[arg(long, env = "IMAGEPLANE_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: String,

    /// Directory of the embedded database (`imageplane.sqlite3`, with its WAL and lock
    /// files), created if missing. Used when --database-url is not given.
    #[arg(long, env = "IMAGEPLANE_DATA_DIR", default_value = "./imageplane-data")]
    pub data_dir: PathBuf,

    /// Where the state lives: `sqlite:PATH` (an SQLite file; without this flag, the
    /// embedded default `imageplane.sqlite3` in --data-dir),
    /// `postgres://user:password@host:port/database` (several replicas may share it), or
    /// `memory:` (nothing is kept after exit).
    #[arg(long, env = "IMAGEPLANE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// How long this replica's claim on a running operation lasts without renewal (at
    /// least 1s); it renews every third of it. When a replica dies, another takes its
    /// operations over after this long.
    #[arg(long, env = "IMAGEPLANE_LEASE_DURATION", default_value = "10s", value_parser = parse_lease)]
    pub lease_duration: Duration,

    /// Imports from URIs that run at once; the others wait in order.
    #[arg(long, env = "IMAGEPLANE_MAX_CONCURRENT_IMPORTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_imports: u32,

    /// Hosts that imports may fetch from, comma-separated (exact names, e.g.
    /// `storage.yandexcloud.net,images.example.com`). Default: any host. A shared
    /// deployment should set it: otherwise any caller can make the server fetch from any
    /// address it can reach, internal ones included (SSRF).
    #[arg(long, env = "IMAGEPLANE_IMPORT_ALLOW_HOSTS", value_delimiter = ',')]
    pub import_allow_hosts: Vec<String>,

    /// The largest image file an import accepts, in bytes, or with a suffix: KiB, MiB,
    /// GiB, TiB (e.g. `50GiB`).
    #[arg(long, env = "IMAGEPLANE_IMPORT_MAX_BYTES", default_value = "1TiB", value_parser = parse_bytes)]
    pub import_max_bytes: u64,

    /// The longest an import may take, waiting for a free slot excluded; then it fails with
    /// DEADLINE_EXCEEDED.
    #[arg(long, env = "IMAGEPLANE_IMPORT_TIMEOUT", default_value = "24h", value_parser = parse_positive_duration)]
    pub import_timeout: Duration,

    /// The slowest a source may send, in bytes a second (suffixes as for
    /// --import-max-bytes), measured over each minute of the import; a slower source fails
    /// the import with UNAVAILABLE and frees its slot.
    #[arg(long, env = "IMAGEPLANE_IMPORT_MIN_RATE", default_value = "64KiB", value_parser = parse_bytes)]
    pub import_min_rate: u64,

    /// A PEM file of extra root certificates that https import sources may be signed by
    /// (a private CA), trusted beside the public roots.
    #[arg(long, env = "IMAGEPLANE_IMPORT_CA_FILE")]
    pub import_ca_file: Option<PathBuf>,

    /// How long finished operations are kept before they are purged (OperationService.Get
    /// then answers NOT_FOUND).
    #[arg(long, env = "IMAGEPLANE_OPERATION_RETENTION", default_value = "30days", value_parser = parse_positive_duration)]
    pub operation_retention: Duration,

    /// Log filter, e.g. `info` or `info,imageplane::work=debug`. Default: RUST_LOG, else
    /// `info`.
    #[arg(long, env = "IMAGEPLANE_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Log line format.
    #[arg(long, env = "IMAGEPLANE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The zones disks may be created in, comma-separated.
    #[arg(
        long,
        env = "IMAGEPLANE_ZONES",
        value_delimiter = ',',
        default_value = "ru-central1-a,ru-central1-b,ru-central1-d"
    )]
    pub zones: Vec<String>,

    /// The disk types disks may have, comma-separated.
    #[arg(
        long,
        env = "IMAGEPLANE_DISK_TYPES",
        value_delimiter = ',',
        default_value = "network-hdd,network-ssd,network-ssd-nonreplicated,network-ssd-io-m3"
    )]
    pub disk_types: Vec<String>,

    /// A seed file of resources to have at every start (one JSON resource a line, see
    /// docs/api.md, "Seed files"); may be given more than once, or as a comma-separated
    /// list. Loaded after the public catalogue.
    #[arg(long = "seed", env = "IMAGEPLANE_SEED", value_delimiter = ',')]
    pub seeds: Vec<PathBuf>,

    /// Do not load the public image catalogue (folder standard-images). As an environment
    /// variable: `true` or `false`.
    #[arg(long, env = "IMAGEPLANE_NO_PUBLIC_IMAGES")]
    pub no_public_images: bool,

    /// How long background work takes before its operation ends, from the operation's
    /// creation: `DURATION` for every kind, and `KIND=DURATION` or `KIND=manual` for one
    /// kind (comma-separated), e.g. `1s,create-disk=manual`. Kinds: create-image,
    /// create-snapshot, create-disk, import-image, import-baremetal-image, delete-image,
    /// delete-snapshot, delete-disk, delete-baremetal-image. `manual` holds the operation
    /// until the admin API finishes it. An import ends when its transfer is done, and not
    /// before its delay; changes (updates, moves) are done when stored.
    #[arg(long, env = "IMAGEPLANE_OPERATION_DELAY", default_value = "0s")]
    pub operation_delay: String,

    /// Turn on the admin API (`imageplane.v1.AdminService`, REST under `/imageplane/v1/`:
    /// reset) for test suites. With --auth-tokens, only tokens marked @admin may use it.
    /// As an environment variable: `true` or `false`.
    #[arg(long, env = "IMAGEPLANE_ENABLE_ADMIN")]
    pub enable_admin: bool,

    /// Do not serve the web console at `/console` (it is a client of the REST API and
    /// answers nothing the API does not). As an environment variable: `true` or `false`.
    #[arg(long, env = "IMAGEPLANE_NO_CONSOLE")]
    pub no_console: bool,

    /// Make ids, and the times that stamp resources and operations (from
    /// 2026-01-01T00:00:00Z, a millisecond a reading), come from a sequence seeded with
    /// this number, so that the same calls in the same order answer the same ids, times
    /// and page tokens on every run. For tests; not for several replicas.
    #[arg(long, env = "IMAGEPLANE_DETERMINISTIC_IDS")]
    pub deterministic_ids: Option<u64>,

    /// The host:port that ApiEndpointService tells SDKs to use for every service. Default:
    /// the host and port each client used to reach this server (its `:authority`).
    #[arg(long, env = "IMAGEPLANE_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// A PEM certificate chain: serve gRPC and REST over TLS (ALPN h2 and http/1.1) with
    /// it and --tls-key. Without TLS flags the port is plaintext (h2c and HTTP/1.1).
    #[arg(
        long,
        env = "IMAGEPLANE_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "IMAGEPLANE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1, made on
    /// the first start and kept in --data-dir as `tls/cert.pem` and `tls/key.pem` (its path
    /// is logged): point an SDK's root certificates at `tls/cert.pem`. As an environment
    /// variable: `true` or `false`.
    #[arg(long, env = "IMAGEPLANE_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Require a bearer token on every call but health, reflection, endpoint discovery and
    /// IamTokenService.Create: a file of `TOKEN SUBJECT_ID [FOLDER_ID,...]` lines (a
    /// token limited to folders sees only them, and the public catalogue). Tokens issued
    /// by IamTokenService.Create for these count too. Default: every call is accepted, as
    /// subject "anonymous".
    #[arg(long, env = "IMAGEPLANE_AUTH_TOKENS")]
    pub auth_tokens: Option<PathBuf>,

    /// How long IAM tokens issued by IamTokenService.Create live.
    #[arg(long, env = "IMAGEPLANE_IAM_TOKEN_LIFETIME", default_value = "12h", value_parser = parse_token_lifetime)]
    pub iam_token_lifetime: Duration,

    /// Longest time one RPC may take; a longer one fails with DEADLINE_EXCEEDED. `0s`
    /// (the default) sets no server-side deadline (a call is one or two store
    /// transactions); a deadline the client sends (grpc-timeout) is honoured either way.
    #[arg(long, env = "IMAGEPLANE_REQUEST_TIMEOUT", default_value = "0s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Connections open at once; at the limit new clients wait in the listen backlog until
    /// one closes. Keep it below the open-file limit (`ulimit -n`).
    #[arg(long, env = "IMAGEPLANE_MAX_CONNECTIONS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// How long a new connection may take to send its first request's headers (a TLS or
    /// HTTP/2 handshake included) before it is closed.
    #[arg(long, env = "IMAGEPLANE_FIRST_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub first_request_timeout: Duration,

    /// How long a connection may have no call in flight before it is shut down gracefully
    /// (clients reconnect when they need to).
    #[arg(long, env = "IMAGEPLANE_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,

    /// How long a request may take to arrive whole, from its headers to the end of its
    /// body; a slower one fails with DEADLINE_EXCEEDED (REST: 408).
    #[arg(long, env = "IMAGEPLANE_REQUEST_RECEIVE_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub request_receive_timeout: Duration,

    /// Request body bytes that one connection's unfinished requests may hold; beyond it a
    /// request fails with RESOURCE_EXHAUSTED (REST: 429).
    #[arg(long, env = "IMAGEPLANE_CONNECTION_BUFFER_LIMIT", default_value = "16MiB", value_parser = parse_bytes)]
    pub connection_buffer_limit: u64,

    /// Request body bytes that all unfinished requests together may hold.
    #[arg(long, env = "IMAGEPLANE_TOTAL_BUFFER_LIMIT", default_value = "256MiB", value_parser = parse_bytes)]
    pub total_buffer_limit: u64,

    /// On SIGTERM/SIGINT, how long to wait for running calls to end and clients to close
    /// their connections before closing them.
    #[arg(long, env = "IMAGEPLANE_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// A duration above zero, e.g. `10s`, `500ms`, `30days`.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(duration)
}

/// An IAM token lifetime: above zero, at most a year.
fn parse_token_lifetime(text: &str) -> Result<Duration, String> {
    let duration = parse_positive_duration(text)?;
    if duration > Duration::from_secs(366 * 24 * 3600) {
        return Err("must be at most 366days".into());
    }
    Ok(duration)
}

/// A lease of at least one second: it is renewed every third of it, and a renewal must
/// fit comfortably in that time.
fn parse_lease(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(duration)
}

/// A byte count: a number, optionally followed by KiB, MiB, GiB or TiB.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count such as 1048576 or 50GiB"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => return Err(format!("unknown unit {other:?}: use KiB, MiB, GiB or TiB")),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("must be greater than zero".into());
    }
    Ok(bytes)
}

/// A check of a flag's text that clap does not make itself (layers above this one parse
/// some flags: `--operation-delay`), so that a value from the config file that fails it is
/// named with its line: the flag's name without `--`, and the check.
pub type Check = (&'static str, fn(&str) -> Result<(), String>);

/// The command line of this process, with `serve`'s `--config` file read in and `checks`
/// made on its values; on a mistake, prints it and exits with status 2, as clap does for
/// its own.
pub fn parse(checks: &[Check]) -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match parse_from(args, checks) {
        Ok(cli) => cli,
        Err(Mistake::Clap(error)) => error.exit(),
        Err(Mistake::Config(message)) => {
            eprintln!("imageplane: {message}");
            std::process::exit(2)
        }
    }
}

/// Why a command line was refused.
#[derive(Debug)]
pub enum Mistake {
    /// clap's own error (a flag, `--help`, `--version`).
    Clap(clap::Error),
    /// The config file: its path, line and key, and what is wrong.
    Config(String),
}

/// [`parse`] over the given arguments (the first is the program's name).
pub fn parse_from(mut args: Vec<OsString>, checks: &[Check]) -> Result<Cli, Mistake> {
    let command = Cli::command();
    // A first look for `--config`, tolerant: a flag that another needs may be in the file
    // (clap checks everything on the command line as it will be, below).
    let probe = command
        .clone()
        .ignore_errors(true)
        .mut_subcommand("serve", |serve| serve.ignore_errors(true))
        .try_get_matches_from(&args);
    let serve = match &probe {
        Ok(matches) => matches.subcommand_matches("serve"),
        Err(_) => None,
    };
    let Some((serve, path)) =
        serve.and_then(|serve| Some((serve, serve.get_one::<PathBuf>("config")?.clone())))
    else {
        return Cli::try_parse_from(&args).map_err(Mistake::Clap);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|error| Mistake::Config(format!("--config {}: {error}", path.display())))?;
    let serve_command = command
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone();
    let from_file = config_args(&path, &text, &serve_command, |id| {
        matches!(
            serve.value_source(id),
            None | Some(ValueSource::DefaultValue)
        )
    })?;
    for (key, line, value) in &from_file.values {
        for (name, check) in checks {
            if name == key {
                check(value).map_err(|error| {
                    Mistake::Config(format!("{}:{line}: {key}: {error}", path.display()))
                })?;
            }
        }
    }
    args.extend(from_file.args);
    Cli::try_parse_from(&args).map_err(|error| {
        // A value from the file that clap refuses: name its line and key.
        let invalid = match error.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(arg)) => Some(arg.clone()),
            _ => None,
        };
        let from = invalid.and_then(|arg| {
            from_file
                .lines
                .iter()
                .find(|(key, _)| arg.starts_with(&format!("--{key} ")) || arg == format!("--{key}"))
        });
        match from {
            Some((key, line)) => Mistake::Config(format!(
                "{}:{line}: {key}: {}",
                path.display(),
                error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
            )),
            None => Mistake::Clap(error),
        }
    })
}

/// What a config file adds to the command line.
struct FromFile {
    /// `--key value` for each key the file sets and nothing else does.
    args: Vec<OsString>,
    /// Each key the file sets, with its line.
    lines: Vec<(String, usize)>,
    /// Each key the file sets and nothing else does, with its line and its text.
    values: Vec<(String, usize, String)>,
}

/// The flags a config file's `text` sets for `serve`, leaving out those that `unset`
/// says were given otherwise (on the command line, or in the environment).
fn config_args(
    path: &Path,
    text: &str,
    serve: &clap::Command,
    unset: impl Fn(&str) -> bool,
) -> Result<FromFile, Mistake> {
    let at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: std::collections::BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| at(span.start)).unwrap_or(1);
            Mistake::Config(format!(
                "{}:{line}: not a valid TOML file: {}",
                path.display(),
                error.message()
            ))
        })?;
    let mut from_file = FromFile {
        args: Vec::new(),
        lines: Vec::new(),
        values: Vec::new(),
    };
    for (key, value) in table {
        let line = at(key.span().start);
        let name = key.get_ref();
        let mistake =
            |what: String| Mistake::Config(format!("{}:{line}: {name}: {what}", path.display()));
        let Some(arg) = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name) && name != "config")
        else {
            return Err(mistake(
                "not a setting: a key is a flag of `imageplane serve` without `--` (see \
                 `imageplane serve --help`)"
                    .into(),
            ));
        };
        from_file.lines.push((name.clone(), line));
        if !unset(arg.get_id().as_str()) {
            continue;
        }
        let flag = format!("--{name}");
        match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => from_file.args.push(flag.into()),
            // `--flag=value`, so that a value that starts with `-` is not taken for a flag.
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => {}
            (ArgAction::SetTrue, _) => return Err(mistake("must be true or false".into())),
            (_, toml::Value::Array(items)) => {
                let items = items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| mistake("a list holds strings or numbers only".into()))?;
                for item in items {
                    from_file.args.push(format!("{flag}={item}").into());
                }
            }
            (_, value) => {
                let value = scalar(value)
                    .ok_or_else(|| mistake("must be a string, a number or a boolean".into()))?;
                from_file.args.push(format!("{flag}={value}").into());
                from_file.values.push((name.clone(), line, value));
            }
        }
    }
    Ok(from_file)
}

/// A TOML value as a flag's text, if it is a string, a number or a boolean.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Float(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `imageplane serve` with `args`, reading `text` as its config file.
    fn serve_with(text: &str, args: &[&str]) -> Result<ServeArgs, Mistake> {
        let path =
            std::env::temp_dir().join(format!("imageplane-config-{}.toml", rand::random::<u64>()));
        std::fs::write(&path, text).unwrap();
        let mut line: Vec<OsString> = vec![
            "imageplane".into(),
            "serve".into(),
            "--config".into(),
            path.clone().into(),
        ];
        line.extend(args.iter().map(OsString::from));
        let checks: &[Check] = &[("operation-delay", |text| match text {
            "bad" => Err("bad is refused".to_string()),
            _ => Ok(()),
        })];
        let parsed = parse_from(line, checks);
        let _ = std::fs::remove_file(&path);
        match parsed?.command {
            Command::Serve(args) => Ok(*args),
            Command::Check(_) | Command::State(_) => unreachable!(),
        }
    }

    fn mistake(text: &str) -> String {
        match serve_with(text, &[]) {
            Err(Mistake::Config(message)) => message,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn a_config_file_sets_flags_and_the_command_line_wins() {
        let text = "listen = \"0.0.0.0:7000\"\nmax-connections = 50\nenable-admin = true\n\
                    zones = [\"z-a\", \"z-b\"]\noperation-delay = \"1s,create-disk=manual\"\n";
        let args = serve_with(text, &[]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7000");
        assert_eq!(args.max_connections, 50);
        assert!(args.enable_admin);
        assert_eq!(args.zones, ["z-a", "z-b"]);
        assert_eq!(args.operation_delay, "1s,create-disk=manual");
        // Untouched flags keep their defaults.
        assert_eq!(args.data_dir, PathBuf::from("./imageplane-data"));
        let args =
            serve_with(text, &["--listen", "127.0.0.1:0", "--max-connections", "7"]).unwrap();
        assert_eq!(
            (args.listen.as_str(), args.max_connections),
            ("127.0.0.1:0", 7)
        );
    }

    #[test]
    fn a_flag_another_needs_may_come_from_the_file() {
        // --tls-key requires --tls-cert: one on the command line, one in the file.
        let args = serve_with("tls-cert = \"cert.pem\"\n", &["--tls-key", "key.pem"]).unwrap();
        assert_eq!(args.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(args.tls_key, Some(PathBuf::from("key.pem")));
        // A value that starts with `-` is a value.
        let args = serve_with("advertise-address = \"-odd:1\"\n", &[]).unwrap();
        assert_eq!(args.advertise_address.as_deref(), Some("-odd:1"));
    }

    #[test]
    fn an_environment_variable_wins_over_the_file() {
        // Only this test reads the variable.
        std::env::set_var("IMAGEPLANE_DISK_TYPES", "from-env");
        let args = serve_with("disk-types = [\"from-file\"]\n", &[]).unwrap();
        std::env::remove_var("IMAGEPLANE_DISK_TYPES");
        assert_eq!(args.disk_types, ["from-env"]);
    }

    #[test]
    fn a_bad_key_or_value_names_the_file_line_and_key() {
        let message = mistake("listen = \"127.0.0.1:0\"\n\n lisen = 1\n");
        assert!(message.ends_with(":3: lisen: not a setting: a key is a flag of `imageplane serve` without `--` (see `imageplane serve --help`)"), "{message}");
        let message = mistake("max-connections = \"many\"\n");
        assert!(
            message.contains(":1: max-connections: invalid value 'many'"),
            "{message}"
        );
        let message = mistake("enable-admin = \"yes\"\n");
        assert!(
            message.contains(":1: enable-admin: must be true or false"),
            "{message}"
        );
        let message = mistake("# a comment\nlisten = \n");
        assert!(message.contains(":2: not a valid TOML file"), "{message}");
        let message = mistake("[serve]\nlisten = \"x\"\n");
        assert!(message.contains(":1: serve: not a setting"), "{message}");
        let message = mistake("config = \"other.toml\"\n");
        assert!(message.contains(":1: config: not a setting"), "{message}");
        let message = mistake("listen = \"127.0.0.1:0\"\noperation-delay = \"bad\"\n");
        assert!(
            message.ends_with(":2: operation-delay: bad is refused"),
            "{message}"
        );
    }
}
