//! `meta.properties` in the first log dir, as Kafka's KRaft brokers keep
//! it: the cluster id (generated on first start unless `cluster.id` is
//! set) and this node's id. A dir that belongs to another cluster or node
//! is refused rather than mixed in.

use std::path::Path;

use anyhow::{Context, Result, bail};
use uuid::Uuid;

pub const FILE_NAME: &str = "meta.properties";

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
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
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
    uuid_string(Uuid::new_v4())
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
}
