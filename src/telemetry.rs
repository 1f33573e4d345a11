//! Logging: tracing to stderr, as text or JSON, filtered by `--log-level` or RUST_LOG.
//! Text has colours only when stderr is a terminal and `NO_COLOR` is not set
//! (<https://no-color.org>): a file or a container's log gets plain text.
//!
//! Lines are buffered: a call formats its line into a shared buffer (64 KiB), which is
//! written to stderr when it fills and otherwise every [`FLUSH_EVERY`], so a line appears
//! within that time. One `write` per access-log line cost a create more than the rest of
//! its logging (docs/benchmarks.md). The buffer is written out when the [`LogGuard`] is
//! dropped, at the end of `main`; a process killed with SIGKILL can lose the lines of its
//! last [`FLUSH_EVERY`].

use crate::config::LogFormat;
use std::io::{BufWriter, IsTerminal, Stderr, Write};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The longest a logged line waits in the buffer before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
const BUFFER_BYTES: usize = 64 * 1024;

/// The buffer lines are formatted into, shared by the subscriber and the flushing thread.
type Buffer = Arc<Mutex<BufWriter<Stderr>>>;

/// Keeps the flushing thread; dropping it writes what is buffered and stops the thread.
#[must_use = "dropping the guard stops the flushing of buffered lines"]
pub struct LogGuard {
    buffer: Buffer,
    _stop: std::sync::mpsc::Sender<()>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let _ = lock(&self.buffer).flush();
    }
}

/// What the subscriber writes a line with: the buffer, locked for the line.
#[derive(Clone)]
struct BufferedStderr(Buffer);

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(lock(&self.0))
    }
}

/// One line's hold on the buffer.
struct Line<'a>(MutexGuard<'a, BufWriter<Stderr>>);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn lock(buffer: &Buffer) -> MutexGuard<'_, BufWriter<Stderr>> {
    buffer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes the buffer out every [`FLUSH_EVERY`] until the guard is dropped.
fn flush_loop(buffer: Buffer, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(FLUSH_EVERY) {
        let _ = lock(&buffer).flush();
    }
}

/// Installs the global subscriber. `level` wins over RUST_LOG; the default is `info`.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<LogGuard, String> {
    let filter = match level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|error| format!("--log-level: {error}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let no_color = std::env::var_os("NO_COLOR");
    let buffer: Buffer = Arc::new(Mutex::new(BufWriter::with_capacity(
        BUFFER_BYTES,
        std::io::stderr(),
    )));
    let (stop, stopped) = std::sync::mpsc::channel();
    let flushed = Arc::clone(&buffer);
    std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || flush_loop(flushed, stopped))
        .map_err(|error| format!("starting the log flusher: {error}"))?;
    let writer = BufferedStderr(Arc::clone(&buffer));
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
    Ok(LogGuard {
        buffer,
        _stop: stop,
    })
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
