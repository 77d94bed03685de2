//! A `ConsumerGroup`'s one-time offset reset: every partition of the
//! group's topics moves to the earliest offset, the latest, or the first
//! at or after a datetime, committed for the group through runnel-client's
//! admin API. The broker refuses it while the group has members, as Kafka
//! does; the reconciler records the reset's `id` once it is applied.

use runnel_client::{Admin, ClientError};

use crate::crd::{OffsetReset, OffsetResetTarget};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("offsetReset.datetime {value:?} is not a datetime such as 2026-01-01T00:00:00Z")]
    BadDatetime { value: String },
    #[error("offsetReset.to is datetime but offsetReset.datetime is missing")]
    MissingDatetime,
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Resets `group`'s offsets on `topics`; returns the committed
/// `(topic, partition, offset)`.
pub async fn apply_offset_reset(
    admin: &Admin,
    group: &str,
    topics: &[String],
    reset: &OffsetReset,
) -> Result<Vec<(String, i32, i64)>, ResetError> {
    let timestamp = match reset.to {
        OffsetResetTarget::Earliest => -2,
        OffsetResetTarget::Latest => -1,
        OffsetResetTarget::Datetime => {
            let text = reset
                .datetime
                .as_deref()
                .ok_or(ResetError::MissingDatetime)?;
            runnel_client::datetime::parse_datetime(text).ok_or_else(|| {
                ResetError::BadDatetime {
                    value: text.to_string(),
                }
            })?
        }
    };
    let listed = admin.list_topics().await?;
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .filter_map(|t| listed.iter().find(|d| &d.name == t))
        .flat_map(|d| d.partitions.iter().map(|(p, _)| (d.name.clone(), *p)))
        .collect();
    let found = admin.offsets_at(&partitions, timestamp).await?;
    // No record at or after the time: the end, as Kafka's tool does.
    let ends = if found.iter().any(|o| *o < 0) {
        admin.end_offsets(&partitions).await?
    } else {
        Vec::new()
    };
    let offsets: Vec<(String, i32, i64)> = partitions
        .into_iter()
        .enumerate()
        .map(|(i, (topic, partition))| {
            let offset = if found[i] >= 0 { found[i] } else { ends[i] };
            (topic, partition, offset)
        })
        .collect();
    admin.commit_group_offsets(group, &offsets).await?;
    Ok(offsets)
}
