//! The GroupMetadataValue record of `__consumer_offsets`, byte-compatible
//! with Apache Kafka (`GroupMetadataValue.json`): a group's generation,
//! protocol, leader and members with their subscriptions and assignments,
//! written when a rebalance completes and when the group empties, and read
//! back at start so a restarted coordinator knows its groups.
//!
//! | field                    | type            | versions          |
//! |--------------------------|-----------------|-------------------|
//! | protocol_type            | string          | 0+                |
//! | generation               | i32             | 0+                |
//! | protocol                 | nullable string | 0+                |
//! | leader                   | nullable string | 0+                |
//! | current_state_timestamp  | i64             | 2+ (else -1)      |
//! | members                  | i32 count, then | 0+                |
//! | . member_id              | string          | 0+                |
//! | . group_instance_id      | nullable string | 3+                |
//! | . client_id              | string          | 0+                |
//! | . client_host            | string          | 0+                |
//! | . rebalance_timeout      | i32             | 1+ (else session) |
//! | . session_timeout        | i32             | 0+                |
//! | . subscription           | bytes           | 0+                |
//! | . assignment             | bytes           | 0+                |
//!
//! Version 4 is the flexible form: compact strings, bytes and arrays, and
//! tagged fields after each member and after the record. We write version
//! 3, as Kafka does, and read 0 to 4.

use bytes::{BufMut, Bytes, BytesMut};

use crate::record_codec::{OffsetsRecordError, Reader, put_string, read_version};

/// The GroupMetadataValue version we write.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;
const RECORD: &str = "GroupMetadataValue";

/// A group as `__consumer_offsets` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state; -1 when unknown.
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One member of a stored group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

