//! A memory-mapped, fixed-entry-size index file: the storage shared by the
//! offset index and the time index (their byte layouts live in
//! `offset_index.rs` and `time_index.rs`).
//!
//! As in Kafka's `AbstractIndex`: the file of the active segment is
//! preallocated to `segment.index.bytes` (rounded down to a whole entry) so
//! appends are stores into the map, and it is trimmed to its used entries
//! when the segment is rolled or closed. The number of used entries is known
//! from the file length of a trimmed file; the index of a segment that was
//! active during an unclean stop is rebuilt, never trusted.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

#[derive(Debug)]
pub(crate) struct IndexFile {
    #[cfg_attr(not(test), allow(dead_code))]
    path: PathBuf,
    file: File,
    mmap: MmapMut,
    entry_size: usize,
    entries: usize,
}

impl IndexFile {
    /// Opens (creating if missing) the index at `path`. Existing entries are
    /// taken from the file length; the file is then grown to `max_bytes`.
    pub(crate) fn open(path: &Path, entry_size: usize, max_bytes: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let length = file.metadata()?.len() as usize;
        let entries = length / entry_size;
        let mut index = Self {
            path: path.to_path_buf(),
            mmap: map(&file)?,
            file,
            entry_size,
            entries,
        };
        index.resize(max_bytes)?;
        Ok(index)
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.mmap.len() / self.entry_size
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries()
    }

    pub(crate) fn entry(&self, n: usize) -> &[u8] {
        let start = n * self.entry_size;
        &self.mmap[start..start + self.entry_size]
    }

    /// Appends one entry. The caller checks `is_full` first.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        debug_assert_eq!(entry.len(), self.entry_size);
        let start = self.entries * self.entry_size;
        self.mmap[start..start + self.entry_size].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Keeps the first `entries` entries.
    pub(crate) fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    /// Index of the last entry whose key is `<= target`, by binary search
    /// over entries sorted by `key`.
    pub(crate) fn floor<K: Ord>(&self, target: K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut low, mut high) = (0usize, self.entries);
        while low < high {
            let mid = low + (high - low) / 2;
            if key(self.entry(mid)) <= target {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low.checked_sub(1)
    }

    /// Grows or shrinks the file and its map to `max_bytes` rounded down to a
    /// whole entry, never below the used entries.
    pub(crate) fn resize(&mut self, max_bytes: usize) -> io::Result<()> {
        let rounded = (max_bytes / self.entry_size).max(self.entries) * self.entry_size;
        if rounded == self.mmap.len() && self.file.metadata()?.len() as usize == rounded {
            return Ok(());
        }
        self.mmap.flush()?;
        self.file.set_len(rounded as u64)?;
        self.mmap = map(&self.file)?;
        Ok(())
    }

    /// Shrinks the file to exactly its used entries.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        self.mmap.flush()
    }
}

fn map(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the index file is owned by this process's log (one broker per
    // log dir, enforced by the log manager's lock); nobody else truncates it
    // while it is mapped, and every resize remaps after `set_len`.
    unsafe { MmapMut::map_mut(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preallocates_then_trims_to_used_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.index");
        let mut index = IndexFile::open(&path, 8, 100).expect("open");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 96);
        assert_eq!(index.max_entries(), 12);
        index.push(&[1u8; 8]);
        index.push(&[2u8; 8]);
        index.trim().expect("trim");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 16);
        drop(index);
        let index = IndexFile::open(&path, 8, 100).expect("reopen");
        assert_eq!(index.entries(), 2);
        assert_eq!(index.entry(1), &[2u8; 8]);
    }

    #[test]
    fn floor_finds_the_last_entry_not_above_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = IndexFile::open(&dir.path().join("x.index"), 8, 800).expect("open");
        for key in [10u64, 20, 30] {
            index.push(&key.to_be_bytes());
        }
        let key = |e: &[u8]| u64::from_be_bytes(e.try_into().expect("8 bytes"));
        assert_eq!(index.floor(5, key), None);
        assert_eq!(index.floor(10, key), Some(0));
        assert_eq!(index.floor(25, key), Some(1));
        assert_eq!(index.floor(99, key), Some(2));
    }
}
