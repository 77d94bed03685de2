//! ConfigRecord (api key 4, version 0): one configuration key of one
//! resource is set, or removed when the value is null.
//!
//! | field        | type            |
//! |--------------|-----------------|
//! | ResourceType | int8 (Kafka's `ConfigResource.Type`: 2 topic, 4 broker) |
//! | ResourceName | string (topic name; broker id, "" for the cluster default) |
//! | Name         | string          |
//! | Value        | nullable string |
//! | tagged       | none known      |

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::wire::{
    DecodeError, EncodeError, Reader, TaggedFields, put_nullable_string, put_string,
};

/// `ResourceType` of a topic's configuration.
pub const TOPIC_RESOURCE: i8 = 2;
/// `ResourceType` of a broker's configuration.
pub const BROKER_RESOURCE: i8 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigRecord {
    pub version: i16,
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

impl Body for ConfigRecord {
    const NAME: &'static str = "ConfigRecord";
    const API_KEY: u16 = 4;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_i8(self.resource_type);
        put_string(out, &self.resource_name);
        put_string(out, &self.name);
        put_nullable_string(out, self.value.as_deref());
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let resource_type = r.i8("ResourceType")?;
        let resource_name = r.string("ResourceName")?;
        let name = r.string("Name")?;
        let value = r.nullable_string("Value")?;
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self {
            version,
            resource_type,
            resource_name,
            name,
            value,
        })
    }
}