impl GroupMetadataValue {
    /// The value bytes, version 3.
    pub fn encode(&self) -> Result<Bytes, OffsetsRecordError> {
        let mut buf = BytesMut::with_capacity(64 + 128 * self.members.len());
        buf.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut buf, "protocol_type", &self.protocol_type)?;
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, "protocol", self.protocol.as_deref())?;
        put_nullable_string(&mut buf, "leader", self.leader.as_deref())?;
        buf.put_i64(self.current_state_timestamp_ms);
        buf.put_i32(count(self.members.len(), "members")?);
        for member in &self.members {
            put_string(&mut buf, "member_id", &member.member_id)?;
            put_nullable_string(
                &mut buf,
                "group_instance_id",
                member.group_instance_id.as_deref(),
            )?;
            put_string(&mut buf, "client_id", &member.client_id)?;
            put_string(&mut buf, "client_host", &member.client_host)?;
            buf.put_i32(member.rebalance_timeout_ms);
            buf.put_i32(member.session_timeout_ms);
            buf.put_i32(count(member.subscription.len(), "subscription")?);
            buf.put_slice(&member.subscription);
            buf.put_i32(count(member.assignment.len(), "assignment")?);
            buf.put_slice(&member.assignment);
        }
        Ok(buf.freeze())
    }

    /// Decodes versions 0 to 4. Never panics.
    pub fn decode(value: &[u8]) -> Result<Self, OffsetsRecordError> {
        let version = read_version(value, RECORD)?;
        if !(0..=4).contains(&version) {
            return Err(OffsetsRecordError::UnknownGroupMetadataVersion { version });
        }
        let flexible = version >= 4;
        let mut r = Reader::new(&value[2..], RECORD, version);
        let protocol_type = string(&mut r, flexible, "protocol_type")?;
        let generation = r.i32("generation")?;
        let protocol = nullable_string(&mut r, flexible, "protocol")?;
        let leader = nullable_string(&mut r, flexible, "leader")?;
        let current_state_timestamp_ms = if version >= 2 {
            r.i64("current_state_timestamp")?
        } else {
            -1
        };
        let members_len = if flexible {
            // Compact arrays hold length + 1; 0 would be null.
            i64::from(r.varint("members")?) - 1
        } else {
            i64::from(r.i32("members")?)
        };
        if members_len < 0 {
            return Err(r.invalid_length("members", members_len));
        }
        let mut members = Vec::new();
        for _ in 0..members_len {
            let member_id = string(&mut r, flexible, "member_id")?;
            let group_instance_id = if version >= 3 {
                nullable_string(&mut r, flexible, "group_instance_id")?
            } else {
                None
            };
            let client_id = string(&mut r, flexible, "client_id")?;
            let client_host = string(&mut r, flexible, "client_host")?;
            let rebalance_timeout_ms = if version >= 1 {
                Some(r.i32("rebalance_timeout")?)
            } else {
                None
            };
            let session_timeout_ms = r.i32("session_timeout")?;
            let subscription = bytes(&mut r, flexible, "subscription")?;
            let assignment = bytes(&mut r, flexible, "assignment")?;
            if flexible {
                r.skip_tagged_fields()?;
            }
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                // Version 0 had one timeout for both, as Kafka reads it.
                rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        r.finish()?;
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

fn count(len: usize, field: &'static str) -> Result<i32, OffsetsRecordError> {
    i32::try_from(len).map_err(|_| OffsetsRecordError::StringTooLong { field, len })
}

fn put_nullable_string(
    buf: &mut BytesMut,
    field: &'static str,
    s: Option<&str>,
) -> Result<(), OffsetsRecordError> {
    match s {
        Some(s) => put_string(buf, field, s),
        None => {
            buf.put_i16(-1);
            Ok(())
        }
    }
}

fn string(
    r: &mut Reader<'_>,
    flexible: bool,
    field: &'static str,
) -> Result<String, OffsetsRecordError> {
    if flexible {
        r.compact_string(field)
    } else {
        r.string(field)
    }
}

fn nullable_string(
    r: &mut Reader<'_>,
    flexible: bool,
    field: &'static str,
) -> Result<Option<String>, OffsetsRecordError> {
    if flexible {
        r.compact_nullable_string(field)
    } else {
        r.nullable_string(field)
    }
}

fn bytes(
    r: &mut Reader<'_>,
    flexible: bool,
    field: &'static str,
) -> Result<Bytes, OffsetsRecordError> {
    if flexible {
        r.compact_bytes(field)
    } else {
        r.bytes(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1_700_000_000_000,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(&[0, 1]),
                assignment: Bytes::from_static(&[2]),
            }],
        }
    }

    // By hand from GroupMetadataValue.json, version 3.
    #[rustfmt::skip]
    const GOLDEN_V3: &[u8] = &[
        0x00, 0x03, // version 3
        0x00, 0x08, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', // protocol_type
        0x00, 0x00, 0x00, 0x03, // generation
        0x00, 0x05, b'r', b'a', b'n', b'g', b'e', // protocol
        0x00, 0x02, b'm', b'1', // leader
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // current_state_timestamp
        0x00, 0x00, 0x00, 0x01, // one member
        0x00, 0x02, b'm', b'1', // member_id
        0xff, 0xff, // group_instance_id null
        0x00, 0x01, b'c', // client_id
        0x00, 0x02, b'/', b'h', // client_host
        0x00, 0x04, 0x93, 0xe0, // rebalance_timeout 300000
        0x00, 0x00, 0xaf, 0xc8, // session_timeout 45000
        0x00, 0x00, 0x00, 0x02, 0x00, 0x01, // subscription
        0x00, 0x00, 0x00, 0x01, 0x02, // assignment
    ];

    #[test]
    fn version_3_matches_kafka_bytes_and_round_trips() {
        let encoded = sample().encode().expect("encode");
        assert_eq!(&encoded[..], GOLDEN_V3);
        assert_eq!(
            GroupMetadataValue::decode(GOLDEN_V3).expect("decode v3"),
            sample()
        );
    }

    #[test]
    fn version_4_is_read_in_its_flexible_form() {
        #[rustfmt::skip]
        let v4: &[u8] = &[
            0x00, 0x04,
            0x09, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r',
            0x00, 0x00, 0x00, 0x03,
            0x06, b'r', b'a', b'n', b'g', b'e',
            0x03, b'm', b'1',
            0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
            0x02, // one member
            0x03, b'm', b'1',
            0x00, // group_instance_id null
            0x02, b'c',
            0x03, b'/', b'h',
            0x00, 0x04, 0x93, 0xe0,
            0x00, 0x00, 0xaf, 0xc8,
            0x03, 0x00, 0x01,
            0x02, 0x02,
            0x00, // member tagged fields
            0x00, // record tagged fields
        ];
        assert_eq!(GroupMetadataValue::decode(v4).expect("decode v4"), sample());
    }

    #[test]
    fn version_0_uses_the_session_timeout_for_both() {
        let mut v0 = vec![0x00, 0x00];
        v0.extend_from_slice(&[0x00, 0x08]);
        v0.extend_from_slice(b"consumer");
        v0.extend_from_slice(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        v0.extend_from_slice(&[0x00, 0x01, b'm', 0x00, 0x00, 0x00, 0x00]);
        v0.extend_from_slice(&[0x00, 0x00, 0x27, 0x10]); // session 10000
        v0.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let value = GroupMetadataValue::decode(&v0).expect("decode v0");
        assert_eq!(value.current_state_timestamp_ms, -1);
        assert_eq!(value.protocol, None);
        assert_eq!(value.members[0].rebalance_timeout_ms, 10_000);
        assert_eq!(value.members[0].session_timeout_ms, 10_000);
    }

    #[test]
    fn damaged_values_are_refused_without_panicking() {
        assert_eq!(
            GroupMetadataValue::decode(&[0x00, 0x05]),
            Err(OffsetsRecordError::UnknownGroupMetadataVersion { version: 5 })
        );
        for len in 0..GOLDEN_V3.len() {
            assert!(
                GroupMetadataValue::decode(&GOLDEN_V3[..len]).is_err(),
                "{len}"
            );
        }
        let mut negative = GOLDEN_V3.to_vec();
        negative[35..39].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(GroupMetadataValue::decode(&negative).is_err());
        let mut huge = GOLDEN_V3.to_vec();
        huge[35..39].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupMetadataValue::decode(&huge).is_err());
    }
}
