//! One client connection: reads whole frames (refusing oversized ones from
//! their size prefix alone), answers each request before reading the next,
//! as Kafka does by muting a channel while a request is in flight, so
//! responses leave in request order however the client pipelines. Fetch
//! record data leaves the segment files through `sendfile`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use runnel_http::error_chain;
use runnel_log::FileRegion;
use runnel_protocol::fetch_writer::Chunk;
use runnel_protocol::{frame, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handlers::{self, Reply};

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves `stream` until the client closes it, sends something that is not
/// a Kafka request, or the broker shuts down between two requests.
pub async fn serve(
    broker: Arc<Broker>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _open = broker.metrics.connection_opened();
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let max_frame = broker.config.socket_request_max_bytes;
    loop {
        let size = match frame::check(&buf, max_frame) {
            Ok(Some(size)) => size,
            Ok(None) => {
                // Reserve only here, once the last request's frame is gone:
                // the buffer is then unique and `reserve` reuses it instead
                // of allocating (and page-faulting) a new one per request.
                if buf.capacity() - buf.len() < READ_BUFFER_BYTES / 4 {
                    buf.reserve(READ_BUFFER_BYTES);
                }
                tokio::select! {
                    read = stream.read_buf(&mut buf) => match read {
                        Ok(0) => return,
                        Ok(_) => continue,
                        Err(err) => {
                            tracing::debug!(%peer, %err, "connection read failed");
                            return;
                        }
                    },
                    _ = shutdown.changed() => return,
                }
            }
            Err(err) => {
                tracing::warn!(%peer, %err, "closing connection: bad frame");
                return;
            }
        };
        let mut frame = buf.split_to(frame::SIZE_PREFIX_BYTES + size).freeze();
        frame.advance(frame::SIZE_PREFIX_BYTES);
        let request = match request::parse(frame) {
            Ok(request) => request,
            Err(err) => {
                tracing::warn!(%peer, error = %error_chain(&err), "closing connection: unreadable request");
                return;
            }
        };
        let started = Instant::now();
        let api = request.api_key;
        let reply = handlers::dispatch(&broker, &request, peer).await;
        let error = reply.as_ref().err().map(|e| e.label());
        broker
            .metrics
            .record_request(api_name(api), started.elapsed(), error);
        #[cfg(feature = "fault-injection")]
        if api == kafka_protocol::messages::ApiKey::Produce && broker.faults.drop_produce_response()
        {
            tracing::warn!(%peer, "fault injection: closing the connection after the append, before the response");
            return;
        }
        let sent = match reply {
            Ok(Reply::Frame(bytes)) => stream.write_all(&bytes).await,
            Ok(Reply::Fetch(chunks)) => send_chunks(&mut stream, &chunks).await,
            Ok(Reply::Nothing) => Ok(()),
            Ok(Reply::Close(why)) => {
                tracing::info!(%peer, correlation_id = request.header.correlation_id, why, "closing the connection so that the producer refreshes its metadata");
                return;
            }
            Err(err) => {
                tracing::warn!(%peer, api = ?api, version = request.api_version, correlation_id = request.header.correlation_id, error = %error_chain(&err), "closing connection");
                return;
            }
        };
        if let Err(err) = sent {
            tracing::debug!(%peer, %err, "connection write failed");
            return;
        }
    }
}

fn api_name(api: kafka_protocol::messages::ApiKey) -> &'static str {
    runnel_protocol::versions::name(api)
}

async fn send_chunks(stream: &mut TcpStream, chunks: &[Chunk<FileRegion>]) -> io::Result<()> {
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(bytes) => stream.write_all(bytes).await?,
            Chunk::Region(region) => send_region(stream, region).await?,
        }
    }
    Ok(())
}

/// Sends a file region with `sendfile`: the bytes go from the page cache to
/// the socket without a copy through this process.
async fn send_region(stream: &TcpStream, region: &FileRegion) -> io::Result<()> {
    let mut position = region.position;
    let end = region.position + region.length;
    while position < end {
        stream.writable().await?;
        let remaining = (end - position).min(usize::MAX as u64) as usize;
        let sent = stream.try_io(Interest::WRITABLE, || {
            let mut offset = position;
            rustix::fs::sendfile(stream, &*region.file, Some(&mut offset), remaining)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                // The file is shorter than the region (truncated meanwhile):
                // the frame promised these bytes, so the connection must go.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch region",
                ));
            }
            Ok(n) => position += n as u64,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
