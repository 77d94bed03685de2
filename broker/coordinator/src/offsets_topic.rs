//! Record formats of `__consumer_offsets`, byte-compatible with Apache Kafka
//! (`OffsetCommitKey.json`, `OffsetCommitValue.json`, `GroupMetadataKey.json`
//! in Kafka's group-coordinator module).
//!
//! Every key and every non-null value starts with a big-endian `i16`
//! version; the key version says which record it is. A null value is a
//! tombstone: compaction drops the key, and replay deletes the state.
//! `string` is an `i16` byte length then UTF-8; `compact string` is an
//! unsigned-varint (length + 1) then UTF-8 (0 = null).
//!
//! Keys (Kafka writes the non-flexible versions):
//!
//! | version | record           | fields after the version                     |
//! |---------|------------------|----------------------------------------------|
//! | 0, 1    | OffsetCommitKey  | group: string, topic: string, partition: i32 |
//! | 2       | GroupMetadataKey | group: string                                |
//!
//! OffsetCommitValue, by value version:
//!
//! | version | fields after the version                                           |
//! |---------|--------------------------------------------------------------------|
//! | 0, 2    | offset: i64, metadata: string, commit_timestamp: i64               |
//! | 1       | offset: i64, metadata: string, commit_timestamp: i64, expire_timestamp: i64 |
//! | 3       | offset: i64, leader_epoch: i32, metadata: string, commit_timestamp: i64 |
//! | 4       | as 3 with metadata a compact string, then tagged fields (flexible)  |
//!
//! We write key version 1 and value version 3 (version 1 only when the
//! commit carries a legacy explicit `expire_timestamp`, as Kafka does), and
//! read every version above. The GroupMetadataValue is in
//! [`crate::group_metadata`].
//!
//! Example, key `("g", "t", 0)` and value `(42, -1, "", 1700000000000)`:
//!
//! | bytes                     | field                      |
//! |---------------------------|----------------------------|
//! | `00 01`                   | key version 1              |
//! | `00 01 67`                | group "g"                  |
//! | `00 01 74`                | topic "t"                  |
//! | `00 00 00 00`             | partition 0                |
//! | `00 03`                   | value version 3            |
//! | `00 00 00 00 00 00 00 2a` | offset 42                  |
//! | `ff ff ff ff`             | leader_epoch -1            |
//! | `00 00`                   | metadata ""                |
//! | `00 00 01 8b cf e5 68 00` | commit_timestamp (ms)      |

use bytes::{BufMut, Bytes, BytesMut};

use crate::group_metadata::GroupMetadataValue;
pub use crate::record_codec::OffsetsRecordError;
use crate::record_codec::{Reader, put_string, read_version};

/// Key version of an OffsetCommitKey that we write (0 reads the same).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a GroupMetadataKey.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version of an OffsetCommitValue that we write.
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Value version written when a legacy `expire_timestamp` must be kept.
pub const OFFSET_COMMIT_VALUE_VERSION_EXPIRE: i16 = 1;
/// `leader_epoch` when the committer did not know it (and for versions < 3).
pub const NO_LEADER_EPOCH: i32 = -1;
/// Size of an OffsetCommitValue v3 with empty metadata: version, offset,
/// leader_epoch, metadata length, commit_timestamp.
pub const OFFSET_COMMIT_VALUE_V3_FIXED_BYTES: usize = 2 + 8 + 4 + 2 + 8;

const OFFSET_COMMIT_KEY: &str = "OffsetCommitKey";
const GROUP_METADATA_KEY: &str = "GroupMetadataKey";
const OFFSET_COMMIT_VALUE: &str = "OffsetCommitValue";

/// Which committed offset a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// A committed offset, as OffsetCommitValue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// [`NO_LEADER_EPOCH`] when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only from OffsetCommit v1 with an explicit retention (value v1).
    pub expire_timestamp_ms: Option<i64>,
}

/// One record of `__consumer_offsets`; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Offset {
        key: OffsetKey,
        value: Option<OffsetValue>,
    },
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
}

