//! The client's errors: one enum for the whole crate, each variant saying
//! what failed and with which value.

use std::net::SocketAddr;

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("transaction: {reason}")]
    Transaction { reason: String },
    /// `commit_transaction` found a record of the transaction failed and
    /// sent no EndTxn: nothing of it is committed; abort it.
    #[error("transaction: a record of it failed; nothing was committed, abort it")]
    TransactionRecordFailed,
    #[error("invalid setting {key}={value:?}: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot connect to {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the connection to {peer} failed")]
    Io {
        peer: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the connection to {peer} closed")]
    Closed { peer: SocketAddr },
    #[error("cannot encode a {api} v{version} request")]
    Encode { api: &'static str, version: i16 },
    #[error("cannot decode a {api} v{version} response from {peer}")]
    Decode {
        api: &'static str,
        version: i16,
        peer: SocketAddr,
    },
    #[error("response frame of {size} bytes from {peer} is out of range")]
    FrameSize { size: i64, peer: SocketAddr },
    #[error("response to correlation id {got} from {peer}, expected {expected}")]
    OutOfStep {
        got: i32,
        expected: i32,
        peer: SocketAddr,
    },
    #[error("no broker of {bootstrap} answered Metadata")]
    NoBroker { bootstrap: String },
    #[error("broker {node_id} is not in the cluster metadata")]
    UnknownNode { node_id: i32 },
    #[error("{api} for {topic}-{partition} failed with Kafka error {code} ({name})")]
    Kafka {
        api: &'static str,
        topic: String,
        partition: i32,
        code: i16,
        name: String,
    },
    #[error("topic {topic} does not exist")]
    UnknownTopic { topic: String },
    #[error("partition {partition} of {topic} does not exist (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: i32,
        partitions: i32,
    },
    #[error("the record of {size} bytes is larger than max.request.size ({max})")]
    RecordTooLarge { size: usize, max: usize },
    #[error("cannot send to {topic}-{partition}: {reason}")]
    Send {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error(
        "no room in buffer.memory ({buffer_memory} bytes) within max.block.ms ({max_block_ms} ms)"
    )]
    BufferFull {
        buffer_memory: usize,
        max_block_ms: u64,
    },
    #[error("the record needs {size} bytes, more than buffer.memory ({buffer_memory})")]
    BufferTooSmall { size: usize, buffer_memory: usize },
    #[error("no metadata for topic {topic} within max.block.ms ({max_block_ms} ms)")]
    MetadataTimeout { topic: String, max_block_ms: u64 },
    #[error("{topic}-{partition} has no committed offset and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    #[error("a fetched batch of {topic}-{partition} is unreadable: {reason}")]
    Corrupt {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("{error}: {message}")]
    Refused {
        error: Box<ClientError>,
        message: String,
    },
    #[error("the producer is closed")]
    ProducerClosed,
}

impl ClientError {
    /// A Kafka error code as a named error of `api` on a partition.
    pub fn kafka(api: &'static str, topic: &str, partition: i32, code: i16) -> Self {
        let name = kafka_protocol::error::ResponseError::try_from_code(code)
            .map_or_else(|| format!("code {code}"), |e| format!("{e:?}"));
        ClientError::Kafka {
            api,
            topic: topic.to_string(),
            partition,
            code,
            name,
        }
    }

    /// The Kafka error code this error carries, if it is one (also when a
    /// broker's message came with it).
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::Refused { error, .. } => error.kafka_code(),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// An error and its causes, `: `-separated, for log lines (`%err` prints
/// only the outermost message). The broker and the operator share
/// `runnel_http::error_chain`; this crate depends on neither, so it keeps
/// this copy.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_keeps_the_cause() {
        let err = ClientError::Connect {
            address: "broker:9092".into(),
            source: std::io::Error::other("connection refused"),
        };
        assert_eq!(
            error_chain(&err),
            "cannot connect to broker:9092: connection refused"
        );
    }
}
