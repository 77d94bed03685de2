//! NoOpRecord (api key 20, version 0): no fields; the controller writes it
//! so the log (and the high watermark) keeps moving.
//!
//! | field  | type |
//! |--------|------|
//! | tagged | none |

use bytes::BytesMut;

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoOpRecord {
    pub version: i16,
}

impl Body for NoOpRecord {
    const NAME: &'static str = "NoOpRecord";
    const API_KEY: u16 = 20;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self { version })
    }
}
