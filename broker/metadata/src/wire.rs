//! The primitives of Kafka's flexible message encoding that metadata records
//! use, as Kafka's generated `read`/`write` methods lay them out:
//!
//! | type                 | bytes                                              |
//! |----------------------|----------------------------------------------------|
//! | int8/16/32/64, uint16| big-endian                                         |
//! | bool                 | one byte, 0 false, anything else true              |
//! | uuid                 | 16 bytes, most significant half first              |
//! | unsigned varint      | 7 bits a byte, low first, high bit = more follows  |
//! | compact string       | unsigned varint length + 1 (0 = null), UTF-8 bytes |
//! | compact array        | unsigned varint count + 1 (0 = null), elements     |
//! | tagged fields        | uvarint count, then (uvarint tag, uvarint size, body) each, in tag order |
//!
//! Reading never panics: every read checks what is left and reports the
//! field it was reading.

use bytes::{BufMut, BytesMut};
use thiserror::Error;
use uuid::Uuid;

/// Why bytes are not a metadata record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("input ends inside {field}")]
    Truncated { field: &'static str },
    #[error("unsigned varint of {field} is longer than 5 bytes")]
    VarintTooLong { field: &'static str },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        field: &'static str,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("{field} is null but may not be")]
    UnexpectedNull { field: &'static str },
    #[error("frame version {0} is not 1 (version 0 was KRaft's 2.8 preview)")]
    UnknownFrameVersion(u32),
    #[error("api key {0} is not a metadata record type this broker knows")]
    UnknownApiKey(u32),
    #[error("{record} version {version} is not one Kafka 4.1 defines")]
    UnsupportedVersion { record: &'static str, version: u32 },
    #[error("tagged field {tag} of {record} holds {size} bytes, its value used {used}")]
    TaggedFieldSize {
        record: &'static str,
        tag: u32,
        size: usize,
        used: usize,
    },
    #[error("tagged field {tag} of {record} follows tag {previous}: tags must ascend")]
    TaggedFieldOrder {
        record: &'static str,
        tag: u32,
        previous: u32,
    },
    #[error("{value} is not a valid {field}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("{count} byte(s) left over after {record}")]
    TrailingBytes { record: &'static str, count: usize },
}

/// Why a record cannot be written at its version.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{record} version {version} is not one Kafka 4.1 defines")]
    UnsupportedVersion { record: &'static str, version: i16 },
    /// Kafka's generated code refuses the same: a field the version lacks
    /// must keep its default.
    #[error("{record} version {version} has no {field}, yet it is set")]
    FieldNotInVersion {
        record: &'static str,
        field: &'static str,
        version: i16,
    },
}

/// A cursor over a record's bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.i8(field)? != 0)
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn uuid(&mut self, field: &'static str) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(self.array(field)?))
    }

    pub(crate) fn uvarint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.array::<1>(field)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong { field })
    }

    /// A compact length: `None` for null.
    fn compact_len(&mut self, field: &'static str) -> Result<Option<usize>, DecodeError> {
        Ok(match self.uvarint(field)? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }

    pub(crate) fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.compact_len(field)? else {
            return Ok(None);
        };
        let bytes = self.take(len, field)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|source| DecodeError::InvalidUtf8 { field, source })?;
        Ok(Some(text.to_owned()))
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.nullable_string(field)?
            .ok_or(DecodeError::UnexpectedNull { field })
    }

    /// A compact array, each element read by `read`. The count is checked
    /// against the bytes left (each element takes at least `min_size`)
    /// before anything is reserved.
    fn nullable_array<T>(
        &mut self,
        field: &'static str,
        min_size: usize,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(count) = self.compact_len(field)? else {
            return Ok(None);
        };
        if count.saturating_mul(min_size) > self.rest.len() {
            return Err(DecodeError::Truncated { field });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(read(self)?);
        }
        Ok(Some(out))
    }

    pub(crate) fn nullable_i32s(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<i32>>, DecodeError> {
        self.nullable_array(field, 4, |r| r.i32(field))
    }

    pub(crate) fn i32s(&mut self, field: &'static str) -> Result<Vec<i32>, DecodeError> {
        self.nullable_i32s(field)?
            .ok_or(DecodeError::UnexpectedNull { field })
    }

    pub(crate) fn nullable_uuids(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<Uuid>>, DecodeError> {
        self.nullable_array(field, 16, |r| r.uuid(field))
    }

    pub(crate) fn uuids(&mut self, field: &'static str) -> Result<Vec<Uuid>, DecodeError> {
        self.nullable_uuids(field)?
            .ok_or(DecodeError::UnexpectedNull { field })
    }

    /// A compact array of structs, each at least `min_size` bytes.
    pub(crate) fn structs<T>(
        &mut self,
        field: &'static str,
        min_size: usize,
        read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.nullable_array(field, min_size, read)?
            .ok_or(DecodeError::UnexpectedNull { field })
    }

    /// The tagged-field section: `known` reads the tags the record knows
    /// from a reader over exactly the field's bytes and returns whether it
    /// knew the tag; unknown tags are skipped, as Kafka reads them.
    pub(crate) fn tagged_fields(
        &mut self,
        record: &'static str,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint("tagged field count")?;
        let mut previous: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint("tagged field tag")?;
            if let Some(previous) = previous.filter(|&p| tag <= p) {
                return Err(DecodeError::TaggedFieldOrder {
                    record,
                    tag,
                    previous,
                });
            }
            previous = Some(tag);
            let size = self.uvarint("tagged field size")? as usize;
            let mut body = Reader::new(self.take(size, "tagged field")?);
            if known(tag, &mut body)? && body.remaining() != 0 {
                return Err(DecodeError::TaggedFieldSize {
                    record,
                    tag,
                    size,
                    used: size - body.remaining(),
                });
            }
        }
        Ok(())
    }

    /// Kafka refuses a record with bytes after its last field.
    pub(crate) fn finish(self, record: &'static str) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { record, count }),
        }
    }
}

