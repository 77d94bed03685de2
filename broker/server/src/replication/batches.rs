//! The whole record batches at the front of fetched bytes: a leader's
//! read may end part way into a batch (its byte limit), and a follower
//! appends only whole ones, fetching the rest next time. Only each batch's
//! offset and length are read.

/// Base offset (8 bytes) and batch length (4): what precedes the length's
/// bytes.
const LOG_OVERHEAD: usize = 12;

/// The prefix of `bytes` made of whole batches.
pub fn whole_batches(bytes: &[u8]) -> &[u8] {
    let mut end = 0usize;
    while bytes.len() - end >= LOG_OVERHEAD {
        let length = i32::from_be_bytes([
            bytes[end + 8],
            bytes[end + 9],
            bytes[end + 10],
            bytes[end + 11],
        ]);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let Some(next) = end
            .checked_add(LOG_OVERHEAD)
            .and_then(|n| n.checked_add(length))
        else {
            break;
        };
        if next > bytes.len() {
            break;
        }
        end = next;
    }
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(length: i32, fill: u8) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(&length.to_be_bytes());
        b.extend(std::iter::repeat_n(fill, length.max(0) as usize));
        b
    }

    #[test]
    fn a_cut_batch_at_the_end_is_left_for_the_next_fetch() {
        let mut bytes = batch(20, 1);
        bytes.extend(batch(5, 2));
        let whole = bytes.len();
        bytes.extend(&batch(30, 3)[..17]);
        assert_eq!(whole_batches(&bytes).len(), whole);
        assert_eq!(whole_batches(&bytes[..whole]).len(), whole);
        assert!(whole_batches(&bytes[..7]).is_empty());
        assert!(whole_batches(&[]).is_empty());
    }

    #[test]
    fn a_negative_length_ends_the_whole_batches() {
        let mut bytes = batch(4, 1);
        bytes.extend(batch(-1, 0));
        assert_eq!(whole_batches(&bytes).len(), 16);
    }
}
