//! The APIs and versions this broker serves, and the ApiVersions response
//! built from them. Adding an API is one line in [`SUPPORTED`].
//!
//! ApiVersions is the one request a client sends before it knows what the
//! broker speaks. A request version above the broker's range is answered,
//! as Kafka does, with UNSUPPORTED_VERSION encoded as ApiVersions v0 and the
//! full list, so the client retries with a version from it.

use kafka_protocol::error::ResponseError as KafkaError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// `(api, min_version, max_version)` served by this broker, by api key.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 13),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

/// The lowest Produce version ApiVersions advertises, below the lowest one
/// served (v3, the first with RecordBatch v2). librdkafka before 2.10 sends
/// gzip, snappy and lz4 batches uncompressed to a broker whose advertised
/// Produce range does not start at v0 (librdkafka#4956), so Kafka 4
/// advertises v0 and refuses v0-v2 requests all the same (KAFKA-18659).
pub const PRODUCE_ADVERTISED_MIN_VERSION: i16 = 0;

/// `(api, min_version, max_version)` as ApiVersions advertises them: what
/// [`SUPPORTED`] serves, with Produce from
/// [`PRODUCE_ADVERTISED_MIN_VERSION`].
pub fn advertised() -> impl Iterator<Item = (ApiKey, i16, i16)> {
    SUPPORTED.iter().map(|&(key, min, max)| match key {
        ApiKey::Produce => (key, PRODUCE_ADVERTISED_MIN_VERSION, max),
        _ => (key, min, max),
    })
}

