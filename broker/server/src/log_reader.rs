//! Reading a log back whole, batch by batch, through the page cache: what
//! the coordinators and the metadata log replay at start.

use runnel_log::batch::Batches;
use runnel_log::{BatchHeader, PartitionLog};
use thiserror::Error;

const READ_CHUNK_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {topic}")]
    Log {
        topic: String,
        #[source]
        source: runnel_log::LogError,
    },
    #[error("cannot copy a region of {topic}")]
    Copy {
        topic: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode a batch of {topic}")]
    Records {
        topic: String,
        #[source]
        source: runnel_log::records::RecordsError,
    },
}

/// Hands every whole batch of `log` from `from` to its end to `visit`, as
/// its header and its bytes, in offset order.
pub fn for_each_batch<E: From<ReadError>>(
    log: &PartitionLog,
    from: i64,
    topic: &str,
    mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let log_error = |source| ReadError::Log {
        topic: topic.to_string(),
        source,
    };
    let mut offset = from;
    while offset < log.log_end_offset() {
        let read = log
            .read(offset, READ_CHUNK_BYTES, None, true)
            .map_err(log_error)?;
        let Some(region) = read.region else { break };
        let bytes = region.to_vec().map_err(|source| ReadError::Copy {
            topic: topic.to_string(),
            source,
        })?;
        let mut advanced = false;
        for batch in Batches::new(&bytes) {
            // A region may end inside a batch: the next read starts there.
            let Ok((header, batch)) = batch else { break };
            offset = header.next_offset();
            advanced = true;
            visit(&header, batch)?;
        }
        if !advanced {
            break;
        }
    }
    Ok(())
}
