//! When a record sent through an entry topic is due, from its headers:
//! `runnel-deliver-at` (epoch ms) or `runnel-delay-ms` (ms after its
//! append), both decimal. Neither: due at once. The produce path checks
//! every record of a batch for an entry topic with [`check_batches`] (a
//! header that can't be read, or a time past `delivery.max.delay.ms`, fails
//! the batch with the record's index); the mover reads the same headers
//! with [`due_time`].

use bytes::Bytes;
use runnel_log::batch::Batches;
use runnel_protocol::records::BatchRecords;
use thiserror::Error;

pub use runnel_client::delivery::{DELAY_HEADER, DELIVER_AT_HEADER};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DueTimeError {
    #[error("header {header} is {value:?}, not a whole number of ms in decimal")]
    Unreadable { header: &'static str, value: String },
    #[error("header {header} has no value")]
    NoValue { header: &'static str },
    #[error("headers {DELIVER_AT_HEADER} and {DELAY_HEADER} are both set; set one")]
    Both,
    #[error("header {DELAY_HEADER} is {delay_ms}: a delay can't be negative")]
    NegativeDelay { delay_ms: i64 },
    #[error(
        "header {header} puts the record {delay_ms} ms away, past delivery.max.delay.ms={max_delay_ms}"
    )]
    TooFar {
        header: &'static str,
        delay_ms: i64,
        max_delay_ms: i64,
    },
}

/// A record of an entry topic whose headers can't be taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("record {index} of the batch at offset {base_offset}: {source}")]
pub struct InvalidDueTime {
    pub base_offset: i64,
    /// The record's index in its batch, as Produce's record errors count.
    pub index: i32,
    #[source]
    pub source: DueTimeError,
}

/// When a record with `headers` is due: its `runnel-deliver-at`, or its
/// `runnel-delay-ms` after `append_ms`, or `append_ms`.
pub fn due_time<'a>(
    headers: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    append_ms: i64,
) -> Result<i64, DueTimeError> {
    let mut at = None;
    let mut delay = None;
    for (name, value) in headers {
        let (slot, header) = if name == DELIVER_AT_HEADER.as_bytes() {
            (&mut at, DELIVER_AT_HEADER)
        } else if name == DELAY_HEADER.as_bytes() {
            (&mut delay, DELAY_HEADER)
        } else {
            continue;
        };
        let value = value.ok_or(DueTimeError::NoValue { header })?;
        *slot = Some(decimal(value).ok_or_else(|| DueTimeError::Unreadable {
            header,
            value: String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned(),
        })?);
    }
    match (at, delay) {
        (Some(_), Some(_)) => Err(DueTimeError::Both),
        (Some(at), None) => Ok(at),
        (None, Some(delay)) if delay < 0 => Err(DueTimeError::NegativeDelay { delay_ms: delay }),
        (None, Some(delay)) => Ok(append_ms.saturating_add(delay)),
        (None, None) => Ok(append_ms),
    }
}

/// Checks each record of a producer's `batches` for an entry topic whose
/// longest delay is `max_delay_ms`, as if appended at `now_ms`. Batches
/// that can't be read are left to the append, which refuses them. An
/// uncompressed batch's records are read where they are, not copied.
pub fn check_batches(
    batches: &Bytes,
    max_delay_ms: i64,
    now_ms: i64,
) -> Result<(), InvalidDueTime> {
    for batch in Batches::new(batches) {
        let Ok((header, batch)) = batch else { break };
        if header.is_control() {
            continue;
        }
        let Ok(records) = BatchRecords::decode_shared(batches.slice_ref(batch)) else {
            break;
        };
        for (index, record) in records.records.iter().enumerate() {
            let invalid = |source| InvalidDueTime {
                base_offset: header.base_offset,
                index: i32::try_from(index).unwrap_or(i32::MAX),
                source,
            };
            let due = due_time(records.header_pairs(record), now_ms).map_err(invalid)?;
            let delay_ms = due.saturating_sub(now_ms);
            if delay_ms > max_delay_ms {
                let header = if records
                    .header_pairs(record)
                    .any(|(name, _)| name == DELIVER_AT_HEADER.as_bytes())
                {
                    DELIVER_AT_HEADER
                } else {
                    DELAY_HEADER
                };
                return Err(invalid(DueTimeError::TooFar {
                    header,
                    delay_ms,
                    max_delay_ms,
                }));
            }
        }
    }
    Ok(())
}

/// A whole number in ASCII decimal, with an optional sign.
fn decimal(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::BatchBuilder;

    fn due(headers: &[(&str, Option<&str>)]) -> Result<i64, DueTimeError> {
        due_time(
            headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.map(str::as_bytes))),
            1_000,
        )
    }

    #[test]
    fn the_headers_say_when_a_record_is_due() {
        assert_eq!(due(&[]), Ok(1_000));
        assert_eq!(due(&[("other", Some("x"))]), Ok(1_000));
        assert_eq!(due(&[(DELIVER_AT_HEADER, Some("5000"))]), Ok(5_000));
        assert_eq!(due(&[(DELIVER_AT_HEADER, Some("10"))]), Ok(10));
        assert_eq!(due(&[(DELAY_HEADER, Some("250"))]), Ok(1_250));
        assert_eq!(
            due(&[(DELAY_HEADER, Some("-1"))]),
            Err(DueTimeError::NegativeDelay { delay_ms: -1 })
        );
        assert_eq!(
            due(&[(DELAY_HEADER, Some("1")), (DELIVER_AT_HEADER, Some("1"))]),
            Err(DueTimeError::Both)
        );
        assert_eq!(
            due(&[(DELIVER_AT_HEADER, None)]),
            Err(DueTimeError::NoValue {
                header: DELIVER_AT_HEADER
            })
        );
        let err = due(&[(DELIVER_AT_HEADER, Some("tomorrow"))]).expect_err("unreadable");
        assert_eq!(
            err.to_string(),
            "header runnel-deliver-at is \"tomorrow\", not a whole number of ms in decimal"
        );
    }

    #[test]
    fn a_batch_fails_at_its_first_bad_record() {
        let mut builder = BatchBuilder::new(0);
        builder.push_with_headers(None, Some(b"a"), 0, (0, &[]), &[(DELAY_HEADER, b"100")]);
        builder.push_with_headers(None, Some(b"b"), 0, (0, &[]), &[]);
        let good = Bytes::from(builder.build());
        assert_eq!(check_batches(&good, 1_000, 50), Ok(()));
        builder.push_with_headers(None, Some(b"c"), 0, (0, &[]), &[(DELAY_HEADER, b"5000")]);
        let err = check_batches(&Bytes::from(builder.build()), 1_000, 50).expect_err("too far");
        assert_eq!(err.index, 2);
        assert_eq!(
            err.source,
            DueTimeError::TooFar {
                header: DELAY_HEADER,
                delay_ms: 5_000,
                max_delay_ms: 1_000
            }
        );
        let mut builder = BatchBuilder::new(0);
        builder.push_with_headers(None, Some(b"a"), 0, (0, &[]), &[(DELIVER_AT_HEADER, b"x")]);
        let err = check_batches(&Bytes::from(builder.build()), 1_000, 50).expect_err("unreadable");
        assert_eq!(err.index, 0);
        assert!(err.to_string().contains(DELIVER_AT_HEADER), "{err}");
    }
}
