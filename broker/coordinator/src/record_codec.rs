//! The field encodings shared by the internal topics' records
//! (`__consumer_offsets` in `offsets_topic` and `group_metadata`,
//! `__transaction_state` in `txn_log`), and their one error type. It is
//! below those modules and names none of them.
//!
//! | type              | bytes                                           |
//! |-------------------|-------------------------------------------------|
//! | version           | `i16` big-endian, first in every key and value  |
//! | `string`          | `i16` byte length, then UTF-8 (-1 = null)       |
//! | `bytes`           | `i32` byte length, then the bytes               |
//! | `compact string`  | unsigned varint (length + 1), then UTF-8 (0 = null) |
//! | `compact bytes`   | unsigned varint (length + 1), then the bytes    |
//! | tagged fields     | varint count, then (varint tag, varint size, data) each |
//!
//! [`Reader::finish`] is the sanity check: a record ends where its last
//! field does.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetsRecordError {
    #[error("{record}: too short to hold its i16 version")]
    MissingVersion { record: &'static str },
    /// Kafka's newer records (KIP-848 groups, versions 3+) land here; a
    /// loader may skip them.
    #[error("record key version {version} is not an offset commit or group metadata key")]
    UnknownKeyVersion { version: i16 },
    #[error("OffsetCommitValue version {version} is not supported")]
    UnknownValueVersion { version: i16 },
    #[error("GroupMetadataValue version {version} is not supported")]
    UnknownGroupMetadataVersion { version: i16 },
    #[error("{record} version {version} is not supported")]
    UnknownTransactionLogVersion { record: &'static str, version: i16 },
    #[error("TransactionLogValue: status {status} is not a transaction state")]
    UnknownTransactionStatus { status: i8 },
    #[error("{record} v{version}: field `{field}` is truncated")]
    Truncated {
        record: &'static str,
        version: i16,
        field: &'static str,
    },
    #[error("{record} v{version}: field `{field}` has invalid length {len}")]
    InvalidLength {
        record: &'static str,
        version: i16,
        field: &'static str,
        len: i64,
    },
    #[error("{record} v{version}: field `{field}` is not UTF-8")]
    InvalidUtf8 {
        record: &'static str,
        version: i16,
        field: &'static str,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("{record} v{version}: {count} bytes after the last field")]
    TrailingBytes {
        record: &'static str,
        version: i16,
        count: usize,
    },
    #[error("field `{field}` is {len} bytes, more than an i16-length string holds")]
    StringTooLong { field: &'static str, len: usize },
}

pub(crate) fn read_version(bytes: &[u8], record: &'static str) -> Result<i16, OffsetsRecordError> {
    match bytes {
        [hi, lo, ..] => Ok(i16::from_be_bytes([*hi, *lo])),
        _ => Err(OffsetsRecordError::MissingVersion { record }),
    }
}

pub(crate) fn put_string(
    buf: &mut BytesMut,
    field: &'static str,
    s: &str,
) -> Result<(), OffsetsRecordError> {
    let len = i16::try_from(s.len()).map_err(|_| OffsetsRecordError::StringTooLong {
        field,
        len: s.len(),
    })?;
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// A bounds-checked cursor whose errors name the record, version and field.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    record: &'static str,
    version: i16,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], record: &'static str, version: i16) -> Self {
        Reader {
            buf,
            record,
            version,
        }
    }

    pub(crate) fn take(
        &mut self,
        field: &'static str,
        n: usize,
    ) -> Result<&'a [u8], OffsetsRecordError> {
        if self.buf.len() < n {
            return Err(OffsetsRecordError::Truncated {
                record: self.record,
                version: self.version,
                field,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], OffsetsRecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8, OffsetsRecordError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, OffsetsRecordError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, OffsetsRecordError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, OffsetsRecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn invalid_length(&self, field: &'static str, len: i64) -> OffsetsRecordError {
        OffsetsRecordError::InvalidLength {
            record: self.record,
            version: self.version,
            field,
            len,
        }
    }

    pub(crate) fn utf8(
        &mut self,
        field: &'static str,
        len: usize,
    ) -> Result<String, OffsetsRecordError> {
        let bytes = self.take(field, len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|source| OffsetsRecordError::InvalidUtf8 {
                record: self.record,
                version: self.version,
                field,
                source,
            })
    }

    /// A non-nullable `string`: Kafka rejects a null (-1) here too.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, OffsetsRecordError> {
        let len = i16::from_be_bytes(self.array(field)?);
        let len = usize::try_from(len).map_err(|_| self.invalid_length(field, len.into()))?;
        self.utf8(field, len)
    }

    /// A nullable `string`: length -1 is null.
    pub(crate) fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, OffsetsRecordError> {
        let len = i16::from_be_bytes(self.array(field)?);
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.invalid_length(field, len.into()))?;
        self.utf8(field, len).map(Some)
    }

    /// `bytes`: an `i32` length then the bytes.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Bytes, OffsetsRecordError> {
        let len = self.i32(field)?;
        let len = usize::try_from(len).map_err(|_| self.invalid_length(field, len.into()))?;
        Ok(Bytes::copy_from_slice(self.take(field, len)?))
    }

    /// A nullable `compact string`: varint (length + 1), 0 being null.
    pub(crate) fn compact_nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, OffsetsRecordError> {
        match self.varint(field)? {
            0 => Ok(None),
            len_plus_one => self.utf8(field, (len_plus_one - 1) as usize).map(Some),
        }
    }

    /// `compact bytes`: varint (length + 1), then the bytes.
    pub(crate) fn compact_bytes(
        &mut self,
        field: &'static str,
    ) -> Result<Bytes, OffsetsRecordError> {
        let len_plus_one = self.varint(field)?;
        let len = len_plus_one
            .checked_sub(1)
            .ok_or_else(|| self.invalid_length(field, -1))?;
        Ok(Bytes::copy_from_slice(self.take(field, len as usize)?))
    }

    /// A non-nullable `compact string`: varint (length + 1), 0 being null.
    pub(crate) fn compact_string(
        &mut self,
        field: &'static str,
    ) -> Result<String, OffsetsRecordError> {
        let len_plus_one = self.varint(field)?;
        let len = len_plus_one
            .checked_sub(1)
            .ok_or_else(|| self.invalid_length(field, -1))?;
        self.utf8(field, len as usize)
    }

    /// An unsigned varint of at most 5 bytes (a u32), as Kafka reads it.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, OffsetsRecordError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [byte] = self.array::<1>(field)?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.invalid_length(field, i64::from(value)))
    }

    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), OffsetsRecordError> {
        let count = self.varint("tagged_fields")?;
        for _ in 0..count {
            self.varint("tagged_fields.tag")?;
            let size = self.varint("tagged_fields.size")?;
            self.take("tagged_fields.data", size as usize)?;
        }
        Ok(())
    }

    /// The sanity check: a record must end where its last field does.
    pub(crate) fn finish(self) -> Result<(), OffsetsRecordError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(OffsetsRecordError::TrailingBytes {
                record: self.record,
                version: self.version,
                count: self.buf.len(),
            })
        }
    }
}
