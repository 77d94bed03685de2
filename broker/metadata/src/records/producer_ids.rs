//! ProducerIdsRecord (api key 15, version 0): a block of producer ids was
//! handed to a broker; `NextProducerId` is the first id of the next block.
//!
//! | field          | type  |
//! |----------------|-------|
//! | BrokerId       | int32 |
//! | BrokerEpoch    | int64 |
//! | NextProducerId | int64 |
//! | tagged         | none  |

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub version: i16,
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub next_producer_id: i64,
}

impl Default for ProducerIdsRecord {
    fn default() -> Self {
        Self {
            version: 0,
            broker_id: 0,
            broker_epoch: -1,
            next_producer_id: 0,
        }
    }
}

impl Body for ProducerIdsRecord {
    const NAME: &'static str = "ProducerIdsRecord";
    const API_KEY: u16 = 15;
    const MAX_VERSION: i16 = 0;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_i32(self.broker_id);
        out.put_i64(self.broker_epoch);
        out.put_i64(self.next_producer_id);
        TaggedFields::default().write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let broker_id = r.i32("BrokerId")?;
        let broker_epoch = r.i64("BrokerEpoch")?;
        let next_producer_id = r.i64("NextProducerId")?;
        r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
        Ok(Self {
            version,
            broker_id,
            broker_epoch,
            next_producer_id,
        })
    }
}
