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
//!
//! Text lines are the fmt subscriber's default format. Its fields are written by
//! [`PlainFields`], which writes them as the default does, without the per-field styling
//! that cost the access-log line most of its time when there are no colours.

use crate::config::LogFormat;
use std::io::{BufWriter, IsTerminal, Stderr, Write};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
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
        LogFormat::Text => builder.fmt_fields(PlainFields).try_init(),
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

/// The fields of a text line (an event's, a span's), written exactly as
/// tracing-subscriber's [`DefaultFields`] writes them: `name=value` separated by spaces,
/// strings and other values as `Debug` shows them, the message as it is. Without colours
/// a field is written directly; with colours, and for what needs escaping, the default
/// writes it.
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        if writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        let mut visitor = PlainVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes fields for [`PlainFields`].
struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    /// Nothing written yet (no space before the first field).
    empty: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    /// Writes the space before a field and its `name=` (only the value for a message, as
    /// the default writes it); false for a field not written
    /// (after an error, or the `log.` metadata of a `log` record, as the default skips).
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !std::mem::replace(&mut self.empty, false) {
            self.result = self.writer.write_char(' ');
        }
        if name == "message" {
            return true;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = self
            .result
            .and_then(|()| self.writer.write_str(name))
            .and_then(|()| self.writer.write_char('='));
        true
    }

    /// A number or a boolean: its `Debug`, which the default writes, is its `Display`.
    fn display(&mut self, field: &Field, value: impl std::fmt::Display) {
        if self.start(field) {
            self.result = self.result.and_then(|()| write!(self.writer, "{value}"));
        }
    }

    /// The default's way with a field this visitor does not write itself.
    fn by_default(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.empty);
        record(&mut visitor);
        self.result = visitor.finish();
        self.empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let plain = value
            .bytes()
            .all(|byte| matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\');
        if field.name() == "message" || !plain {
            return self.by_default(|visitor| visitor.record_str(field, value));
        }
        if self.start(field) {
            self.result = self
                .result
                .and_then(|()| self.writer.write_char('"'))
                .and_then(|()| self.writer.write_str(value))
                .and_then(|()| self.writer.write_char('"'));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.display(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.display(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.display(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.by_default(|visitor| visitor.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            return self.by_default(|visitor| visitor.record_debug(field, value));
        }
        if self.start(field) {
            self.result = self.result.and_then(|()| write!(self.writer, "{value:?}"));
        }
    }
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` holds a value.
fn colours(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{colours, PlainFields};
    use std::ffi::OsStr;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::DefaultFields;
    use tracing_subscriber::fmt::{FormatFields, MakeWriter};

    /// What a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Every kind of field, in events and spans, through a subscriber whose fields are
    /// written by `fields`.
    fn lines<F>(fields: F, ansi: bool) -> String
    where
        F: for<'writer> FormatFields<'writer> + Send + Sync + 'static,
    {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(ansi)
            .with_writer(captured.clone())
            .fmt_fields(fields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other("disk full");
            let span = tracing::info_span!(
                "call",
                request_id = %"req-1",
                method = %http::Method::POST,
                path = "/compute/v1/images",
            );
            let _entered = span.enter();
            tracing::info!(
                target: "imageplane::access",
                protocol = "grpc",
                rpc = String::from("/yandex.cloud.compute.v1.ImageService/Create"),
                http_status = 200u16,
                grpc_status = -3i32,
                latency_us = 1234u64,
                ok = true,
                ratio = 0.5f64,
                "call finished"
            );
            tracing::warn!(
                quoted = "say \"hi\"\\",
                unicode = "d\u{e9}j\u{e0} \u{1b}[31m",
                multiline = "one\ntwo",
                empty = "",
                r#type = "disk",
                debug = ?vec!["a", "b"],
                %error,
                "a message with {} and \u{1b}[1m escapes",
                "arguments"
            );
            tracing::error!(error = &error as &dyn std::error::Error, "failed");
            tracing::info!("only a message");
            tracing::info!(message = 5u64, count = 2i64);
            tracing::info!(message = true);
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_fields_write_what_the_default_writes() {
        for ansi in [false, true] {
            let ours = lines(PlainFields, ansi);
            let default = lines(DefaultFields::new(), ansi);
            assert_eq!(ours, default, "ansi {ansi}");
            assert_eq!(ours.lines().count(), 6, "{ours}");
        }
        let ours = lines(PlainFields, false);
        assert!(
            ours.contains(r#"call{request_id=req-1 method=POST path="/compute/v1/images"}"#),
            "{ours}"
        );
        assert!(
            ours.contains("grpc_status=-3 latency_us=1234 ok=true"),
            "{ours}"
        );
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some(OsStr::new(""))));
        assert!(!colours(true, Some(OsStr::new("1"))));
        assert!(!colours(false, None));
    }
}
