//! PartitionRecord (api key 3, versions 0-2): a partition is created, or
//! its whole state restated (snapshots).
//!
//! | field                  | type                 | versions    |
//! |------------------------|----------------------|-------------|
//! | PartitionId            | int32                | 0+          |
//! | TopicId                | uuid                 | 0+          |
//! | Replicas               | []int32              | 0+          |
//! | Isr                    | []int32              | 0+          |
//! | RemovingReplicas       | []int32              | 0+          |
//! | AddingReplicas         | []int32              | 0+          |
//! | Leader                 | int32                | 0+          |
//! | LeaderEpoch            | int32                | 0+          |
//! | PartitionEpoch         | int32                | 0+          |
//! | Directories            | []uuid               | 1+          |
//! | LeaderRecoveryState    | int8, tag 0 (default 0)     | 0+ tagged |
//! | EligibleLeaderReplicas | nullable []int32, tag 1     | 2+ tagged |
//! | LastKnownElr           | nullable []int32, tag 2     | 2+ tagged |
//!
//! A tagged field is written only when it differs from its default.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::Body;
use crate::wire::{
    DecodeError, EncodeError, Reader, TaggedFields, check_field, put_i32s, put_nullable_i32s,
    put_uuid, put_uuids,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub version: i16,
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub directories: Vec<Uuid>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

impl PartitionRecord {
    pub const LATEST: i16 = 2;
}

impl Default for PartitionRecord {
    fn default() -> Self {
        Self {
            version: Self::LATEST,
            partition_id: -1,
            topic_id: Uuid::nil(),
            replicas: Vec::new(),
            isr: Vec::new(),
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader: -1,
            leader_recovery_state: 0,
            leader_epoch: -1,
            partition_epoch: -1,
            directories: Vec::new(),
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }
}

impl Body for PartitionRecord {
    const NAME: &'static str = "PartitionRecord";
    const API_KEY: u16 = 3;
    const MAX_VERSION: i16 = Self::LATEST;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v = self.version;
        out.put_i32(self.partition_id);
        put_uuid(out, &self.topic_id);
        put_i32s(out, &self.replicas);
        put_i32s(out, &self.isr);
        put_i32s(out, &self.removing_replicas);
        put_i32s(out, &self.adding_replicas);
        out.put_i32(self.leader);
        out.put_i32(self.leader_epoch);
        out.put_i32(self.partition_epoch);
        if v >= 1 {
            put_uuids(out, &self.directories);
        } else {
            check_field(self.directories.is_empty(), Self::NAME, "Directories", v)?;
        }
        let mut tagged = TaggedFields::default();
        if self.leader_recovery_state != 0 {
            tagged.field(0, |out| out.put_i8(self.leader_recovery_state));
        }
        if v >= 2 {
            if let Some(elr) = &self.eligible_leader_replicas {
                tagged.field(1, |out| put_nullable_i32s(out, Some(elr)));
            }
            if let Some(last_known) = &self.last_known_elr {
                tagged.field(2, |out| put_nullable_i32s(out, Some(last_known)));
            }
        } else {
            let name = "EligibleLeaderReplicas";
            check_field(self.eligible_leader_replicas.is_none(), Self::NAME, name, v)?;
            check_field(self.last_known_elr.is_none(), Self::NAME, "LastKnownElr", v)?;
        }
        tagged.write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let partition_id = r.i32("PartitionId")?;
        let topic_id = r.uuid("TopicId")?;
        let replicas = r.i32s("Replicas")?;
        let isr = r.i32s("Isr")?;
        let removing_replicas = r.i32s("RemovingReplicas")?;
        let adding_replicas = r.i32s("AddingReplicas")?;
        let leader = r.i32("Leader")?;
        let leader_epoch = r.i32("LeaderEpoch")?;
        let partition_epoch = r.i32("PartitionEpoch")?;
        let directories = if version >= 1 {
            r.uuids("Directories")?
        } else {
            Vec::new()
        };
        let mut leader_recovery_state = 0;
        let mut eligible_leader_replicas = None;
        let mut last_known_elr = None;
        r.tagged_fields(Self::NAME, |tag, r| {
            match tag {
                0 => leader_recovery_state = r.i8("LeaderRecoveryState")?,
                1 if version >= 2 => eligible_leader_replicas = r.nullable_i32s("Elr")?,
                2 if version >= 2 => last_known_elr = r.nullable_i32s("LastKnownElr")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Self {
            version,
            partition_id,
            topic_id,
            replicas,
            isr,
            removing_replicas,
            adding_replicas,
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch,
            directories,
            eligible_leader_replicas,
            last_known_elr,
        })
    }
}
