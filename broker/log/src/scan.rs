//! Sequential reads of whole batches from a segment file, in large chunks:
//! what recovery, timestamp lookups and the cleaner use. The fetch path does
//! not read batches; it hands out file regions.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::batch::{BatchError, BatchHeader, HEADER_SIZE, validate};

const CHUNK_BYTES: usize = 1 << 20;

/// Where a scan stopped.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Every batch up to the end position was whole and valid.
    Complete,
    /// The batch at `position` is torn or invalid; nothing from there on
    /// can be trusted.
    Invalid { position: u64, reason: BatchError },
}

/// Reads the batches of `file` in `[from, to)` and hands each valid one to
/// `visit` with its position. `visit` returns `false` to stop early.
pub(crate) fn scan_batches(
    file: &File,
    from: u64,
    to: u64,
    mut visit: impl FnMut(&BatchHeader, u64, &[u8]) -> bool,
) -> io::Result<ScanEnd> {
    let mut buf: Vec<u8> = Vec::new();
    // File position of buf[0], and how many of buf's bytes are filled.
    let mut buf_start = from;
    let mut filled = 0usize;
    let mut position = from;
    while position < to {
        let in_buf = (position - buf_start) as usize;
        let available = filled - in_buf;
        let remaining_in_file = to - position;
        let needed = if available >= HEADER_SIZE {
            match BatchHeader::parse(&buf[in_buf..filled]) {
                Ok(header) if header.size_bytes() as u64 > remaining_in_file => {
                    return Ok(ScanEnd::Invalid {
                        position,
                        reason: BatchError::Truncated {
                            declared: header.size_bytes(),
                            available: remaining_in_file as usize,
                        },
                    });
                }
                Ok(header) => header.size_bytes(),
                Err(reason) => return Ok(ScanEnd::Invalid { position, reason }),
            }
        } else if remaining_in_file < HEADER_SIZE as u64 {
            return Ok(ScanEnd::Invalid {
                position,
                reason: BatchError::TooShort {
                    available: remaining_in_file as usize,
                },
            });
        } else {
            HEADER_SIZE
        };
        if available < needed {
            // Move the unread tail to the front and read the next chunk.
            buf.copy_within(in_buf..filled, 0);
            buf_start = position;
            filled = available;
            let want = needed.max(CHUNK_BYTES).min((to - buf_start) as usize);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            let read_to = want.min(buf.len());
            while filled < needed {
                let n = file.read_at(&mut buf[filled..read_to], buf_start + filled as u64)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment file shrank while it was scanned",
                    ));
                }
                filled += n;
            }
            continue;
        }
        let batch = &buf[in_buf..in_buf + needed];
        match validate(batch) {
            Ok(header) => {
                if !visit(&header, position, batch) {
                    return Ok(ScanEnd::Complete);
                }
                position += needed as u64;
            }
            Err(reason) => return Ok(ScanEnd::Invalid { position, reason }),
        }
    }
    Ok(ScanEnd::Complete)
}

/// Reads only the header of the batch at `position`; `None` when fewer than
/// a header's bytes remain before `size`.
pub(crate) fn read_header_at(
    file: &File,
    position: u64,
    size: u64,
) -> io::Result<Option<Result<BatchHeader, BatchError>>> {
    if position + HEADER_SIZE as u64 > size {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut header, position)?;
    Ok(Some(BatchHeader::parse(&header)))
}
