//! Kafka's metadata records (`metadata/src/main/resources/common/metadata/`
//! in Kafka 4.1), one file per record type, and their framing in the
//! metadata log as Kafka's `MetadataRecordSerde` writes it:
//!
//! | field         | type                                   |
//! |---------------|----------------------------------------|
//! | frame version | unsigned varint, always 1              |
//! | api key       | unsigned varint: which record type     |
//! | version       | unsigned varint: the record's version  |
//! | body          | the record's fields (flexible encoding)|
//!
//! Every record type is flexible in every version: its body ends with a
//! tagged-field section. A record keeps the version it was read at, so
//! writing it back gives the same bytes.

mod broker_ids;
mod broker_registration_change;
mod config;
mod feature_level;
mod no_op;
mod partition;
mod partition_change;
mod producer_ids;
mod register_broker;
mod topic;

#[cfg(test)]
pub(crate) mod golden;

use bytes::{Bytes, BytesMut};

pub use broker_ids::{FenceBrokerRecord, UnfenceBrokerRecord, UnregisterBrokerRecord};
pub use broker_registration_change::BrokerRegistrationChangeRecord;
pub use config::{BROKER_RESOURCE, ConfigRecord, TOPIC_RESOURCE};
pub use feature_level::FeatureLevelRecord;
pub use no_op::NoOpRecord;
pub use partition::PartitionRecord;
pub use partition_change::{NO_LEADER_CHANGE, NO_LEADER_RECOVERY_CHANGE, PartitionChangeRecord};
pub use producer_ids::ProducerIdsRecord;
pub use register_broker::{BrokerEndpoint, BrokerFeature, RegisterBrokerRecord};
pub use topic::{RemoveTopicRecord, TopicRecord};

use crate::wire::{DecodeError, EncodeError, Reader, put_uvarint};

/// The frame version `MetadataRecordSerde` writes and reads.
pub const FRAME_VERSION: u32 = 1;

/// One record type's body: its name, api key, versions and fields.
pub(crate) trait Body: Sized {
    const NAME: &'static str;
    const API_KEY: u16;
    /// Versions are `0..=MAX_VERSION` for every metadata record type.
    const MAX_VERSION: i16;

    fn version(&self) -> i16;
    /// The fields at `self.version()`, which the caller has checked.
    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError>;
    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError>;
}

/// A metadata record of one of the types Runnel reads, at its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    RegisterBroker(Box<RegisterBrokerRecord>),
    UnregisterBroker(UnregisterBrokerRecord),
    Topic(TopicRecord),
    Partition(Box<PartitionRecord>),
    Config(ConfigRecord),
    PartitionChange(Box<PartitionChangeRecord>),
    FenceBroker(FenceBrokerRecord),
    UnfenceBroker(UnfenceBrokerRecord),
    RemoveTopic(RemoveTopicRecord),
    FeatureLevel(FeatureLevelRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    NoOp(NoOpRecord),
}

/// Calls `$body!(record)` with the record of whichever variant `$self` is.
macro_rules! each_variant {
    ($self:expr, $record:ident => $body:expr) => {
        match $self {
            MetadataRecord::RegisterBroker($record) => $body,
            MetadataRecord::UnregisterBroker($record) => $body,
            MetadataRecord::Topic($record) => $body,
            MetadataRecord::Partition($record) => $body,
            MetadataRecord::Config($record) => $body,
            MetadataRecord::PartitionChange($record) => $body,
            MetadataRecord::FenceBroker($record) => $body,
            MetadataRecord::UnfenceBroker($record) => $body,
            MetadataRecord::RemoveTopic($record) => $body,
            MetadataRecord::FeatureLevel($record) => $body,
            MetadataRecord::ProducerIds($record) => $body,
            MetadataRecord::BrokerRegistrationChange($record) => $body,
            MetadataRecord::NoOp($record) => $body,
        }
    };
}

fn api_key_of<T: Body>(_: &T) -> u16 {
    T::API_KEY
}

fn name_of<T: Body>(_: &T) -> &'static str {
    T::NAME
}

fn write_body<T: Body>(record: &T, out: &mut BytesMut) -> Result<(), EncodeError> {
    let version = record.version();
    if !(0..=T::MAX_VERSION).contains(&version) {
        return Err(EncodeError::UnsupportedVersion {
            record: T::NAME,
            version,
        });
    }
    put_uvarint(out, FRAME_VERSION);
    put_uvarint(out, u32::from(T::API_KEY));
    put_uvarint(out, version as u32);
    record.write(out)
}

fn read_body<T: Body>(r: &mut Reader<'_>, version: u32) -> Result<T, DecodeError> {
    let version = i16::try_from(version)
        .ok()
        .filter(|v| (0..=T::MAX_VERSION).contains(v))
        .ok_or(DecodeError::UnsupportedVersion {
            record: T::NAME,
            version,
        })?;
    T::read(r, version)
}

impl MetadataRecord {
    /// The record type's api key (Kafka's `MetadataRecordType` id).
    pub fn api_key(&self) -> u16 {
        each_variant!(self, record => api_key_of(record))
    }

