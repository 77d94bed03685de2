//! `meta.properties` in the first log dir, as Kafka's KRaft brokers keep
//! it: the cluster id (generated on first start unless `cluster.id` is
//! set) and this node's id. A dir that belongs to another cluster or node
//! is refused rather than mixed in.
//!
//! A node with `process.roles` does not format itself: every log dir and
//! the metadata log dir must have been formatted first
//! ([`check_formatted`]), as Kafka's nodes require.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use uuid::Uuid;

use crate::config::BrokerConfig;

pub const FILE_NAME: &str = "meta.properties";

/// Why a node with `process.roles` may not start on its dirs.
#[derive(Debug, thiserror::Error)]
pub enum FormatCheckError {
    #[error(
        "No meta.properties found in {} (have you run `runnel storage format` or \
         kafka-storage.sh to format the directory?)",
        dir.display()
    )]
    Unformatted { dir: PathBuf },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no cluster.id", path.display())]
    NoClusterId { path: PathBuf },
    #[error("{} holds cluster.id {found}, but {expected_from} says {expected}", path.display())]
    ClusterIdMismatch {
        path: PathBuf,
        found: String,
        expected: String,
        expected_from: String,
    },
    #[error("{} holds node.id {found}, but node.id is {node_id}", path.display())]
    NodeIdMismatch {
        path: PathBuf,
        found: String,
        node_id: i32,
    },
}

/// For a node with `process.roles`: the cluster id its dirs were
/// formatted with, refusing a log dir or metadata log dir without
/// `meta.properties`, or one of another node or cluster. `Ok(None)`
/// without `process.roles`: that broker formats itself on first start
/// ([`cluster_id`]).
///
/// This is how a wiped voter is kept from voting as if it were new: with
/// its dirs wiped it has no `meta.properties` and does not start until an
/// operator formats it again, knowingly; it never rejoins the quorum with
/// an empty log and a forgotten vote under its old id on its own.
pub fn check_formatted(config: &BrokerConfig) -> Result<Option<String>, FormatCheckError> {
    if config.quorum.is_none() {
        return Ok(None);
    }
    let mut expected: Option<(String, String)> = config
        .cluster_id
        .clone()
        .map(|id| (id, "the setting cluster.id".to_string()));
    for dir in formatted_dirs(config) {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FormatCheckError::Unformatted {
                    dir: dir.to_path_buf(),
                });
            }
            Err(source) => return Err(FormatCheckError::Read { path, source }),
        };
        let found = property(&text, "cluster.id")
            .ok_or_else(|| FormatCheckError::NoClusterId { path: path.clone() })?;
        if let Some(stored) = property(&text, "node.id")
            && stored != config.node_id.to_string()
        {
            return Err(FormatCheckError::NodeIdMismatch {
                path,
                found: stored,
                node_id: config.node_id,
            });
        }
        match &expected {
            Some((id, from)) if *id != found => {
                return Err(FormatCheckError::ClusterIdMismatch {
                    path,
                    found,
                    expected: id.clone(),
                    expected_from: from.clone(),
                });
            }
            Some(_) => {}
            None => expected = Some((found, path.display().to_string())),
        }
    }
    Ok(expected.map(|(id, _)| id))
}

/// The dirs `kafka-storage format` writes `meta.properties` in: every log
/// dir, and with `process.roles` the metadata log dir when it is not one
/// of them.
pub fn formatted_dirs(config: &BrokerConfig) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = config.log_dirs.iter().map(PathBuf::as_path).collect();
    let metadata = config.metadata_log_dir();
    if config.quorum.is_some() && !dirs.contains(&metadata) {
        dirs.push(metadata);
    }
    dirs
}

/// The value of `key` in a `meta.properties` text.
fn property(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// The cluster id of the data in `dir`, writing `meta.properties` when it
/// is missing.
pub fn cluster_id(dir: &Path, configured: Option<&str>, node_id: i32) -> Result<String> {
    let path = dir.join(FILE_NAME);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if let Some(text) = existing {
        let value = |key: &str| property(&text, key);
        let stored =
            value("cluster.id").with_context(|| format!("{} has no cluster.id", path.display()))?;
        if let Some(configured) = configured
            && configured != stored
        {
            bail!(
                "cluster.id {configured} does not match {stored} stored in {}",
                path.display()
            );
        }
        if let Some(stored_node) = value("node.id")
            && stored_node != node_id.to_string()
        {
            bail!(
                "node.id {node_id} does not match {stored_node} stored in {}",
                path.display()
            );
        }
        return Ok(stored);
    }
    let id = configured.map_or_else(new_cluster_id, str::to_string);
    let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
    write_synced(&path, &text)?;
    Ok(id)
}

/// Whether `id` reads as Kafka's `Uuid.fromString` reads one: 22
/// characters of URL-safe base64 without padding, 16 bytes.
pub fn is_valid_uuid(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        // The last character carries 2 bits of the 128: the other 4 are 0.
        && id.bytes().last().is_some_and(|b| {
            let value = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'-' => 62,
                _ => 63,
            };
            value & 0x0f == 0
        })
}

/// Writes `meta.properties` in `dir` for a node of `cluster_id`, as
/// `kafka-storage format` does (with a directory id of its own, KIP-858);
/// `Ok(false)` when `dir` is already formatted.
pub fn format(dir: &Path, cluster_id: &str, node_id: i32) -> Result<bool> {
    let path = dir.join(FILE_NAME);
    if path.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = format!(
        "#\n#{}\nnode.id={node_id}\ndirectory.id={}\nversion=1\ncluster.id={cluster_id}\n",
        "Written by runnel storage format",
        new_cluster_id()
    );
    write_synced(&path, &text)?;
    Ok(true)
}

