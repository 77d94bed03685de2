//! Aborted transactions of a partition, as Kafka's `.txnindex` files: when
//! an abort marker is written, the aborted transaction (producer id, its
//! first offset, the marker's offset and the last stable offset then) is
//! appended to the `<base>.txnindex` of the segment holding the marker. A
//! `read_committed` fetch lists the aborted transactions it overlaps so the
//! consumer can drop their records.
//!
//! Each entry is 34 bytes: version i16 (0), producer_id i64, first_offset
//! i64, last_offset i64, last_stable_offset i64.

use std::io::Write;
use std::path::Path;

pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
const VERSION: i16 = 0;
pub const ENTRY_BYTES: usize = 34;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// The transaction's first offset in this partition.
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// `None` for an entry of another version.
    pub fn decode(bytes: &[u8; ENTRY_BYTES]) -> Option<Self> {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        (i16::from_be_bytes([bytes[0], bytes[1]]) == VERSION).then(|| Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Appends `entry` to the index file at `path`.
pub(crate) fn append(path: &Path, entry: &AbortedTxn) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&entry.encode())
}

/// The entries of the index file at `path` (none when it does not exist).
/// A torn last entry (a crash while appending) is left out; the log replay
/// after an unclean stop writes it again.
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<AbortedTxn>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    Ok(bytes
        .chunks_exact(ENTRY_BYTES)
        .filter_map(|chunk| {
            let mut entry = [0u8; ENTRY_BYTES];
            entry.copy_from_slice(chunk);
            AbortedTxn::decode(&entry)
        })
        .collect())
}

/// Rewrites the index file at `path` to hold exactly `entries` (removed
/// when there are none).
pub(crate) fn rewrite(path: &Path, entries: &[AbortedTxn]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        };
    }
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_kafkas_34_bytes() {
        let entry = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 15,
            last_stable_offset: 16,
        };
        let bytes = entry.encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&bytes), Some(entry));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.txnindex");
        assert_eq!(read(&path).expect("missing is empty"), []);
        append(&path, &entry).expect("append");
        append(&path, &entry).expect("append");
        // A torn third entry is left out.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&[0, 0, 1]))
            .expect("tear");
        assert_eq!(read(&path).expect("read"), [entry, entry]);
        rewrite(&path, &[]).expect("rewrite");
        assert!(!path.exists());
    }
}
