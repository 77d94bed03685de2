//! `runnel-protocol`: the sans-io Kafka wire protocol layer of the broker.
//! No sockets, files, clock or environment: bytes in, bytes out.
//!
//! - [`frame`]: the 4-byte size prefix; whether a read buffer holds a whole
//!   frame, refusing oversized ones from the prefix alone.
//! - [`request`]: a request frame's header, decoded zero-copy from `Bytes`,
//!   with the body left encoded until its handler decodes it.
//! - [`response`]: a response body encoded by `kafka-protocol` into one
//!   framed buffer (size prefix, response header, body).
//! - [`versions`]: the APIs and version ranges served, and the ApiVersions
//!   response built from them.
//! - [`fetch_writer`]: our own FetchResponse v4–v13 encoder, emitting bytes
//!   and file-region chunks so record data can leave with `sendfile`.
//! - [`batch`]: the RecordBatch v2 header view (the 61 bytes the broker
//!   reads), its validation, and the in-place patches an append makes.
//! - [`records`]: the records inside a batch, decompressed, for the paths
//!   that may look at them (compaction, timestamp lookups); never the
//!   produce or fetch path.
//! - [`builder`]: builds uncompressed batches for tests, tools and benchmarks.

pub mod batch;
pub mod builder;
pub mod control;
pub mod fetch_writer;
pub mod frame;
pub mod records;
pub mod request;
pub mod response;
pub mod versions;

pub use batch::{BatchError, BatchHeader};
pub use builder::BatchBuilder;
pub use fetch_writer::{Chunk, FetchWriteError, RegionLen};
pub use frame::FrameError;
pub use request::{Request, RequestError};
pub use response::ResponseError;