    /// The record type's name, as Kafka's schemas spell it.
    pub fn name(&self) -> &'static str {
        each_variant!(self, record => name_of(record))
    }

    pub fn version(&self) -> i16 {
        each_variant!(self, record => record.version())
    }

    /// Appends the framed record to `out`. Fails only for a version Kafka
    /// does not define, or a field set that the version lacks; `out` may
    /// then hold part of the record.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        each_variant!(self, record => write_body(record, out))
    }

    /// The framed record as a fresh buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// Reads one framed record that fills `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let frame_version = r.uvarint("frame version")?;
        if frame_version != FRAME_VERSION {
            return Err(DecodeError::UnknownFrameVersion(frame_version));
        }
        let api_key = r.uvarint("api key")?;
        let version = r.uvarint("version")?;
        let record = match api_key {
            0 => Self::RegisterBroker(read_body(&mut r, version)?),
            1 => Self::UnregisterBroker(read_body(&mut r, version)?),
            2 => Self::Topic(read_body(&mut r, version)?),
            3 => Self::Partition(read_body(&mut r, version)?),
            4 => Self::Config(read_body(&mut r, version)?),
            5 => Self::PartitionChange(read_body(&mut r, version)?),
            7 => Self::FenceBroker(read_body(&mut r, version)?),
            8 => Self::UnfenceBroker(read_body(&mut r, version)?),
            9 => Self::RemoveTopic(read_body(&mut r, version)?),
            12 => Self::FeatureLevel(read_body(&mut r, version)?),
            15 => Self::ProducerIds(read_body(&mut r, version)?),
            17 => Self::BrokerRegistrationChange(read_body(&mut r, version)?),
            20 => Self::NoOp(read_body(&mut r, version)?),
            other => return Err(DecodeError::UnknownApiKey(other)),
        };
        r.finish(record.name())?;
        Ok(record)
    }
}

/// The boxed variants' records (boxed to keep the enum small).
impl<T: Body> Body for Box<T> {
    const NAME: &'static str = T::NAME;
    const API_KEY: u16 = T::API_KEY;
    const MAX_VERSION: i16 = T::MAX_VERSION;

    fn version(&self) -> i16 {
        (**self).version()
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        (**self).write(out)
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        T::read(r, version).map(Box::new)
    }
}

macro_rules! from_record {
    ($($variant:ident($ty:ty)),*) => {
        $(impl From<$ty> for MetadataRecord {
            fn from(record: $ty) -> Self {
                Self::$variant(record.into())
            }
        })*
    };
}

from_record!(
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker(UnregisterBrokerRecord),
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(FenceBrokerRecord),
    UnfenceBroker(UnfenceBrokerRecord),
    RemoveTopic(RemoveTopicRecord),
    FeatureLevel(FeatureLevelRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    NoOp(NoOpRecord)
);

#[cfg(test)]
mod tests {
    use super::golden::samples;
    use super::*;

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for (name, golden, _) in samples() {
            for len in 0..golden.len() {
                assert!(
                    MetadataRecord::decode(&golden[..len]).is_err(),
                    "{name} cut to {len} bytes decoded"
                );
            }
        }
    }

    #[test]
    fn random_and_corrupted_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(13);
        let samples = samples();
        for _ in 0..20_000 {
            let (_, golden, _) = &samples[rng.usize(..samples.len())];
            let mut bytes = golden.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
            let _ = MetadataRecord::decode(&bytes);
            let random: Vec<u8> = (0..rng.usize(..64)).map(|_| rng.u8(..)).collect();
            let _ = MetadataRecord::decode(&random);
        }
    }

    #[test]
    fn unknown_frames_types_versions_and_garbage_are_typed_errors() {
        assert_eq!(
            MetadataRecord::decode(&[0, 20, 0, 0]),
            Err(DecodeError::UnknownFrameVersion(0))
        );
        assert_eq!(
            MetadataRecord::decode(&[1, 6, 0, 0]),
            Err(DecodeError::UnknownApiKey(6))
        );
        assert_eq!(
            MetadataRecord::decode(&[1, 20, 1, 0]),
            Err(DecodeError::UnsupportedVersion {
                record: "NoOpRecord",
                version: 1
            })
        );
        assert_eq!(
            MetadataRecord::decode(&[1, 20, 0, 0, 7]),
            Err(DecodeError::TrailingBytes {
                record: "NoOpRecord",
                count: 1
            })
        );
    }

    #[test]
    fn a_field_the_version_lacks_is_refused_as_kafka_does() {
        let record: MetadataRecord = PartitionRecord {
            version: 0,
            directories: vec![uuid::Uuid::nil()],
            ..PartitionRecord::default()
        }
        .into();
        assert_eq!(
            record.encode(&mut BytesMut::new()),
            Err(EncodeError::FieldNotInVersion {
                record: "PartitionRecord",
                field: "Directories",
                version: 0
            })
        );
        let record: MetadataRecord = NoOpRecord { version: 3 }.into();
        assert!(matches!(
            record.encode(&mut BytesMut::new()),
            Err(EncodeError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        // NoOpRecord v0 with tag 9 holding two bytes.
        let record = MetadataRecord::decode(&[1, 20, 0, 1, 9, 2, 0xab, 0xcd]);
        assert_eq!(record, Ok(NoOpRecord::default().into()));
    }
}
