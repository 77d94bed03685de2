//! FeatureLevelRecord (api key 12, version 0): a feature's finalized level
//! for the cluster; level 0 removes the feature. A new metadata log begins
//! with the one for `metadata.version`.
//!
//! | field        | type   |
//! |--------------|--------|
//! | Name         | string |
//! | FeatureLevel | int16  |
//! | tagged       | none   |

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields, put_string};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureLevelRecord {
    pub version: i16,
    pub name: String,
    pub feature_level: i16,
}

impl Body for FeatureLevelRecord {
    const NAME: &'static str = "FeatureLevelRecord";
    const API_KEY: u16 = 12;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_string(out, &self.name);
        out.put_i16(self.feature_level);
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let name = r.string("Name")?;
        let feature_level = r.i16("FeatureLevel")?;
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self {
            version,
            name,
            feature_level,
        })
    }
}