impl OffsetsRecord {
    /// The key bytes Kafka writes: OffsetCommitKey v1 or GroupMetadataKey v2.
    pub fn encode_key(&self) -> Result<Bytes, OffsetsRecordError> {
        let mut buf = BytesMut::new();
        match self {
            OffsetsRecord::Offset { key, .. } => {
                buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut buf, "group", &key.group)?;
                put_string(&mut buf, "topic", &key.topic)?;
                buf.put_i32(key.partition);
            }
            OffsetsRecord::GroupMetadata { group, .. } => {
                buf.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut buf, "group", group)?;
            }
        }
        Ok(buf.freeze())
    }

    /// The value bytes, or `None` for a tombstone.
    pub fn encode_value(&self) -> Result<Option<Bytes>, OffsetsRecordError> {
        match self {
            OffsetsRecord::Offset { value: None, .. } => Ok(None),
            OffsetsRecord::Offset {
                value: Some(value), ..
            } => encode_offset_value(value).map(Some),
            OffsetsRecord::GroupMetadata { value, .. } => {
                value.as_ref().map(GroupMetadataValue::encode).transpose()
            }
        }
    }

    /// Decodes one record; `value` is `None` for a tombstone. Never panics.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, OffsetsRecordError> {
        let version = read_version(key, "record key")?;
        match version {
            0 | 1 => {
                let mut r = Reader::new(&key[2..], OFFSET_COMMIT_KEY, version);
                let key = OffsetKey {
                    group: r.string("group")?,
                    topic: r.string("topic")?,
                    partition: r.i32("partition")?,
                };
                r.finish()?;
                let value = value.map(decode_offset_value).transpose()?;
                Ok(OffsetsRecord::Offset { key, value })
            }
            2 => {
                let mut r = Reader::new(&key[2..], GROUP_METADATA_KEY, version);
                let group = r.string("group")?;
                r.finish()?;
                let value = value.map(GroupMetadataValue::decode).transpose()?;
                Ok(OffsetsRecord::GroupMetadata { group, value })
            }
            version => Err(OffsetsRecordError::UnknownKeyVersion { version }),
        }
    }
}

