//! `max.connections`, `max.connections.per.ip` and
//! `max.connections.per.ip.overrides`, Kafka's connection quotas: a
//! connection past them is closed as soon as it is accepted, before a byte
//! is read, and counted by reason; the refusals are logged at most once a
//! second with how many were left unlogged.
//!
//! A connection holds a [`ConnectionSlot`] while it is open; dropping the
//! slot gives its place back. The counts sit behind one mutex held for a
//! map update only, never across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often refusals are logged at the most.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The limits, as parsed from the broker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionQuotas {
    /// `max.connections` (Kafka's default, `Int.MaxValue`, is no limit).
    pub max_connections: usize,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: `ip:count` pairs.
    pub per_ip_overrides: HashMap<IpAddr, usize>,
}

impl Default for ConnectionQuotas {
    fn default() -> Self {
        Self {
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            per_ip_overrides: HashMap::new(),
        }
    }
}

impl ConnectionQuotas {
    fn limit_for(&self, ip: IpAddr) -> usize {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

/// Parses `max.connections.per.ip.overrides`: `ip:count,ip:count`
/// (`[v6]:count` or `v6:count`, the count after the last colon).
pub fn parse_overrides(value: &str) -> Result<HashMap<IpAddr, usize>, String> {
    let mut overrides = HashMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?} is not ip:count"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.parse().map_err(|_| {
            format!("{host:?} is not an IP address (hostnames are not resolved here)")
        })?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("{count:?} in {entry:?} is not a count of connections"))?;
        overrides.insert(ip, count);
    }
    Ok(overrides)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The broker has `max.connections` open.
    MaxConnections { limit: usize },
    /// The address has its `max.connections.per.ip` (or override) open.
    MaxConnectionsPerIp { ip: IpAddr, limit: usize },
}

impl Refusal {
    /// The metric label of the reason.
    pub fn label(&self) -> &'static str {
        match self {
            Self::MaxConnections { .. } => "max_connections",
            Self::MaxConnectionsPerIp { .. } => "max_connections_per_ip",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Refusals since the last logged one, and when that was.
    unlogged: usize,
    last_logged: Option<Instant>,
}

/// The open connections, counted against the quotas.
#[derive(Debug)]
pub struct ConnectionLimits {
    quotas: ConnectionQuotas,
    counts: Mutex<Counts>,
}

impl ConnectionLimits {
    pub fn new(quotas: ConnectionQuotas) -> Arc<Self> {
        Arc::new(Self {
            quotas,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `ip`, or why there is none. A
    /// refusal is logged here (rate-limited).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut counts = self.counts();
        let per_ip_limit = self.quotas.limit_for(ip);
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        let refusal = if from_ip >= per_ip_limit {
            Some(Refusal::MaxConnectionsPerIp {
                ip,
                limit: per_ip_limit,
            })
        } else if counts.total >= self.quotas.max_connections {
            Some(Refusal::MaxConnections {
                limit: self.quotas.max_connections,
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            counts.unlogged += 1;
            let now = Instant::now();
            if counts
                .last_logged
                .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
            {
                let also_refused = counts.unlogged - 1;
                counts.unlogged = 0;
                counts.last_logged = Some(now);
                drop(counts);
                match refusal {
                    Refusal::MaxConnections { limit } => tracing::warn!(
                        %ip, limit, also_refused,
                        "connection refused: the broker has max.connections open"
                    ),
                    Refusal::MaxConnectionsPerIp { limit, .. } => tracing::warn!(
                        %ip, limit, also_refused,
                        "connection refused: this address has max.connections.per.ip open"
                    ),
                }
            }
            return Err(refusal);
        }
        counts.total += 1;
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// One open connection's place in the counts, given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn per_ip_limit_refuses_past_it_and_frees_on_drop() {
        let limits = ConnectionLimits::new(ConnectionQuotas {
            max_connections_per_ip: 2,
            ..ConnectionQuotas::default()
        });
        let a = limits.admit(ip("10.0.0.1")).expect("first");
        let _b = limits.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(
            limits.admit(ip("10.0.0.1")).expect_err("third"),
            Refusal::MaxConnectionsPerIp {
                ip: ip("10.0.0.1"),
                limit: 2
            }
        );
        // Another address has its own count.
        let _c = limits.admit(ip("10.0.0.2")).expect("other address");
        drop(a);
        limits.admit(ip("10.0.0.1")).expect("a place came free");
    }

    #[test]
    fn total_limit_counts_every_address_and_overrides_win() {
        let limits = ConnectionLimits::new(ConnectionQuotas {
            max_connections: 3,
            max_connections_per_ip: 1,
            per_ip_overrides: parse_overrides("127.0.0.1:5, [::1]:0").expect("overrides"),
        });
        let _a = limits.admit(ip("127.0.0.1")).expect("override allows 5");
        let _b = limits.admit(ip("127.0.0.1")).expect("override allows 5");
        assert_eq!(
            limits.admit(ip("::1")).expect_err("override of 0"),
            Refusal::MaxConnectionsPerIp {
                ip: ip("::1"),
                limit: 0
            }
        );
        let _c = limits.admit(ip("10.0.0.9")).expect("third in all");
        assert_eq!(
            limits.admit(ip("127.0.0.1")).expect_err("fourth in all"),
            Refusal::MaxConnections { limit: 3 }
        );
    }

    #[test]
    fn overrides_name_what_is_wrong() {
        assert_eq!(parse_overrides("").expect("empty is none"), HashMap::new());
        let err = parse_overrides("broker-0:3").expect_err("hostname");
        assert!(err.contains("\"broker-0\" is not an IP address"), "{err}");
        let err = parse_overrides("10.0.0.1:many").expect_err("count");
        assert!(err.contains("\"many\""), "{err}");
        let err = parse_overrides("10.0.0.1").expect_err("no count");
        assert!(err.contains("is not ip:count"), "{err}");
    }
}
