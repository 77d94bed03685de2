//! The broker's Prometheus endpoint, read with one plain HTTP/1.1 GET: the
//! value of a gauge, and a wait for a gauge to reach a value.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const POLL_INTERVAL: Duration = Duration::from_millis(50);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The value of the unlabelled sample `name` on the metrics page at `addr`.
pub fn gauge(addr: SocketAddr, name: &str) -> Result<f64> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("cannot connect to the metrics port {addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut page = String::new();
    stream
        .read_to_string(&mut page)
        .with_context(|| format!("reading http://{addr}/metrics"))?;
    let body = page
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .with_context(|| format!("http://{addr}/metrics answered no body"))?;
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .with_context(|| format!("no {name} on http://{addr}/metrics"))?
        .trim()
        .parse()
        .with_context(|| format!("{name} on http://{addr}/metrics is not a number"))
}

/// Polls the gauge `name` until it is at least `at_least`, or fails at the
/// deadline; returns the last value read.
pub fn wait_for_gauge(
    addr: SocketAddr,
    name: &str,
    at_least: f64,
    deadline: Duration,
) -> Result<f64> {
    let started = Instant::now();
    loop {
        let value = gauge(addr, name)?;
        if value >= at_least {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("{name} is {value} after {deadline:?}, expected at least {at_least}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
