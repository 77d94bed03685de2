//! The log's error type: one variant per operation that can fail, with the
//! path or value involved and the cause.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::batch::BatchError;
use crate::records::RecordsError;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot create log directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot list log directory {path}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("log directory {path} is in use by another process")]
    DirLocked {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open segment file {path}")]
    OpenSegment {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write to segment file {path}")]
    WriteSegment {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read segment file {path} at position {position}")]
    ReadSegment {
        path: PathBuf,
        position: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot flush {path} to disk")]
    Flush {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot delete {path}")]
    Delete {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read checkpoint file {path}")]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("checkpoint file {path} is malformed at line {line}: {reason}")]
    MalformedCheckpoint {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot write checkpoint file {path}")]
    WriteCheckpoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("batch {index} of the append is invalid")]
    InvalidBatch {
        index: usize,
        #[source]
        source: BatchError,
    },
    #[error("batch {index} of the append is {size} bytes, more than max.message.bytes = {max}")]
    BatchTooLarge {
        index: usize,
        size: usize,
        max: usize,
    },
    #[error("append holds no record batch")]
    EmptyAppend,
    #[error("batch {index} of the append is a control batch; only the broker writes those")]
    ControlBatchFromClient { index: usize },
    #[error("batch {index} of the append: {source}")]
    Sequence {
        index: usize,
        #[source]
        source: crate::producer_state::SequenceError,
    },
    #[error(
        "an append with an idempotent producer's batch must hold that one batch only, not {batches}"
    )]
    ProducerBatchNotAlone { batches: usize },
    #[error("cannot write producer state snapshot in {dir}")]
    WriteSnapshot {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("cannot read the records of a batch")]
    Records(#[from] RecordsError),
    #[error("invalid value {value:?} for log config {key}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{name:?} is not a valid <topic>-<partition> directory name")]
    InvalidPartitionDir { name: String },
    #[error("opening partition {dir} failed in a worker thread")]
    OpenWorkerPanicked { dir: PathBuf },
}

impl LogError {
    /// Whether the storage under the log failed (a full disk, an I/O
    /// error), as opposed to the request or its records being refused:
    /// the log dir cannot take writes until it recovers.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            Self::CreateDir { .. }
                | Self::ListDir { .. }
                | Self::OpenSegment { .. }
                | Self::WriteSegment { .. }
                | Self::ReadSegment { .. }
                | Self::Flush { .. }
                | Self::Rename { .. }
                | Self::Delete { .. }
                | Self::WriteCheckpoint { .. }
                | Self::WriteSnapshot { .. }
        )
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
