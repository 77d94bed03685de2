//! The `runnel serve` child process of a bench run.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// Long enough for the broker to fsync what it holds at shutdown.
const EXIT_DEADLINE: Duration = Duration::from_secs(120);
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The `runnel serve` child process, killed if dropped while running.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// The Prometheus endpoint, when the ready line names it.
    pub metrics_addr: Option<SocketAddr>,
    exited: bool,
}

impl BrokerProcess {
    /// Starts the `runnel` binary Cargo built for the bench (or
    /// `RUNNEL_BENCH_BINARY`) on free ports of 127.0.0.1, with each of
    /// `overrides` as an `--override key=value`, and waits for its ready
    /// line; `bench` names the bench in what it prints.
    pub fn start(bench: &str, log_dir: &Path, overrides: &[String]) -> Result<Self> {
        let mut args: Vec<std::ffi::OsString> = vec!["--log-dirs".into(), log_dir.into()];
        args.extend(["--listeners", "PLAINTEXT://127.0.0.1:0"].map(Into::into));
        for value in overrides {
            args.push("--override".into());
            args.push(value.into());
        }
        Self::start_with(bench, &args)
    }

    /// `runnel serve --config <config>`: everything but the metrics port
    /// from the file (a cluster node's server.properties).
    pub fn start_config(bench: &str, config: &Path) -> Result<Self> {
        Self::start_with(bench, &["--config".into(), config.into()])
    }

    fn start_with(bench: &str, args: &[std::ffi::OsString]) -> Result<Self> {
        let binary = std::env::var_os("RUNNEL_BENCH_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_runnel").into());
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .args(args)
            .args(["--override", "metrics.listen=127.0.0.1:0"]);
        for (key, _) in std::env::vars() {
            if key.starts_with("RUNNEL_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", Path::new(&binary).display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (ready_tx, ready) = std::sync::mpsc::channel();
        // Keeps reading after the ready line so the broker never blocks on
        // a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("runnel: listening on ") {
                    let addr = rest.split(' ').next().unwrap_or_default().to_string();
                    let metrics = rest
                        .split_once("metrics on http://")
                        .and_then(|(_, url)| url.split('/').next())
                        .map(str::to_string);
                    let _ = ready_tx.send((addr, metrics));
                }
            }
        });
        let mut broker = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            exited: false,
        };
        let (addr, metrics_addr) = ready
            .recv_timeout(READY_DEADLINE)
            .context("no `runnel: listening on` line from the broker")?;
        broker.addr = addr
            .parse()
            .with_context(|| format!("listener address {addr:?}"))?;
        broker.metrics_addr = metrics_addr.and_then(|a| a.parse().ok());
        eprintln!(
            "{bench}: runnel serve (pid {}) listening on {}",
            broker.pid(),
            broker.addr
        );
        Ok(broker)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("cannot kill the broker")?;
        self.child.wait().context("cannot reap the broker")?;
        self.exited = true;
        Ok(())
    }

    /// Sends SIGTERM and waits for a clean exit; returns how long it took.
    pub fn stop(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let pid = self.pid();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .context("cannot run kill")?;
        ensure!(status.success(), "kill -TERM {pid} failed: {status}");
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                ensure!(status.success(), "the broker exited with {status}");
                return Ok(started.elapsed());
            }
            if started.elapsed() > EXIT_DEADLINE {
                bail!("the broker did not exit within {EXIT_DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