pub(crate) fn put_uvarint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

pub(crate) fn put_bool(out: &mut BytesMut, value: bool) {
    out.put_u8(u8::from(value));
}

pub(crate) fn put_uuid(out: &mut BytesMut, value: &Uuid) {
    out.put_slice(value.as_bytes());
}

fn put_compact_len(out: &mut BytesMut, len: Option<usize>) {
    // Lengths come from in-memory strings and vectors; a record of 4 GiB
    // would not fit a RecordBatch anyway.
    put_uvarint(out, len.map_or(0, |len| len as u32 + 1));
}

pub(crate) fn put_nullable_string(out: &mut BytesMut, value: Option<&str>) {
    put_compact_len(out, value.map(str::len));
    if let Some(value) = value {
        out.put_slice(value.as_bytes());
    }
}

pub(crate) fn put_string(out: &mut BytesMut, value: &str) {
    put_nullable_string(out, Some(value));
}

pub(crate) fn put_nullable_i32s(out: &mut BytesMut, values: Option<&[i32]>) {
    put_compact_len(out, values.map(<[i32]>::len));
    for value in values.unwrap_or_default() {
        out.put_i32(*value);
    }
}

pub(crate) fn put_i32s(out: &mut BytesMut, values: &[i32]) {
    put_nullable_i32s(out, Some(values));
}

pub(crate) fn put_nullable_uuids(out: &mut BytesMut, values: Option<&[Uuid]>) {
    put_compact_len(out, values.map(<[Uuid]>::len));
    for value in values.unwrap_or_default() {
        put_uuid(out, value);
    }
}

pub(crate) fn put_uuids(out: &mut BytesMut, values: &[Uuid]) {
    put_nullable_uuids(out, Some(values));
}

pub(crate) fn put_array_len(out: &mut BytesMut, len: usize) {
    put_compact_len(out, Some(len));
}

/// Collects a record's tagged fields, in ascending tag order, and writes
/// the section.
#[derive(Debug, Default)]
pub(crate) struct TaggedFields {
    fields: Vec<(u32, BytesMut)>,
}

impl TaggedFields {
    /// Adds field `tag`, its value written by `write`. Call in tag order.
    pub(crate) fn field(&mut self, tag: u32, write: impl FnOnce(&mut BytesMut)) {
        let mut body = BytesMut::new();
        write(&mut body);
        self.fields.push((tag, body));
    }

    pub(crate) fn write(self, out: &mut BytesMut) {
        put_uvarint(out, self.fields.len() as u32);
        for (tag, body) in self.fields {
            put_uvarint(out, tag);
            put_uvarint(out, body.len() as u32);
            out.put_slice(&body);
        }
    }
}

/// The error for a field set at a version that lacks it, unless `is_default`.
pub(crate) fn check_field(
    is_default: bool,
    record: &'static str,
    field: &'static str,
    version: i16,
) -> Result<(), EncodeError> {
    if is_default {
        Ok(())
    } else {
        Err(EncodeError::FieldNotInVersion {
            record,
            field,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints_round_trip_at_every_width() {
        for value in [0, 1, 127, 128, 16_383, 16_384, 2_097_152, u32::MAX] {
            let mut out = BytesMut::new();
            put_uvarint(&mut out, value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.uvarint("v"), Ok(value));
            assert_eq!(reader.remaining(), 0);
        }
        let mut reader = Reader::new(&[0xff; 6]);
        assert_eq!(
            reader.uvarint("v"),
            Err(DecodeError::VarintTooLong { field: "v" })
        );
    }

    #[test]
    fn a_huge_array_count_is_refused_before_reserving() {
        // count 2^28, then nothing.
        let mut reader = Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(
            reader.i32s("replicas"),
            Err(DecodeError::Truncated { field: "replicas" })
        );
    }

    #[test]
    fn null_and_empty_strings_differ() {
        let mut out = BytesMut::new();
        put_nullable_string(&mut out, None);
        put_string(&mut out, "");
        assert_eq!(&out[..], &[0, 1]);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.nullable_string("a"), Ok(None));
        assert_eq!(reader.string("b"), Ok(String::new()));
    }
}