fn encode_offset_value(value: &OffsetValue) -> Result<Bytes, OffsetsRecordError> {
    let mut buf =
        BytesMut::with_capacity(OFFSET_COMMIT_VALUE_V3_FIXED_BYTES + value.metadata.len());
    match value.expire_timestamp_ms {
        Some(expire_timestamp_ms) => {
            buf.put_i16(OFFSET_COMMIT_VALUE_VERSION_EXPIRE);
            buf.put_i64(value.offset);
            put_string(&mut buf, "metadata", &value.metadata)?;
            buf.put_i64(value.commit_timestamp_ms);
            buf.put_i64(expire_timestamp_ms);
        }
        None => {
            buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
            buf.put_i64(value.offset);
            buf.put_i32(value.leader_epoch);
            put_string(&mut buf, "metadata", &value.metadata)?;
            buf.put_i64(value.commit_timestamp_ms);
        }
    }
    Ok(buf.freeze())
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, OffsetsRecordError> {
    let version = read_version(bytes, OFFSET_COMMIT_VALUE)?;
    if !(0..=4).contains(&version) {
        return Err(OffsetsRecordError::UnknownValueVersion { version });
    }
    let mut r = Reader::new(&bytes[2..], OFFSET_COMMIT_VALUE, version);
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader_epoch")?
    } else {
        NO_LEADER_EPOCH
    };
    let metadata = if version >= 4 {
        r.compact_string("metadata")?
    } else {
        r.string("metadata")?
    };
    let commit_timestamp_ms = r.i64("commit_timestamp")?;
    // Version 1 writes -1 when no explicit retention was asked for.
    let expire_timestamp_ms = match version {
        1 => Some(r.i64("expire_timestamp")?).filter(|&ts| ts >= 0),
        _ => None,
    };
    if version >= 4 {
        // Tagged fields (e.g. topic_id) carry nothing we keep.
        r.skip_tagged_fields()?;
    }
    r.finish()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_g_t_0() -> OffsetKey {
        OffsetKey {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        }
    }

    fn value_42() -> OffsetValue {
        OffsetValue {
            offset: 42,
            leader_epoch: NO_LEADER_EPOCH,
            metadata: String::new(),
            commit_timestamp_ms: 1_700_000_000_000,
            expire_timestamp_ms: None,
        }
    }

    // By hand from OffsetCommitKey.json: version, group, topic, partition.
    const GOLDEN_KEY_V1: [u8; 12] = [
        0x00, 0x01, // key version 1
        0x00, 0x01, b'g', // group
        0x00, 0x01, b't', // topic
        0x00, 0x00, 0x00, 0x00, // partition 0
    ];

    // By hand from OffsetCommitValue.json v3; 1700000000000 = 0x18BCFE56800.
    const GOLDEN_VALUE_V3: [u8; OFFSET_COMMIT_VALUE_V3_FIXED_BYTES] = [
        0x00, 0x03, // value version 3
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // offset 42
        0xff, 0xff, 0xff, 0xff, // leader_epoch -1
        0x00, 0x00, // metadata ""
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // commit_timestamp
    ];

    fn offset_record() -> OffsetsRecord {
        OffsetsRecord::Offset {
            key: key_g_t_0(),
            value: Some(value_42()),
        }
    }

    #[test]
    fn golden_offset_commit_key_v1() {
        let key = offset_record().encode_key().expect("encode key");
        assert_eq!(&key[..], &GOLDEN_KEY_V1);
    }

    #[test]
    fn golden_offset_commit_value_v3() {
        let value = offset_record().encode_value().expect("encode value");
        assert_eq!(value.as_deref(), Some(&GOLDEN_VALUE_V3[..]));
    }

    #[test]
    fn golden_bytes_decode() {
        let record = OffsetsRecord::decode(&GOLDEN_KEY_V1, Some(&GOLDEN_VALUE_V3)).expect("decode");
        assert_eq!(record, offset_record());
    }

    #[test]
    fn golden_group_metadata_key_v2() {
        let record = OffsetsRecord::GroupMetadata {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 1,
                ..GroupMetadataValue::default()
            }),
        };
        let key = record.encode_key().expect("encode key");
        assert_eq!(&key[..], &[0x00, 0x02, 0x00, 0x01, b'g']);
        let value = record.encode_value().expect("encode value");
        let decoded = OffsetsRecord::decode(&key, value.as_deref()).expect("decode");
        assert_eq!(decoded, record);
    }

    #[test]
    fn key_version_0_decodes_like_1() {
        let mut key = GOLDEN_KEY_V1;
        key[1] = 0;
        let record = OffsetsRecord::decode(&key, None).expect("decode");
        assert_eq!(
            record,
            OffsetsRecord::Offset {
                key: key_g_t_0(),
                value: None
            }
        );
    }

    #[test]
    fn tombstones_round_trip() {
        let offset = OffsetsRecord::Offset {
            key: key_g_t_0(),
            value: None,
        };
        assert_eq!(offset.encode_value(), Ok(None));
        let key = offset.encode_key().expect("encode");
        assert_eq!(OffsetsRecord::decode(&key, None), Ok(offset));

        let group = OffsetsRecord::GroupMetadata {
            group: "g".into(),
            value: None,
        };
        let key = group.encode_key().expect("encode");
        assert_eq!(OffsetsRecord::decode(&key, None), Ok(group));
    }

    fn value_bytes(version: i16, body: &[&[u8]]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        for part in body {
            out.extend_from_slice(part);
        }
        out
    }

    fn decode_value(bytes: &[u8]) -> Result<OffsetValue, OffsetsRecordError> {
        match OffsetsRecord::decode(&GOLDEN_KEY_V1, Some(bytes))? {
            OffsetsRecord::Offset {
                value: Some(value), ..
            } => Ok(value),
            other => panic!("expected an offset value, got {other:?}"),
        }
    }

    #[test]
    fn value_versions_0_and_2_have_no_leader_epoch() {
        for version in [0, 2] {
            let bytes = value_bytes(
                version,
                &[
                    &7i64.to_be_bytes(),
                    &[0x00, 0x02, b'm', b'd'],
                    &5i64.to_be_bytes(),
                ],
            );
            let value = decode_value(&bytes).expect("decode");
            assert_eq!(
                value,
                OffsetValue {
                    offset: 7,
                    leader_epoch: NO_LEADER_EPOCH,
                    metadata: "md".into(),
                    commit_timestamp_ms: 5,
                    expire_timestamp_ms: None,
                }
            );
        }
    }

    #[test]
    fn value_version_1_keeps_expire_timestamp_and_round_trips() {
        let bytes = value_bytes(
            1,
            &[
                &7i64.to_be_bytes(),
                &[0x00, 0x00],
                &5i64.to_be_bytes(),
                &9i64.to_be_bytes(),
            ],
        );
        let value = decode_value(&bytes).expect("decode");
        assert_eq!(value.expire_timestamp_ms, Some(9));
        let record = OffsetsRecord::Offset {
            key: key_g_t_0(),
            value: Some(value),
        };
        let encoded = record
            .encode_value()
            .expect("encode")
            .expect("not a tombstone");
        assert_eq!(&encoded[..], &bytes[..]);

        let no_expiry = value_bytes(
            1,
            &[
                &7i64.to_be_bytes(),
                &[0x00, 0x00],
                &5i64.to_be_bytes(),
                &(-1i64).to_be_bytes(),
            ],
        );
        assert_eq!(
            decode_value(&no_expiry)
                .expect("decode")
                .expire_timestamp_ms,
            None
        );
    }

    #[test]
    fn value_version_4_is_flexible() {
        // Compact string "md" (length + 1 = 3), then one tagged field
        // (tag 0, topic_id: 16 bytes) that we skip.
        let tagged: Vec<u8> = [&[0x01, 0x00, 0x10][..], &[0xab; 16]].concat();
        let bytes = value_bytes(
            4,
            &[
                &7i64.to_be_bytes(),
                &3i32.to_be_bytes(),
                &[0x03, b'm', b'd'],
                &5i64.to_be_bytes(),
                &tagged,
            ],
        );
        let value = decode_value(&bytes).expect("decode");
        assert_eq!(
            value,
            OffsetValue {
                offset: 7,
                leader_epoch: 3,
                metadata: "md".into(),
                commit_timestamp_ms: 5,
                expire_timestamp_ms: None,
            }
        );
        // No tagged fields at all is a single 0 byte.
        let empty = value_bytes(
            4,
            &[
                &7i64.to_be_bytes(),
                &3i32.to_be_bytes(),
                &[0x01],
                &5i64.to_be_bytes(),
                &[0x00],
            ],
        );
        assert_eq!(decode_value(&empty).expect("decode").metadata, "");
    }

    #[test]
    fn errors_name_version_and_field() {
        assert_eq!(
            OffsetsRecord::decode(&[0x00], None),
            Err(OffsetsRecordError::MissingVersion {
                record: "record key"
            })
        );
        assert_eq!(
            OffsetsRecord::decode(&[0x00, 0x03], None),
            Err(OffsetsRecordError::UnknownKeyVersion { version: 3 })
        );
        assert_eq!(
            OffsetsRecord::decode(&GOLDEN_KEY_V1[..10], None),
            Err(OffsetsRecordError::Truncated {
                record: "OffsetCommitKey",
                version: 1,
                field: "partition"
            })
        );
        assert_eq!(
            OffsetsRecord::decode(&[0x00, 0x02, 0xff, 0xff], None),
            Err(OffsetsRecordError::InvalidLength {
                record: "GroupMetadataKey",
                version: 2,
                field: "group",
                len: -1
            })
        );
        assert_eq!(
            OffsetsRecord::decode(&[&GOLDEN_KEY_V1[..], &[0x00]].concat(), None),
            Err(OffsetsRecordError::TrailingBytes {
                record: "OffsetCommitKey",
                version: 1,
                count: 1
            })
        );
        assert_eq!(
            decode_value(&[0x00, 0x05]),
            Err(OffsetsRecordError::UnknownValueVersion { version: 5 })
        );
        assert_eq!(
            decode_value(&GOLDEN_VALUE_V3[..20]),
            Err(OffsetsRecordError::Truncated {
                record: "OffsetCommitValue",
                version: 3,
                field: "commit_timestamp"
            })
        );
        let bad_utf8 = decode_value(&value_bytes(
            0,
            &[
                &7i64.to_be_bytes(),
                &[0x00, 0x01, 0xff],
                &5i64.to_be_bytes(),
            ],
        ));
        assert!(
            matches!(
                bad_utf8,
                Err(OffsetsRecordError::InvalidUtf8 {
                    field: "metadata",
                    version: 0,
                    ..
                })
            ),
            "{bad_utf8:?}"
        );
    }

    #[test]
    fn encode_rejects_strings_an_i16_cannot_measure() {
        let record = OffsetsRecord::GroupMetadata {
            group: "x".repeat(40_000),
            value: None,
        };
        assert_eq!(
            record.encode_key(),
            Err(OffsetsRecordError::StringTooLong {
                field: "group",
                len: 40_000
            })
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..20_000 {
            let key_len = rng.usize(0..24);
            let mut key: Vec<u8> = (0..key_len).map(|_| rng.u8(..)).collect();
            // Steer half the keys to known versions so the value decoders run.
            if key.len() >= 2 && rng.bool() {
                key[0] = 0;
                key[1] = rng.u8(0..3);
            }
            let value_len = rng.usize(0..40);
            let mut value: Vec<u8> = (0..value_len).map(|_| rng.u8(..)).collect();
            if value.len() >= 2 && rng.bool() {
                value[0] = 0;
                value[1] = rng.u8(0..5);
            }
            let value = rng.bool().then_some(&value[..]);
            let _ = OffsetsRecord::decode(&key, value);
        }
    }
}
