//! The small records that name a broker and its epoch: UnregisterBrokerRecord
//! (api key 1), FenceBrokerRecord (7) and UnfenceBrokerRecord (8), all
//! version 0 only.
//!
//! | record                  | fields (in order)                  |
//! |-------------------------|------------------------------------|
//! | UnregisterBrokerRecord  | BrokerId int32, BrokerEpoch int64  |
//! | FenceBrokerRecord       | Id int32, Epoch int64              |
//! | UnfenceBrokerRecord     | Id int32, Epoch int64              |
//!
//! Each ends with an empty tagged-field section (one zero byte).

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::wire::{DecodeError, EncodeError, Reader, TaggedFields};

macro_rules! broker_and_epoch_record {
    ($(#[$doc:meta])* $name:ident, $api_key:expr, $id:ident, $epoch:ident, $id_field:expr, $epoch_field:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            pub version: i16,
            pub $id: i32,
            pub $epoch: i64,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { version: 0, $id: 0, $epoch: 0 }
            }
        }

        impl Body for $name {
            const NAME: &'static str = stringify!($name);
            const API_KEY: u16 = $api_key;
            const MAX_VERSION: i16 = 0;

            fn version(&self) -> i16 {
                self.version
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                out.put_i32(self.$id);
                out.put_i64(self.$epoch);
                TaggedFields::default().write(out);
                Ok(())
            }

            fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
                let $id = r.i32($id_field)?;
                let $epoch = r.i64($epoch_field)?;
                r.tagged_fields(Self::NAME, |_, _| Ok(false))?;
                Ok(Self { version, $id, $epoch })
            }
        }
    };
}

broker_and_epoch_record!(
    /// A broker left the cluster for good.
    UnregisterBrokerRecord, 1, broker_id, broker_epoch, "BrokerId", "BrokerEpoch"
);
broker_and_epoch_record!(
    /// A broker is fenced: it may lead nothing and is out of every ISR.
    FenceBrokerRecord, 7, id, epoch, "Id", "Epoch"
);
broker_and_epoch_record!(
    /// A fenced broker is back.
    UnfenceBrokerRecord, 8, id, epoch, "Id", "Epoch"
);
