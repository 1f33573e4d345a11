//! The real `imageplane` binary as a child process: started with flags on an ephemeral
//! port, with its log in a file, and stopped by SIGTERM or killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `imageplane serve`.
pub struct ServerProcess {
    pub child: Child,
    pub address: String,
    pub log: PathBuf,
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(label: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("imageplane-{label}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

impl ServerProcess {
    /// Starts `imageplane serve --listen 127.0.0.1:0` with more flags and waits for its
    /// announcement. The log (stderr) goes to `log`.
    pub fn start(flags: &[&str], log: PathBuf) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_imageplane"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags);
        ServerProcess::start_command(command, log)
    }

    /// The same, with at most `limit` open file descriptors (`ulimit -n`).
    pub fn start_with_fd_limit(limit: u32, flags: &[&str], log: PathBuf) -> ServerProcess {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_imageplane"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags);
        ServerProcess::start_command(command, log)
    }

    /// Starts `command` (a server that prints imageplane's ready line), its log to `log`.
    pub fn start_command(mut command: Command, log: PathBuf) -> ServerProcess {
        let log_file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("imageplane listening on ")
            .unwrap_or_else(|| {
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("unexpected first line {line:?}; log:\n{logged}")
            })
            .to_string();
        ServerProcess {
            child,
            address,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit; returns how long it took (panics after 30 s).
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The CPU time (user and system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses: utime and stime are
        // the 12th and 13th of them, in clock ticks (100 a second on Linux).
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// The resident memory of the process now, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    /// What the server has logged so far.
    pub fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the log holds every one of `needles` within `within`: a running server
    /// writes its log every 50 ms, so a line is in the file a moment after what it tells.
    /// Answers the log as last read.
    pub async fn logs_soon(&self, needles: &[&str], within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        loop {
            let logged = self.logged();
            if needles.iter().all(|needle| logged.contains(needle)) {
                return (true, logged);
            }
            if Instant::now() > deadline {
                return (false, logged);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
