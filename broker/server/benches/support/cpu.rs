//! CPU time over a timed phase: the broker's (or the brokers', one
//! process each) and the load generator's (user + system, all threads,
//! from /proc/<pid>/stat), and the share of the whole machine's CPU time
//! that was not idle (from /proc/stat).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

/// `sysconf(_SC_CLK_TCK)`, the unit of /proc/<pid>/stat's CPU times. Linux
/// fixes it at 100 for user space; hardcoded to avoid a libc dependency.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The readings at the start of a phase.
#[derive(Debug)]
pub struct Meter {
    /// Each broker's pid and CPU seconds at the start.
    brokers: Vec<(u32, f64)>,
    client_cpu_seconds: f64,
    machine: MachineTicks,
    started: Instant,
}

/// Wall time, CPU time spent and machine load over one phase.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub wall: Duration,
    /// Summed over the brokers metered.
    pub broker_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    /// Share of the whole machine's CPU time that was not idle.
    pub machine_busy: f64,
}

impl Meter {
    pub fn start(broker_pid: u32) -> Result<Self> {
        Self::start_brokers(&[broker_pid])
    }

    /// Meters several broker processes at once (the nodes of a cluster).
    pub fn start_brokers(broker_pids: &[u32]) -> Result<Self> {
        let brokers = broker_pids
            .iter()
            .map(|&pid| Ok((pid, cpu_seconds(&pid.to_string())?)))
            .collect::<Result<_>>()?;
        let client_cpu_seconds = cpu_seconds("self")?;
        let machine = MachineTicks::read()?;
        // Taken last and read first in `stop`, so the wall time is the
        // phase's and not the /proc reads'.
        Ok(Self {
            brokers,
            client_cpu_seconds,
            machine,
            started: Instant::now(),
        })
    }

    pub fn stop(self) -> Result<Cost> {
        Ok(self.stop_per_broker()?.0)
    }

    /// The phase's cost, and each broker's CPU seconds in the order of
    /// `start_brokers`.
    pub fn stop_per_broker(self) -> Result<(Cost, Vec<f64>)> {
        let wall = self.started.elapsed();
        let per_broker = self
            .brokers
            .iter()
            .map(|&(pid, before)| Ok(cpu_seconds(&pid.to_string())? - before))
            .collect::<Result<Vec<f64>>>()?;
        let cost = Cost {
            wall,
            broker_cpu_seconds: per_broker.iter().sum(),
            client_cpu_seconds: cpu_seconds("self")? - self.client_cpu_seconds,
            machine_busy: MachineTicks::read()?.busy_since(self.machine),
        };
        Ok((cost, per_broker))
    }
}

/// User plus system CPU time of a process (all its threads), from
/// /proc/<pid>/stat; `pid` may be `self`.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15 (1-based).
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |field: usize| -> Result<f64> {
        let value = fields
            .get(field - 3)
            .with_context(|| format!("{path} is too short"))?;
        Ok(value.parse::<u64>()? as f64)
    };
    Ok((ticks(14)? + ticks(15)?) / CLOCK_TICKS_PER_SECOND)
}

/// All CPUs' ticks from the first line of /proc/stat.
#[derive(Debug, Clone, Copy)]
struct MachineTicks {
    total: u64,
    idle: u64,
}

impl MachineTicks {
    fn read() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        // cpu user nice system idle iowait irq softirq steal guest guest_nice;
        // guest time is already counted in user, so it is left out.
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .context("/proc/stat does not start with the cpu line")?
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        ensure!(ticks.len() == 8, "/proc/stat's cpu line is too short");
        Ok(Self {
            total: ticks.iter().sum(),
            idle: ticks[3] + ticks[4],
        })
    }

    fn busy_since(self, before: Self) -> f64 {
        let total = self.total.saturating_sub(before.total);
        let idle = self.idle.saturating_sub(before.idle);
        if total == 0 {
            return 0.0;
        }
        total.saturating_sub(idle) as f64 / total as f64
    }
}
