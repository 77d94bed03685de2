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
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// A Kafka-style cluster id: a random UUID in URL-safe base64, 22 chars.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
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
}
