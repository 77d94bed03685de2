//! PartitionChangeRecord (api key 5, versions 0-2): a change to a
//! partition's state. Every field but the ids is tagged and absent (its
//! default) when it did not change.
//!
//! | field                  | type                          | versions  |
//! |------------------------|-------------------------------|-----------|
//! | PartitionId            | int32                         | 0+        |
//! | TopicId                | uuid                          | 0+        |
//! | Isr                    | nullable []int32, tag 0       | 0+ tagged |
//! | Leader                 | int32, tag 1 (default -2)     | 0+ tagged |
//! | Replicas               | nullable []int32, tag 2       | 0+ tagged |
//! | RemovingReplicas       | nullable []int32, tag 3       | 0+ tagged |
//! | AddingReplicas         | nullable []int32, tag 4       | 0+ tagged |
//! | LeaderRecoveryState    | int8, tag 5 (default -1)      | 0+ tagged |
//! | EligibleLeaderReplicas | nullable []int32, tag 6       | 2+ tagged |
//! | LastKnownElr           | nullable []int32, tag 7       | 2+ tagged |
//! | Directories            | nullable []uuid, tag 8        | 1+ tagged |
//!
//! Leader -1 means no leader; -2 ([`NO_LEADER_CHANGE`]) no change.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::Body;
use crate::wire::{
    DecodeError, EncodeError, Reader, TaggedFields, check_field, put_nullable_i32s,
    put_nullable_uuids, put_uuid,
};

/// `Leader` of a change that keeps the leader.
pub const NO_LEADER_CHANGE: i32 = -2;
/// `LeaderRecoveryState` of a change that keeps it.
pub const NO_LEADER_RECOVERY_CHANGE: i8 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChangeRecord {
    pub version: i16,
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub isr: Option<Vec<i32>>,
    pub leader: i32,
    pub replicas: Option<Vec<i32>>,
    pub removing_replicas: Option<Vec<i32>>,
    pub adding_replicas: Option<Vec<i32>>,
    pub leader_recovery_state: i8,
    pub directories: Option<Vec<Uuid>>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

impl PartitionChangeRecord {
    pub const LATEST: i16 = 2;
}

impl Default for PartitionChangeRecord {
    fn default() -> Self {
        Self {
            version: Self::LATEST,
            partition_id: -1,
            topic_id: Uuid::nil(),
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: NO_LEADER_RECOVERY_CHANGE,
            directories: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }
}

impl Body for PartitionChangeRecord {
    const NAME: &'static str = "PartitionChangeRecord";
    const API_KEY: u16 = 5;
    const MAX_VERSION: i16 = Self::LATEST;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v = self.version;
        out.put_i32(self.partition_id);
        put_uuid(out, &self.topic_id);
        if v < 2 {
            let name = "EligibleLeaderReplicas";
            check_field(self.eligible_leader_replicas.is_none(), Self::NAME, name, v)?;
            check_field(self.last_known_elr.is_none(), Self::NAME, "LastKnownElr", v)?;
        }
        if v < 1 {
            check_field(self.directories.is_none(), Self::NAME, "Directories", v)?;
        }
        let mut tagged = TaggedFields::default();
        let lists = [
            (0, &self.isr),
            (2, &self.replicas),
            (3, &self.removing_replicas),
            (4, &self.adding_replicas),
        ];
        for (tag, list) in lists {
            if tag == 2 && self.leader != NO_LEADER_CHANGE {
                tagged.field(1, |out| out.put_i32(self.leader));
            }
            if let Some(list) = list {
                tagged.field(tag, |out| put_nullable_i32s(out, Some(list)));
            }
        }
        if self.leader_recovery_state != NO_LEADER_RECOVERY_CHANGE {
            tagged.field(5, |out| out.put_i8(self.leader_recovery_state));
        }
        if let Some(elr) = &self.eligible_leader_replicas {
            tagged.field(6, |out| put_nullable_i32s(out, Some(elr)));
        }
        if let Some(last_known) = &self.last_known_elr {
            tagged.field(7, |out| put_nullable_i32s(out, Some(last_known)));
        }
        if let Some(directories) = &self.directories {
            tagged.field(8, |out| put_nullable_uuids(out, Some(directories)));
        }
        tagged.write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let mut record = Self {
            version,
            partition_id: r.i32("PartitionId")?,
            topic_id: r.uuid("TopicId")?,
            ..Self::default()
        };
        r.tagged_fields(Self::NAME, |tag, r| {
            match tag {
                0 => record.isr = r.nullable_i32s("Isr")?,
                1 => record.leader = r.i32("Leader")?,
                2 => record.replicas = r.nullable_i32s("Replicas")?,
                3 => record.removing_replicas = r.nullable_i32s("RemovingReplicas")?,
                4 => record.adding_replicas = r.nullable_i32s("AddingReplicas")?,
                5 => record.leader_recovery_state = r.i8("LeaderRecoveryState")?,
                6 if version >= 2 => {
                    record.eligible_leader_replicas = r.nullable_i32s("EligibleLeaderReplicas")?
                }
                7 if version >= 2 => record.last_known_elr = r.nullable_i32s("LastKnownElr")?,
                8 if version >= 1 => record.directories = r.nullable_uuids("Directories")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}
