//! Logging: tracing to stderr, as text or JSON, filtered by `--log-level` or RUST_LOG.
//! Text has colours only when stderr is a terminal and `NO_COLOR` is not set
//! (<https://no-color.org>): a file or a container's log gets plain text.
//!
//! Lines are written by a thread of their own (tracing-appender's non-blocking writer):
//! a call formats its line and queues it; the thread writes every line queued since its
//! last write in one system call. One `write` per access-log line was a tenth of a create's
//! CPU time under load (docs/benchmarks.md). Nothing is dropped: when [`QUEUED_LINES`] are
//! waiting, callers wait. The queue is flushed when the [`LogGuard`] is dropped, at the end
//! of `main`; a process killed with SIGKILL can lose the lines of its last moment.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the writer thread before a caller waits for it.
pub const QUEUED_LINES: usize = 64 * 1024;

/// Keeps the writer thread; dropping it writes every queued line and stops the thread.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the global subscriber. `level` wins over RUST_LOG; the default is `info`.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<LogGuard, String> {
    let filter = match level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|error| format!("--log-level: {error}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let no_color = std::env::var_os("NO_COLOR");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("imageplane-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colours(
            std::io::stderr().is_terminal(),
            no_color.as_deref(),
        ));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|error| error.to_string())?;
    Ok(LogGuard(guard))
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` holds a value.
fn colours(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colours;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some(OsStr::new(""))));
        assert!(!colours(true, Some(OsStr::new("1"))));
        assert!(!colours(false, None));
    }
}
