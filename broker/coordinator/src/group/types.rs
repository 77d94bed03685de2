//! The plain state, requests, responses and effects of [`super::Group`],
//! decoupled from the wire structs so the state machine stays cheap to test.

use bytes::Bytes;

use crate::group_metadata::GroupMetadataValue;

/// Why the group refused a request, one variant per refusal Kafka's
/// classic group coordinator makes (named as Kafka names the error). The
/// broker's API handler chooses the Kafka error code for each; the group
/// knows no codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The group is dead (deleted, or unloaded under the request).
    #[error("the group is dead: its coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("the request's generation is not the group's")]
    IllegalGeneration,
    #[error("the protocol type or names do not match the group's")]
    InconsistentGroupProtocol,
    #[error("the member is not in the group")]
    UnknownMemberId,
    #[error("the session timeout is outside the broker's allowed range")]
    InvalidSessionTimeout,
    #[error("the group is rebalancing: rejoin")]
    RebalanceInProgress,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group still has members")]
    NonEmptyGroup,
    /// A new dynamic member must rejoin with the member id it was given.
    #[error("the member must rejoin with the member id it was given")]
    MemberIdRequired,
    /// Another member now holds this static member's `group.instance.id`.
    #[error("the static member was replaced by a newer one")]
    FencedInstanceId,
}

/// Broker settings that shape a group, parsed from Kafka's keys at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub group_max_session_timeout_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
        }
    }
}

/// A decoded JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinRequest {
    pub api_version: i16,
    /// Empty for a member that has none yet.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// Versions before 1 have none: the caller passes the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// `(protocol name, metadata)` in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// The id to give the member if it needs one, `"{client_id}-{uuid}"`
    /// (`"{group_instance_id}-{uuid}"` for static members) as Kafka; the
    /// caller makes it so the group stays deterministic.
    pub new_member_id: String,
}

/// One member as the leader's JoinGroup response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member for the leader; empty for the others.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub fn error(error: GroupError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Response(JoinResponse),
    /// Hold the request: an [`Effect::JoinResponse`] will answer it.
    Pending,
}

/// A decoded SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// `(member id, assignment)`; only the leader's count.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: GroupError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Response(SyncResponse),
    /// Hold the request: an [`Effect::SyncResponse`] will answer it.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

/// One member of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveOutcome {
    pub error: Option<GroupError>,
    /// One per requested member, in request order.
    pub member_errors: Vec<Option<GroupError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionReason {
    /// No heartbeat, join or sync within `session_timeout_ms`.
    SessionTimeout,
    /// Did not rejoin before the rebalance timeout.
    RebalanceTimeout,
    /// Did not send SyncGroup within the rebalance timeout after the join.
    SyncTimeout,
}

/// What the broker must do after a request or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the held JoinGroup of `member_id`.
    JoinResponse {
        member_id: String,
        response: JoinResponse,
    },
    /// Answer the held SyncGroup of `member_id`.
    SyncResponse {
        member_id: String,
        response: SyncResponse,
    },
    /// Write the group to `__consumer_offsets` (a rebalance completed or
    /// the group emptied), as Kafka's `storeGroup`.
    StoreGroup { value: GroupMetadataValue },
    /// The member was removed without asking (for logs and metrics).
    MemberEvicted {
        member_id: String,
        reason: EvictionReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// The DescribeGroups view of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// As Kafka spells it: "Empty", "PreparingRebalance", ...
    pub state: &'static str,
    pub protocol_type: String,
    /// Empty unless Stable, as Kafka.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// Where the group stands, spelled as Kafka spells it in DescribeGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of the current or the coming generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// `(protocol name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat_ms: i64,
    /// Joined the current round: its JoinGroup is held until the round ends.
    pub awaiting_join: bool,
    /// Its SyncGroup is held until the leader's assignment arrives.
    pub awaiting_sync: bool,
}

impl Member {
    pub(super) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub(super) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Session expiry skips members whose request the broker holds, as
    /// Kafka's `hasSatisfiedHeartbeat`: the rebalance timeout covers them.
    pub(super) fn session_expired(&self, now_ms: i64) -> bool {
        !self.awaiting_join
            && !self.awaiting_sync
            && now_ms >= self.last_heartbeat_ms + i64::from(self.session_timeout_ms)
    }
}
