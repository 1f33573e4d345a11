//! What the load benchmarks share: clients that repeat one call on their own connection
//! for a while, and the measurement of that (throughput, latency percentiles, and the CPU
//! time of the whole process per call, and of the database's processes when asked).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// One client repeating one call; `call` answers whether it succeeded.
pub trait Call: Send + 'static {
    fn call(&mut self) -> impl Future<Output = bool> + Send;
}

/// A gRPC channel of its own to `address` (one HTTP/2 connection).
pub async fn connect(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The fields of /proc/PID/stat after the command name that count CPU time, in clock
/// ticks (100 a second on Linux): utime and stime, then cutime and cstime (the children
/// the process reaped).
const OWN_TICKS: [usize; 2] = [11, 12];
const WITH_CHILDREN_TICKS: [usize; 4] = [11, 12, 13, 14];

/// A process's command name (within the parentheses, which it may itself contain) and the
/// sum of its `fields` of CPU ticks, from the text of its /proc/PID/stat.
fn stat_ticks<'a>(stat: &'a str, fields: &[usize]) -> Option<(&'a str, u64)> {
    let (head, after_name) = stat.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    let values: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields
        .iter()
        .filter_map(|index| values.get(*index)?.parse::<u64>().ok())
        .sum();
    Some((name, ticks))
}

/// CPU time this process has used so far (user + system), from /proc/self/stat.
#[allow(dead_code)] // Not every benchmark that includes this file calls it.
pub fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks = stat_ticks(&stat, &OWN_TICKS).map_or(0, |(_, ticks)| ticks);
    Duration::from_millis(ticks * 10)
}

/// The CPU time (user + system) of every process of this machine named `name` so far,
/// with that of the children it reaped (so that a process that ends is still counted, in
/// its parent), or `None` when there is none.
#[allow(dead_code)] // Not every benchmark that includes this file calls it.
pub fn processes_cpu_time(name: &str) -> Option<Duration> {
    let mut found = false;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((command, process_ticks)) = stat_ticks(&stat, &WITH_CHILDREN_TICKS) {
            if command == name {
                found = true;
                ticks += process_ticks;
            }
        }
    }
    found.then(|| Duration::from_millis(ticks * 10))
}

pub struct Measurement {
    pub requests: usize,
    pub cpu: Duration,
    /// The database's processes' CPU time, when they were measured.
    pub database_cpu: Option<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted.
    pub latencies_us: Vec<u32>,
}

impl Measurement {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time of the whole process (server and load) per request.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.us_per_request(self.cpu)
    }

    /// The database's CPU time per request, when it was measured.
    pub fn database_cpu_us_per_request(&self) -> Option<f64> {
        self.database_cpu.map(|cpu| self.us_per_request(cpu))
    }

    fn us_per_request(&self, time: Duration) -> f64 {
        time.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    pub fn percentile_us(&self, fraction: f64) -> u32 {
        let index = ((self.latencies_us.len() as f64 - 1.0) * fraction).round() as usize;
        self.latencies_us.get(index).copied().unwrap_or(0)
    }
}

/// Runs every caller concurrently, each one call at a time, for `warmup` and then
/// `duration`; measures the calls sent after the warm-up, and this process's CPU time.
#[allow(dead_code)] // Not every benchmark that includes this file calls it.
pub async fn drive<C: Call>(callers: Vec<C>, warmup: Duration, duration: Duration) -> Measurement {
    drive_measuring(callers, warmup, duration, process_cpu_time, || None).await
}

/// The same, with the CPU time that `cpu_time` reads (another process's, say), and the
/// database's that `database_cpu_time` reads, if any.
pub async fn drive_measuring<C: Call>(
    callers: Vec<C>,
    warmup: Duration,
    duration: Duration,
    cpu_time: impl Fn() -> Duration,
    database_cpu_time: impl Fn() -> Option<Duration>,
) -> Measurement {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut workers = Vec::new();
    for mut caller in callers {
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let succeeded = caller.call().await;
                if sent >= start {
                    if succeeded {
                        latencies.push(sent.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep_until(start.into()).await;
    let cpu_at_start = cpu_time();
    let database_cpu_at_start = database_cpu_time();
    tokio::time::sleep_until(end.into()).await;
    let cpu = cpu_time().saturating_sub(cpu_at_start);
    let database_cpu = database_cpu_time()
        .zip(database_cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, worker_errors) = worker.await.unwrap();
        latencies_us.extend(latencies);
        errors += worker_errors;
    }
    latencies_us.sort_unstable();
    Measurement {
        requests: latencies_us.len(),
        cpu,
        database_cpu,
        errors,
        elapsed: duration,
        latencies_us,
    }
}

/// One line of figures.
pub fn report(label: &str, measurement: &Measurement) {
    let database = measurement
        .database_cpu_us_per_request()
        .map_or(String::new(), |us| format!("database {us:>6.1} us/req   "));
    println!(
        "{label:<24} {:>7.0} req/s   p50 {:>6} us   p99 {:>6} us   cpu {:>6.1} us/req   {database}({} requests, {} errors)",
        measurement.throughput(),
        measurement.percentile_us(0.50),
        measurement.percentile_us(0.99),
        measurement.cpu_us_per_request(),
        measurement.requests,
        measurement.errors,
    );
}
