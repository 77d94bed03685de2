//! BrokerRegistrationChangeRecord (api key 17, versions 0-2): a change to a
//! registered broker; the changes are tagged and absent when unchanged.
//!
//! | field                | type                  | versions  |
//! |----------------------|-----------------------|-----------|
//! | BrokerId             | int32                 | 0+        |
//! | BrokerEpoch          | int64                 | 0+        |
//! | Fenced               | int8, tag 0           | 0+ tagged |
//! | InControlledShutdown | int8, tag 1           | 1+ tagged |
//! | LogDirs              | []uuid, tag 2         | 2+ tagged |
//!
//! Fenced: -1 unfenced, 0 no change, 1 fenced. InControlledShutdown: 0 no
//! change, 1 in controlled shutdown.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields, check_field, put_uuids};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationChangeRecord {
    pub version: i16,
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub fenced: i8,
    pub in_controlled_shutdown: i8,
    pub log_dirs: Vec<Uuid>,
}

impl BrokerRegistrationChangeRecord {
    pub const LATEST: i16 = 2;
}

impl Default for BrokerRegistrationChangeRecord {
    fn default() -> Self {
        Self {
            version: Self::LATEST,
            broker_id: 0,
            broker_epoch: 0,
            fenced: 0,
            in_controlled_shutdown: 0,
            log_dirs: Vec::new(),
        }
    }
}

impl Body for BrokerRegistrationChangeRecord {
    const NAME: &'static str = "BrokerRegistrationChangeRecord";
    const API_KEY: u16 = 17;
    const MAX_VERSION: i16 = Self::LATEST;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v = self.version;
        out.put_i32(self.broker_id);
        out.put_i64(self.broker_epoch);
        let mut tagged = TaggedFields::default();
        if self.fenced != 0 {
            tagged.field(0, |out| out.put_i8(self.fenced));
        }
        if v >= 1 {
            if self.in_controlled_shutdown != 0 {
                tagged.field(1, |out| out.put_i8(self.in_controlled_shutdown));
            }
        } else {
            let unset = self.in_controlled_shutdown == 0;
            check_field(unset, Self::NAME, "InControlledShutdown", v)?;
        }
        if v >= 2 {
            if !self.log_dirs.is_empty() {
                tagged.field(2, |out| put_uuids(out, &self.log_dirs));
            }
        } else {
            check_field(self.log_dirs.is_empty(), Self::NAME, "LogDirs", v)?;
        }
        tagged.write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let mut record = Self {
            version,
            broker_id: r.i32("BrokerId")?,
            broker_epoch: r.i64("BrokerEpoch")?,
            ..Self::default()
        };
        r.tagged_fields(Self::NAME, |tag, r| {
            match tag {
                0 => record.fenced = r.i8("Fenced")?,
                1 if version >= 1 => {
                    record.in_controlled_shutdown = r.i8("InControlledShutdown")?
                }
                2 if version >= 2 => record.log_dirs = r.uuids("LogDirs")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}
