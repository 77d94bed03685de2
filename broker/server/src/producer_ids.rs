//! Producer ids for InitProducerId, never handed out twice, even across
//! restarts: they come from blocks of 1,000 whose end is written (and
//! fsynced) to `<first log dir>/producer-id-block` before the first id of
//! the block is used. A restart starts a new block, so at most the unused
//! rest of one block is skipped.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use thiserror::Error;

const BLOCK: i64 = 1_000;
pub const FILE_NAME: &str = "producer-id-block";

#[derive(Debug, Error)]
pub enum ProducerIdError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not hold a producer id block end: {content:?}")]
    Malformed { path: PathBuf, content: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    /// `None` until the file is first read.
    block: Mutex<Option<Block>>,
}

impl ProducerIds {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            block: Mutex::new(None),
        }
    }

    /// A producer id never handed out before. Blocks on file IO once per
    /// 1,000 ids.
    pub fn next(&self) -> Result<i64, ProducerIdError> {
        let mut guard = self.block.lock().unwrap_or_else(PoisonError::into_inner);
        let mut block = match *guard {
            Some(block) => block,
            None => {
                let end = self.read_end()?;
                Block { next: end, end }
            }
        };
        if block.next >= block.end {
            block.end = block.next + BLOCK;
            self.write_end(block.end)?;
        }
        let id = block.next;
        block.next += 1;
        *guard = Some(block);
        Ok(id)
    }

    fn read_end(&self) -> Result<i64, ProducerIdError> {
        match std::fs::read_to_string(&self.path) {
            Ok(content) => content
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|end| *end >= 0)
                .ok_or_else(|| ProducerIdError::Malformed {
                    path: self.path.clone(),
                    content,
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(ProducerIdError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write_end(&self, end: i64) -> Result<(), ProducerIdError> {
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = self.path.with_extension("tmp");
            let mut file = std::fs::File::create(&tmp)?;
            writeln!(file, "{end}")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|source| ProducerIdError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let first = ProducerIds::new(path.clone());
        let a: Vec<i64> = (0..3).map(|_| first.next().expect("id")).collect();
        assert_eq!(a, [0, 1, 2]);
        assert_eq!(std::fs::read_to_string(&path).expect("file").trim(), "1000");
        // A restart continues after the reserved block.
        let second = ProducerIds::new(path.clone());
        assert_eq!(second.next().expect("id"), 1000);
        std::fs::write(&path, "garbage").expect("write");
        let err = ProducerIds::new(path).next().expect_err("malformed");
        assert!(err.to_string().contains("garbage"), "{err}");
    }
}
