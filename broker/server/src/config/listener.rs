//! Addresses in Kafka's syntax: `host:port` and listeners
//! `NAME://host:port`, comma-separated. IPv6 hosts go in brackets
//! (`[::1]:9092`); an empty host binds every interface, as in Kafka.
//!
//! A listener's name maps to its security protocol through
//! `listener.security.protocol.map` ([`ProtocolMap`]); only PLAINTEXT is
//! served for now, so a listener mapped to another protocol is refused.

use std::fmt;

/// The only security protocol served for now.
const PLAINTEXT: &str = "PLAINTEXT";

/// Kafka's security protocols (`SecurityProtocol`).
const PROTOCOLS: [&str; 4] = [PLAINTEXT, "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

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
    /// The listener name, upper case (`PLAINTEXT`, `CONTROLLER`); its
    /// security protocol is the one [`ProtocolMap`] gives it, PLAINTEXT
    /// for every listener that loads.
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
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "{item:?}: the listener name must be letters, digits, _ or -"
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

/// `listener.security.protocol.map`: listener name to security protocol,
/// both upper case, e.g. `CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolMap(Vec<(String, String)>);

impl Default for ProtocolMap {
    /// Kafka's default: each protocol is the listener of its own name.
    fn default() -> Self {
        Self(PROTOCOLS.map(|p| (p.to_string(), p.to_string())).to_vec())
    }
}

impl ProtocolMap {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map: Vec<(String, String)> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, protocol) = item.split_once(':').ok_or_else(|| {
                format!("{item:?} is not NAME:PROTOCOL, e.g. CONTROLLER:PLAINTEXT")
            })?;
            let (name, protocol) = (
                name.trim().to_ascii_uppercase(),
                protocol.trim().to_ascii_uppercase(),
            );
            if !PROTOCOLS.contains(&protocol.as_str()) {
                return Err(format!(
                    "{item:?}: {protocol} is no security protocol; they are {}",
                    PROTOCOLS.join(", ")
                ));
            }
            if map.iter().any(|(n, _)| *n == name) {
                return Err(format!("listener name {name} is given twice"));
            }
            map.push((name, protocol));
        }
        Ok(Self(map))
    }

    /// The security protocol of the listener `name` (upper case).
    pub fn protocol(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_str())
    }

    /// Kafka's KRaft addition to the default map, when the map is not
    /// given: each controller listener name is PLAINTEXT, unless a
    /// controller or listener name is itself SSL or SASL_* (then an
    /// explicit map is required).
    pub fn with_plaintext_controllers(
        mut self,
        controllers: &[String],
        listeners: &[Listener],
    ) -> Self {
        let secure = |name: &str| PROTOCOLS[1..].contains(&name);
        let names = controllers.iter().map(String::as_str);
        if names
            .clone()
            .chain(listeners.iter().map(|l| l.name.as_str()))
            .any(secure)
        {
            return self;
        }
        for name in names {
            if self.protocol(name).is_none() {
                self.0.push((name.to_string(), PLAINTEXT.to_string()));
            }
        }
        self
    }

    /// Refuses a listener name the map does not know or maps to anything
    /// but PLAINTEXT: SSL and SASL come later.
    pub fn check_plaintext(&self, name: &str, shown: &dyn fmt::Display) -> Result<(), String> {
        match self.protocol(name) {
            Some(PLAINTEXT) => Ok(()),
            Some(protocol) if protocol == name => Err(format!(
                "\"{shown}\": only PLAINTEXT listeners are supported for now"
            )),
            Some(protocol) => Err(format!(
                "\"{shown}\": listener.security.protocol.map gives {name} the security protocol \
                 {protocol}; only PLAINTEXT listeners are supported for now"
            )),
            None => Err(format!(
                "\"{shown}\": listener.security.protocol.map gives no security protocol for \
                 the listener name {name}; add {name}:PLAINTEXT to it"
            )),
        }
    }
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
        assert!(err("127.0.0.1:9092").contains("is not NAME://host:port"));
        assert!(err("PLAINTEXT://h:99999").contains("port \"99999\" is not a number"));
        assert!(err("PLAINTEXT://::1:9092").contains("needs brackets"));
        assert!(err("PLAINTEXT://h").contains("expected host:port"));
        assert!(err("PLAINTEXT://a:1,PLAINTEXT://b:2").contains("given twice"));
        assert!(err("").contains("is not NAME://host:port"));
        assert!(err("C ONTROLLER://h:1").contains("the listener name must be"));
    }

    #[test]
    fn protocols_come_from_the_map() {
        let listeners = parse_listeners("PLAINTEXT://:9092,CONTROLLER://:9093,SSL://:9094")
            .expect("names are free");
        let check = |map: &ProtocolMap, l: &Listener| map.check_plaintext(&l.name, l);
        let kafka = ProtocolMap::default();
        assert_eq!(check(&kafka, &listeners[0]), Ok(()));
        assert_eq!(
            check(&kafka, &listeners[2]).expect_err("ssl"),
            "\"SSL://0.0.0.0:9094\": only PLAINTEXT listeners are supported for now"
        );
        assert!(
            check(&kafka, &listeners[1])
                .expect_err("unmapped")
                .ends_with("no security protocol for the listener name CONTROLLER; add CONTROLLER:PLAINTEXT to it")
        );
        let kraft = ProtocolMap::default()
            .with_plaintext_controllers(&["CONTROLLER".into()], &listeners[..2]);
        assert_eq!(check(&kraft, &listeners[1]), Ok(()));
        let secure =
            ProtocolMap::default().with_plaintext_controllers(&["CONTROLLER".into()], &listeners);
        assert!(
            check(&secure, &listeners[1]).is_err(),
            "SSL in use: no implicit mapping"
        );
        let given = ProtocolMap::parse("controller:SASL_SSL, PLAINTEXT:PLAINTEXT").expect("valid");
        assert_eq!(
            check(&given, &listeners[1]).expect_err("sasl"),
            "\"CONTROLLER://0.0.0.0:9093\": listener.security.protocol.map gives CONTROLLER the \
             security protocol SASL_SSL; only PLAINTEXT listeners are supported for now"
        );
        assert!(
            ProtocolMap::parse("A:TLS")
                .expect_err("tls")
                .contains("TLS is no security protocol")
        );
        assert!(
            ProtocolMap::parse("A")
                .expect_err("no colon")
                .contains("is not NAME:PROTOCOL")
        );
        assert!(
            ProtocolMap::parse("A:SSL,a:SSL")
                .expect_err("twice")
                .contains("given twice")
        );
    }
}
