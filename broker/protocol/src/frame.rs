//! Kafka framing: every request and response is a size prefix followed by
//! that many bytes.
//!
//! | offset | size   | field                                         |
//! |-------:|-------:|-----------------------------------------------|
//! |      0 |      4 | size (i32, big-endian): bytes after this field |
//! |      4 | `size` | request or response: header, then body         |
//!
//! [`check`] decides from the prefix alone whether a frame is complete, too
//! large or malformed, so a server refuses a huge frame before it allocates
//! or reads a byte of it. An incomplete frame is `Ok(None)`, not an error:
//! the caller reads more and asks again.

use thiserror::Error;

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a frame is refused. Both are decided from the size prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {size} bytes is larger than the maximum of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("frame size prefix is negative ({size})")]
    Negative { size: i32 },
}

/// Checks whether `buf` starts with a whole frame.
///
/// Returns `Ok(Some(size))` when the prefix and all `size` bytes after it are
/// in `buf` (the frame is `buf[SIZE_PREFIX_BYTES..SIZE_PREFIX_BYTES + size]`),
/// `Ok(None)` while more bytes are needed.
pub fn check(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<SIZE_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(*prefix);
    let Ok(size) = usize::try_from(size) else {
        return Err(FrameError::Negative { size });
    };
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    if buf.len() - SIZE_PREFIX_BYTES < size {
        return Ok(None);
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(size: i32, body: &[u8]) -> Vec<u8> {
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn short_prefix_needs_more() {
        assert_eq!(check(&[], 100), Ok(None));
        assert_eq!(check(&[0, 0, 0], 100), Ok(None));
    }

    #[test]
    fn incomplete_body_needs_more() {
        assert_eq!(check(&framed(5, b"abcd"), 100), Ok(None));
    }

    #[test]
    fn whole_frame_gives_its_size() {
        assert_eq!(check(&framed(4, b"abcd"), 100), Ok(Some(4)));
        // Bytes of the next frame after this one do not matter.
        assert_eq!(check(&framed(2, b"abcd"), 100), Ok(Some(2)));
        assert_eq!(check(&framed(0, b""), 100), Ok(Some(0)));
    }

    #[test]
    fn frame_at_the_limit_is_accepted() {
        assert_eq!(check(&framed(3, b"abc"), 3), Ok(Some(3)));
    }

    #[test]
    fn too_large_is_refused_from_the_prefix_alone() {
        assert_eq!(
            check(&i32::MAX.to_be_bytes(), 1024),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: 1024
            })
        );
        assert_eq!(
            check(&framed(4, b""), 3),
            Err(FrameError::TooLarge { size: 4, max: 3 })
        );
    }

    #[test]
    fn negative_is_refused() {
        assert_eq!(
            check(&(-1i32).to_be_bytes(), 1024),
            Err(FrameError::Negative { size: -1 })
        );
        assert_eq!(
            check(&[0x80, 0, 0, 0], 1024),
            Err(FrameError::Negative { size: i32::MIN })
        );
    }
}
