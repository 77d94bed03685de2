//! TopicRecord (api key 2) and RemoveTopicRecord (api key 9), version 0.
//!
//! | record            | fields (in order)           |
//! |-------------------|-----------------------------|
//! | TopicRecord       | Name string, TopicId uuid   |
//! | RemoveTopicRecord | TopicId uuid                |
//!
//! Each ends with an empty tagged-field section.

use bytes::BytesMut;
use uuid::Uuid;

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields, put_string, put_uuid};

/// A topic is created; its partitions follow as PartitionRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub version: i16,
    pub name: String,
    pub topic_id: Uuid,
}

impl Default for TopicRecord {
    fn default() -> Self {
        Self {
            version: 0,
            name: String::new(),
            topic_id: Uuid::nil(),
        }
    }
}

impl Body for TopicRecord {
    const NAME: &'static str = "TopicRecord";
    const API_KEY: u16 = 2;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_string(out, &self.name);
        put_uuid(out, &self.topic_id);
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let name = r.string("Name")?;
        let topic_id = r.uuid("TopicId")?;
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self {
            version,
            name,
            topic_id,
        })
    }
}

/// A topic and all its partitions are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveTopicRecord {
    pub version: i16,
    pub topic_id: Uuid,
}

impl Default for RemoveTopicRecord {
    fn default() -> Self {
        Self {
            version: 0,
            topic_id: Uuid::nil(),
        }
    }
}

impl Body for RemoveTopicRecord {
    const NAME: &'static str = "RemoveTopicRecord";
    const API_KEY: u16 = 9;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_uuid(out, &self.topic_id);
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let topic_id = r.uuid("TopicId")?;
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self { version, topic_id })
    }
}
