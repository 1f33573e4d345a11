//! How far one import has come, shared between its transfer (which writes it at every
//! chunk) and the introspection API (which reads it through `Executor::import_progress`).
//! Only the replica that runs an import knows this; the stored operation carries a coarser
//! note in its description.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Progress(Mutex<Option<State>>);

#[derive(Debug, Clone, Copy)]
struct State {
    received: u64,
    expected: Option<u64>,
    started: Instant,
    started_at: SystemTime,
}

/// One reading of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressReading {
    /// Bytes received so far (from 0 again after the transfer started over).
    pub received: u64,
    /// The file's length, when the source said it.
    pub expected: Option<u64>,
    /// When the transfer started.
    pub started_at: SystemTime,
    /// How long it has run.
    pub elapsed: Duration,
}

impl ProgressReading {
    /// The mean rate since the transfer started, in bytes a second.
    pub fn bytes_per_second(&self) -> f64 {
        match self.elapsed.as_secs_f64() {
            seconds if seconds > 0.0 => self.received as f64 / seconds,
            _ => 0.0,
        }
    }

    /// The time left at the mean rate, when the length is known and bytes came.
    pub fn time_left(&self) -> Option<Duration> {
        let left = self.expected?.saturating_sub(self.received);
        let rate = self.bytes_per_second();
        (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

impl Progress {
    fn state(&self) -> std::sync::MutexGuard<'_, Option<State>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The transfer starts now (after waiting for a free import slot).
    pub fn start(&self) {
        *self.state() = Some(State {
            received: 0,
            expected: None,
            started: Instant::now(),
            started_at: SystemTime::now(),
        });
    }

    /// What the transfer has received, and the length the source said.
    pub fn update(&self, received: u64, expected: Option<u64>) {
        if let Some(state) = self.state().as_mut() {
            state.received = received;
            state.expected = expected;
        }
    }

    /// The progress now; `None` before the transfer started.
    pub fn read(&self) -> Option<ProgressReading> {
        self.state().map(|state| ProgressReading {
            received: state.received,
            expected: state.expected,
            started_at: state.started_at,
            elapsed: state.started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_knows_the_rate_and_the_time_left_only_when_it_can() {
        let progress = Progress::default();
        assert_eq!(progress.read(), None, "nothing before the transfer starts");
        progress.start();
        progress.update(0, None);
        let reading = progress.read().unwrap();
        assert_eq!(reading.time_left(), None, "no length, no time left");
        let reading = ProgressReading {
            received: 250,
            expected: Some(1000),
            started_at: SystemTime::now(),
            elapsed: Duration::from_secs(5),
        };
        assert_eq!(reading.bytes_per_second(), 50.0);
        assert_eq!(reading.time_left(), Some(Duration::from_secs(15)));
        let stalled = ProgressReading {
            received: 0,
            ..reading
        };
        assert_eq!(stalled.time_left(), None, "no bytes yet, no rate");
    }
}