fn write_synced(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A Kafka-style cluster id: a random UUID in URL-safe base64, 22 chars.
pub fn new_cluster_id() -> String {
    uuid_string(random_uuid())
}

/// A random UUID as Kafka's `Uuid.randomUuid` makes one: never the
/// reserved zero or one ids, and never one whose string starts with `-`,
/// which a command line would take for a flag (`-t -K...`).
pub fn random_uuid() -> Uuid {
    loop {
        let uuid = Uuid::new_v4();
        let bits = uuid.as_u128();
        if bits > 1 && (bits >> 122) as usize & 63 != 62 {
            return uuid;
        }
    }
}

/// A UUID as Kafka writes one (its `Uuid.toString`): URL-safe base64 of
/// its 16 bytes, unpadded, 22 chars.
pub fn uuid_string(uuid: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u128 = u128::from_be_bytes(uuid.into_bytes());
    let mut out = Vec::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits >> 122) as usize & 63]);
        bits <<= 6;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_keeps_and_checks_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = cluster_id(dir.path(), None, 1).expect("first start");
        assert_eq!(id.len(), 22);
        assert_eq!(cluster_id(dir.path(), None, 1).expect("restart"), id);
        assert!(cluster_id(dir.path(), Some("other"), 1).is_err());
        assert!(cluster_id(dir.path(), None, 2).is_err());
    }

    #[test]
    fn format_writes_once_and_serve_reads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let id = new_cluster_id();
        assert!(is_valid_uuid(&id), "{id}");
        assert!(format(&data, &id, 3).expect("format"));
        assert!(!format(&data, &id, 3).expect("already formatted"));
        assert_eq!(cluster_id(&data, None, 3).expect("read"), id);
        assert!(cluster_id(&data, None, 4).is_err(), "another node's dir");
        for bad in [
            "",
            "abc",
            "MkU3OEVBNTcwNTJENDM2Qk",
            "MkU3OEVBNTcwNTJENDM2Q!",
        ] {
            assert!(!is_valid_uuid(bad), "{bad}");
        }
        assert!(is_valid_uuid("MkU3OEVBNTcwNTJENDM2Qg"));
    }

    /// A node with `process.roles` over `log_dirs`, its metadata in
    /// `metadata`.
    fn quorum_node(log_dirs: &[&Path], metadata: Option<&Path>) -> BrokerConfig {
        use crate::config::{ProcessRoles, QuorumConfig};
        let roles = ProcessRoles {
            broker: true,
            controller: true,
        };
        BrokerConfig {
            node_id: 3,
            log_dirs: log_dirs.iter().map(|d| d.to_path_buf()).collect(),
            quorum: Some(QuorumConfig {
                metadata_log_dir: metadata.map(Path::to_path_buf),
                ..QuorumConfig::new(roles)
            }),
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn a_quorum_node_starts_only_on_formatted_dirs() {
        let root = tempfile::tempdir().expect("tempdir");
        let [a, b, m] = ["a", "b", "meta"].map(|d| root.path().join(d));
        let config = quorum_node(&[&a, &b], Some(&m));
        assert_eq!(formatted_dirs(&config), [&a, &b, &m]);
        let same = quorum_node(&[&a, &b], Some(&b));
        assert_eq!(
            formatted_dirs(&same),
            [&a, &b],
            "the metadata dir is a log dir"
        );
        let single = BrokerConfig {
            log_dirs: vec![a.clone()],
            ..BrokerConfig::default()
        };
        assert_eq!(formatted_dirs(&single), [&a]);
        assert!(check_formatted(&single).expect("no quorum").is_none());

        let unformatted = |config: &BrokerConfig| match check_formatted(config) {
            Err(FormatCheckError::Unformatted { dir }) => dir,
            other => panic!("{other:?}"),
        };
        assert_eq!(unformatted(&config), a);
        let id = new_cluster_id();
        assert!(format(&a, &id, 3).expect("format a"));
        assert!(format(&b, &id, 3).expect("format b"));
        let err = check_formatted(&config).expect_err("meta dir unformatted");
        assert_eq!(
            err.to_string(),
            format!(
                "No meta.properties found in {} (have you run `runnel storage format` or \
                 kafka-storage.sh to format the directory?)",
                m.display()
            )
        );
        assert!(format(&m, &id, 3).expect("format meta"));
        assert_eq!(
            check_formatted(&config).expect("formatted"),
            Some(id.clone())
        );

        let other_node = BrokerConfig {
            node_id: 4,
            ..config.clone()
        };
        assert!(matches!(
            check_formatted(&other_node),
            Err(FormatCheckError::NodeIdMismatch { found, node_id: 4, .. }) if found == "3"
        ));
        let other_cluster = BrokerConfig {
            cluster_id: Some(new_cluster_id()),
            ..config.clone()
        };
        assert!(matches!(
            check_formatted(&other_cluster),
            Err(FormatCheckError::ClusterIdMismatch { found, .. }) if found == id
        ));
        std::fs::remove_file(m.join(FILE_NAME)).expect("wipe");
        assert!(format(&m, &new_cluster_id(), 3).expect("format anew"));
        let err = check_formatted(&config).expect_err("mixed clusters");
        assert!(
            err.to_string()
                .contains(&format!("but {} says {id}", a.join(FILE_NAME).display())),
            "{err}"
        );
    }

    /// One in 64 random ids would start with `-` if nothing stopped it;
    /// 4096 draws would all but surely show one.
    #[test]
    fn random_ids_never_start_with_a_dash() {
        for _ in 0..4096 {
            let id = new_cluster_id();
            assert!(!id.starts_with('-'), "{id}");
            assert!(is_valid_uuid(&id), "{id}");
        }
    }
}