/// The `(min, max)` versions served for `api_key`, if it is served at all.
pub fn range(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

pub fn supports(api_key: ApiKey, version: i16) -> bool {
    range(api_key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// The ApiVersions response to a request of `request_version`, and the
/// version to encode it with.
pub fn api_versions_response(request_version: i16) -> (i16, ApiVersionsResponse) {
    let api_keys = advertised()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    // Features, their epoch and zk_migration_ready stay at their defaults:
    // defaults are not encoded, and librdkafka 2.0 fails to parse the
    // tagged fields that carry them.
    let response = ApiVersionsResponse::default()
        .with_api_keys(api_keys)
        .with_throttle_time_ms(0);
    if supports(ApiKey::ApiVersions, request_version) {
        (request_version, response.with_error_code(0))
    } else {
        let error_code = KafkaError::UnsupportedVersion.code();
        (0, response.with_error_code(error_code))
    }
}

/// A short name for an API, for logs and metric labels. APIs this broker
/// does not serve that clients commonly send are named too; the rest are
/// `"other"`, which keeps label values bounded.
pub fn name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::DescribeTransactions => "DescribeTransactions",
        ApiKey::ListTransactions => "ListTransactions",
        ApiKey::WriteTxnMarkers => "WriteTxnMarkers",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        ApiKey::GetTelemetrySubscriptions => "GetTelemetrySubscriptions",
        ApiKey::PushTelemetry => "PushTelemetry",
        ApiKey::DescribeTopicPartitions => "DescribeTopicPartitions",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::response;

    #[test]
    fn table_is_sorted_unique_and_encodable_by_kafka_protocol() {
        for pair in SUPPORTED.windows(2) {
            assert!((pair[0].0 as i16) < (pair[1].0 as i16), "{pair:?}");
        }
        for &(key, min, max) in SUPPORTED {
            let valid = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(
                valid.min <= min && max <= valid.max,
                "{key:?} {min}..={max}"
            );
            assert_ne!(name(key), "other", "{key:?}");
        }
    }

    #[test]
    fn supports_checks_both_ends() {
        assert!(supports(ApiKey::Fetch, 4));
        assert!(supports(ApiKey::Fetch, 13));
        assert!(!supports(ApiKey::Fetch, 3));
        assert!(!supports(ApiKey::Fetch, 14));
        assert!(supports(ApiKey::InitProducerId, 4));
        assert!(!supports(ApiKey::InitProducerId, 5));
        assert!(supports(ApiKey::AddPartitionsToTxn, 4));
        assert!(!supports(ApiKey::AddPartitionsToTxn, 5));
        assert_eq!(range(ApiKey::Metadata), Some((0, 12)));
    }

    #[test]
    fn produce_is_advertised_from_v0_but_served_from_v3() {
        let produce = advertised().find(|(key, _, _)| *key == ApiKey::Produce);
        assert_eq!(produce, Some((ApiKey::Produce, 0, 9)));
        assert!(!supports(ApiKey::Produce, 2));
        assert!(supports(ApiKey::Produce, 3));
        let others = advertised().filter(|(key, _, _)| *key != ApiKey::Produce);
        assert!(
            others.eq(SUPPORTED
                .iter()
                .copied()
                .filter(|(k, _, _)| *k != ApiKey::Produce))
        );
    }

    #[test]
    fn supported_request_versions_are_answered_in_kind() {
        for version in 0..=3 {
            let (encode_with, response) = api_versions_response(version);
            assert_eq!(encode_with, version);
            assert_eq!(response.error_code, 0);
            assert_eq!(response.api_keys.len(), SUPPORTED.len());
        }
    }

    #[test]
    fn newer_request_versions_get_unsupported_version_in_v0() {
        for version in [4, 5, i16::MAX, -1] {
            let (encode_with, response) = api_versions_response(version);
            assert_eq!(encode_with, 0);
            assert_eq!(response.error_code, 35);
            assert_eq!(response.api_keys.len(), SUPPORTED.len());
        }
    }

    #[test]
    fn v3_response_carries_no_tagged_fields() {
        let (version, body) = api_versions_response(3);
        assert_eq!(body.finalized_features_epoch, -1);
        assert!(body.supported_features.is_empty());
        assert!(body.finalized_features.is_empty());
        assert!(!body.zk_migration_ready);
        let frame = response::encode(ApiKey::ApiVersions, version, 9, &body).expect("encode");
        // size, correlation id (header v0 even for v3), error code,
        // compact array (n + 1), n entries of key/min/max + 0 tags,
        // throttle_time_ms, tag count.
        let n = SUPPORTED.len();
        assert_eq!(frame.len(), 4 + 4 + 2 + 1 + n * 7 + 4 + 1);
        assert_eq!(&frame[4..11], &[0, 0, 0, 9, 0, 0, n as u8 + 1]);
        assert_eq!(&frame[frame.len() - 5..], &[0, 0, 0, 0, 0]);
        for (i, (key, min, max)) in advertised().enumerate() {
            let at = 11 + i * 7;
            let mut entry = Vec::new();
            entry.extend_from_slice(&(key as i16).to_be_bytes());
            entry.extend_from_slice(&min.to_be_bytes());
            entry.extend_from_slice(&max.to_be_bytes());
            entry.push(0);
            assert_eq!(&frame[at..at + 7], &entry[..], "{key:?}");
        }
        assert_eq!(body.compute_size(3).expect("size"), frame.len() - 8);
    }

    #[test]
    fn unsupported_version_response_golden_bytes() {
        let (version, body) = api_versions_response(4);
        let frame =
            response::encode(ApiKey::ApiVersions, version, 0x0A0B_0C0D, &body).expect("encode");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 226,         // size
            0x0A, 0x0B, 0x0C, 0x0D, // correlation id
            0, 35,                // UNSUPPORTED_VERSION
            0, 0, 0, 36,          // api_keys: 36 entries of key, min, max
            0, 0,  0, 0,  0, 9,   // Produce (served from v3)
            0, 1,  0, 4,  0, 13,  // Fetch
            0, 2,  0, 1,  0, 7,   // ListOffsets
            0, 3,  0, 0,  0, 12,  // Metadata
            0, 8,  0, 2,  0, 9,   // OffsetCommit
            0, 9,  0, 1,  0, 9,   // OffsetFetch
            0, 10, 0, 0,  0, 4,   // FindCoordinator
            0, 11, 0, 0,  0, 9,   // JoinGroup
            0, 12, 0, 0,  0, 4,   // Heartbeat
            0, 13, 0, 0,  0, 5,   // LeaveGroup
            0, 14, 0, 0,  0, 5,   // SyncGroup
            0, 15, 0, 0,  0, 5,   // DescribeGroups
            0, 16, 0, 0,  0, 4,   // ListGroups
            0, 18, 0, 0,  0, 3,   // ApiVersions
            0, 19, 0, 2,  0, 7,   // CreateTopics
            0, 20, 0, 1,  0, 6,   // DeleteTopics
            0, 22, 0, 0,  0, 4,   // InitProducerId
            0, 23, 0, 2,  0, 4,   // OffsetForLeaderEpoch
            0, 24, 0, 0,  0, 4,   // AddPartitionsToTxn
            0, 25, 0, 0,  0, 3,   // AddOffsetsToTxn
            0, 26, 0, 0,  0, 3,   // EndTxn
            0, 27, 0, 1,  0, 1,   // WriteTxnMarkers
            0, 28, 0, 0,  0, 3,   // TxnOffsetCommit
            0, 32, 0, 1,  0, 4,   // DescribeConfigs
            0, 33, 0, 0,  0, 2,   // AlterConfigs
            0, 37, 0, 0,  0, 3,   // CreatePartitions
            0, 42, 0, 0,  0, 2,   // DeleteGroups
            0, 43, 0, 0,  0, 2,   // ElectLeaders
            0, 44, 0, 0,  0, 1,   // IncrementalAlterConfigs
            0, 45, 0, 0,  0, 0,   // AlterPartitionReassignments
            0, 46, 0, 0,  0, 0,   // ListPartitionReassignments
            0, 47, 0, 0,  0, 0,   // OffsetDelete
            0, 55, 0, 0,  0, 2,   // DescribeQuorum
            0, 60, 0, 0,  0, 1,   // DescribeCluster
            0, 65, 0, 0,  0, 0,   // DescribeTransactions
            0, 66, 0, 0,  0, 1,   // ListTransactions
        ];
        assert_eq!(&frame[..], expected);
    }
}
