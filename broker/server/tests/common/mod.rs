//! Runs the real `runnel` binary as a child process: its stdout lines arrive
//! on a channel, its stderr is collected, and every wait has a deadline so a
//! hung broker fails the test instead of hanging it.

pub mod client;
pub mod cluster;
pub mod dump_log;
pub mod kafka;
pub mod raw;
pub mod records;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Long enough for a debug build on a busy two-core machine; only a broken
/// broker ever waits this long.
pub const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Broker {
    pid: u32,
    /// `host:port` of the Kafka listener, known once the ready line came.
    pub bootstrap: String,
    /// `host:port` of the metrics port, known once the ready line came.
    pub metrics: String,
    stdout_lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    exit: Receiver<std::io::Result<ExitStatus>>,
    exited: bool,
}

/// How a broker process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
}

/// A broker with `overrides`, ready, with its data in a fresh directory
/// (deleted when the returned `TempDir` drops).
pub fn started_with(overrides: &[&str]) -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), overrides);
    broker.wait_ready();
    (dir, broker)
}

/// A runtime for a test's async part.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

impl Broker {
    /// Starts `runnel serve --log-dirs <dirs>` on free ports of 127.0.0.1.
    pub fn serve(log_dirs: &Path) -> Self {
        Self::serve_with(log_dirs, &[])
    }

    /// As [`Broker::serve`], with more `--override key=value` settings.
    pub fn serve_with(log_dirs: &Path, overrides: &[&str]) -> Self {
        Self::serve_with_env(log_dirs, overrides, &[])
    }

    /// As [`Broker::serve_with`], with environment variables set for the
    /// broker (e.g. a fault-injection switch).
    pub fn serve_with_env(log_dirs: &Path, overrides: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
        command.envs(env.iter().copied());
        command
            .arg("serve")
            .arg("--log-dirs")
            .arg(log_dirs)
            .args(["--listeners", "PLAINTEXT://127.0.0.1:0"])
            .args(["--override", "metrics.listen=127.0.0.1:0"]);
        for setting in overrides {
            command.args(["--override", setting]);
        }
        Self::spawn(command)
    }

    /// `runnel serve --config <config>`, everything else from the file.
    pub fn serve_config(config: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
        command.arg("serve").arg("--config").arg(config);
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        for (key, _) in std::env::vars() {
            if key.starts_with("RUNNEL_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            // RUNNEL_TEST_LOG=debug (or any RUST_LOG filter) to see more
            // of what the broker did in a failing test.
            .env(
                "RUST_LOG",
                std::env::var("RUNNEL_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runnel");
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (line_tx, stdout_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (exit_tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exit_tx.send(child.wait());
        });
        Self {
            pid,
            bootstrap: String::new(),
            metrics: String::new(),
            stdout_lines,
            stderr: Some(stderr),
            exit,
            exited: false,
        }
    }

    /// Waits for the `runnel: listening on` line on stdout, notes the
    /// addresses it names, and returns it.
    pub fn wait_ready(&mut self) -> String {
        self.wait_ready_within(DEADLINE)
    }

    /// As [`Broker::wait_ready`], with a deadline of `within`.
    pub fn wait_ready_within(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) if line.starts_with("runnel: listening on ") => {
                    let word_after = |marker: &str| {
                        line.split(marker)
                            .nth(1)
                            .and_then(|rest| rest.split([' ', '/']).next())
                            .unwrap_or_default()
                            .to_string()
                    };
                    self.bootstrap = word_after("listening on ");
                    self.metrics = word_after("metrics on http://");
                    return line;
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no ready line from runnel within {within:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let exit = self.wait_exit();
                    panic!(
                        "runnel closed stdout before its ready line ({}); stderr:\n{}",
                        exit.status, exit.stderr
                    );
                }
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) -> Exit {
        signal(self.pid, "-KILL");
        self.wait_exit()
    }

    /// Stops the process with SIGSTOP: alive, but silent (a long pause).
    pub fn pause(&self) {
        signal(self.pid, "-STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid, "-CONT");
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        signal(self.pid, "-TERM");
    }

    /// Waits for the process to exit and returns its status and stderr.
    pub fn wait_exit(&mut self) -> Exit {
        let status = match self.exit.recv_timeout(DEADLINE) {
            Ok(status) => status.expect("wait for runnel"),
            Err(_) => panic!("runnel did not exit within {DEADLINE:?}"),
        };
        self.exited = true;
        let stderr = self
            .stderr
            .take()
            .map(|handle| handle.join().expect("stderr reader"))
            .unwrap_or_default();
        Exit { status, stderr }
    }
}

impl Drop for Broker {
    /// A failed test must not leave a broker running.
    fn drop(&mut self) {
        if !self.exited && self.exit.try_recv().is_err() {
            signal(self.pid, "-KILL");
        }
        // A failing test shows what the broker logged.
        if std::thread::panicking()
            && let Some(stderr) = self.stderr.take()
            && let Ok(text) = stderr.join()
        {
            eprintln!("--- runnel's stderr ---\n{text}--- end of runnel's stderr ---");
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed: {status}");
}

/// kcat, or `kafkacat` as Debian names it (scripts/test.sh installs it).
pub fn kcat() -> Command {
    let name = if Command::new("kcat").arg("-V").output().is_ok() {
        "kcat"
    } else {
        "kafkacat"
    };
    Command::new(name)
}

/// The text of the broker's `/metrics` page at `metrics` (`host:port`).
pub fn scrape_metrics(metrics: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(metrics).expect("connect to metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: runnel\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read metrics");
    text
}

/// `text` without its terminal colour sequences (`ESC [ ... m`), as the
/// broker's log lines read when they are not coloured.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
