//! Apache Kafka as the oracle of the tests, through scripts/kafka.sh: whether
//! the pinned version is installed (a test fails with the command that
//! installs it, never skips), a one-node Kafka broker on a loopback port in
//! 22000-22999 that is stopped when dropped, and Kafka's tools run with a
//! deadline.

use std::fs::File;
use std::io::{Read, Seek};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One run of a Kafka tool (a JVM start and a few seconds of work) on a
/// busy two-core machine; only a hung tool waits this long.
pub const TOOL_DEADLINE: Duration = Duration::from_secs(180);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// scripts/kafka.sh.
pub fn script() -> PathBuf {
    repo_root().join("scripts/kafka.sh")
}

/// The Kafka version pinned in scripts/kafka/pom.xml.
pub fn version() -> String {
    let pom = repo_root().join("scripts/kafka/pom.xml");
    let text = std::fs::read_to_string(&pom)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", pom.display()));
    text.split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split("</kafka.version>").next())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no <kafka.version> in {}", pom.display()))
}

/// Fails the test, naming the command to run, unless scripts/kafka.sh has
/// installed the pinned Kafka (its `.complete` marker in the tool cache).
pub fn require_installed() {
    let version = version();
    let cache = std::env::var_os("RUNNEL_TOOLS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/runnel-test-tools")
        });
    let marker = cache.join(format!("kafka-{version}/libs/.complete"));
    assert!(
        marker.is_file(),
        "Kafka {version} is not installed: run scripts/kafka.sh install (no {})",
        marker.display()
    );
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, with everything the command printed, unless it exited 0.
    pub fn expect_success(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `command` to its end, killing it after `deadline`. Its output goes
/// to unnamed files, not pipes, so a child it leaves running (the Kafka
/// broker started by `kafka.sh start`) cannot hold the read open.
pub fn run(command: &mut Command, deadline: Duration) -> Output {
    let stdout = tempfile::tempfile().expect("temp file");
    let stderr = tempfile::tempfile().expect("temp file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("dup"))
        .stderr(stderr.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let until = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {deadline:?}\nstdout:\n{}\nstderr:\n{}",
                read_all(stdout),
                read_all(stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: read_all(stdout),
        stderr: read_all(stderr),
    }
}

fn read_all(mut file: File) -> String {
    let mut text = String::new();
    file.rewind().expect("rewind");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read output");
    text.push_str(&String::from_utf8_lossy(&bytes));
    text
}

/// `kafka.sh run CLASS ARGS...` (e.g. kafka.tools.DumpLogSegments).
pub fn tool(class: &str, args: &[&str]) -> Output {
    run(
        Command::new(script()).arg("run").arg(class).args(args),
        TOOL_DEADLINE,
    )
}

/// A one-node KRaft Kafka broker started by `kafka.sh start`.
#[derive(Debug)]
pub struct KafkaBroker {
    dir: PathBuf,
    /// `127.0.0.1:PORT` of its PLAINTEXT listener.
    pub bootstrap: String,
    stopped: bool,
}

impl KafkaBroker {
    /// Formats `dir` and starts Kafka there on a free port in 22000-22999.
    pub fn start(dir: &Path) -> Self {
        let port = free_port_in_range();
        let output = run(
            Command::new(script())
                .arg("start")
                .arg(dir)
                .arg(port.to_string())
                .env(
                    "KAFKA_HEAP_OPTS",
                    std::env::var("KAFKA_HEAP_OPTS").unwrap_or_else(|_| "-Xmx512M".into()),
                ),
            TOOL_DEADLINE,
        );
        let broker = Self {
            dir: dir.to_path_buf(),
            bootstrap: format!("127.0.0.1:{port}"),
            stopped: false,
        };
        output.expect_success("kafka.sh start");
        broker
    }

    /// Where Kafka keeps its partition directories.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// SIGTERM and wait: Kafka's controlled shutdown, which leaves the
    /// clean-shutdown marker and trimmed indexes.
    pub fn stop(&mut self) {
        self.stopped = true;
        run(
            Command::new(script()).arg("stop").arg(&self.dir),
            TOOL_DEADLINE,
        )
        .expect_success("kafka.sh stop");
        let marker = self.data_dir().join(".kafka_cleanshutdown");
        assert!(
            marker.exists(),
            "Kafka left no clean-shutdown marker in {}; its log:\n{}",
            self.data_dir().display(),
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("kafka.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for KafkaBroker {
    /// A failed test must not leave Kafka running.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- the end of Kafka's log ---\n{}\n--- end of Kafka's log ---",
                self.log_tail()
            );
        }
        if !self.stopped {
            let _ = Command::new(script())
                .arg("stop")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A port of 22000-22999 that nothing listens on now, starting from a place
/// that differs between processes so parallel runs rarely try the same one.
fn free_port_in_range() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let start = (std::process::id() ^ nanos) % 1000;
    (0..1000)
        .map(|i| 22000 + ((start + i) % 1000) as u16)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 22000-22999")
}
