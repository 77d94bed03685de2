//! Addresses in Kafka's syntax: `host:port` and listeners
//! `PLAINTEXT://host:port`, comma-separated. IPv6 hosts go in brackets
//! (`[::1]:9092`); an empty host binds every interface, as in Kafka.

use std::fmt;

/// The only security protocol served for now.
const PLAINTEXT: &str = "PLAINTEXT";

/// A host (name or IP literal, IPv6 without brackets) and a port. Binds and
/// resolves as `(host.as_str(), port)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or("expected host:port, e.g. 127.0.0.1:9092")?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or("unclosed [ around the host")?,
            None if host.contains(':') => {
                return Err("an IPv6 host needs brackets, e.g. [::1]:9092".into());
            }
            None => host,
        };
        if host.contains(|c: char| c.is_whitespace() || "/[]@".contains(c)) {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        let port = port
            .parse()
            .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The address that means "every interface": fine to bind, useless to
    /// hand to a client.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.as_str(), "0.0.0.0" | "::")
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One entry of `listeners` or `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper case; also its security protocol, as only
    /// `PLAINTEXT` exists for now.
    pub name: String,
    pub address: HostPort,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, self.address)
    }
}

/// Parses a comma-separated listener list; names must be distinct.
pub fn parse_listeners(text: &str) -> Result<Vec<Listener>, String> {
    let mut listeners: Vec<Listener> = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (name, address) = item.split_once("://").ok_or_else(|| {
            format!("{item:?} is not NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092")
        })?;
        let name = name.to_ascii_uppercase();
        if name != PLAINTEXT {
            return Err(format!(
                "{item:?}: only PLAINTEXT listeners are supported for now"
            ));
        }
        let address = HostPort::parse(address).map_err(|reason| format!("{item:?}: {reason}"))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(format!("listener name {name} is given twice"));
        }
        listeners.push(Listener { name, address });
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_ipv6() {
        let l = parse_listeners(" plaintext://[::1]:9092 ").expect("valid");
        assert_eq!(l[0].name, "PLAINTEXT");
        assert_eq!(l[0].address.host, "::1");
        assert_eq!(l[0].to_string(), "PLAINTEXT://[::1]:9092");
        let any = parse_listeners("PLAINTEXT://:0").expect("empty host");
        assert!(any[0].address.is_wildcard());
        assert_eq!(any[0].address.port, 0);
        assert_eq!(
            HostPort::parse("broker-0.runnel:9644").expect("valid"),
            HostPort {
                host: "broker-0.runnel".into(),
                port: 9644
            }
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let err = |text| parse_listeners(text).expect_err(text);
        assert_eq!(
            err("SSL://host:9093"),
            "\"SSL://host:9093\": only PLAINTEXT listeners are supported for now"
        );
        assert!(err("127.0.0.1:9092").contains("is not NAME://host:port"));
        assert!(err("PLAINTEXT://h:99999").contains("port \"99999\" is not a number"));
        assert!(err("PLAINTEXT://::1:9092").contains("needs brackets"));
        assert!(err("PLAINTEXT://h").contains("expected host:port"));
        assert!(err("PLAINTEXT://a:1,PLAINTEXT://b:2").contains("given twice"));
        assert!(err("").contains("is not NAME://host:port"));
    }
}
