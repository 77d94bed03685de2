//! Golden bytes: every record type at every version Kafka 4.1 defines,
//! encoded by Kafka itself. The hex below is the output of
//! `broker/metadata/golden/Golden.java` (run as its header says, with Kafka
//! 4.1.1's jars), which builds the same values as [`value`] with Kafka's
//! generated `*Record` classes and frames them with `MetadataRecordSerde`.
//! Each test checks encode == golden and decode(golden) == value.

use uuid::Uuid;

use super::*;

const GOLDEN: &[(&str, &str)] = &[
    (
        "register_broker_v0",
        "010000000000010102030405060708090a0b0c0d0e0f10000000000000002a030a504c41494e544558540a6c6f63616c686f737423840000000453534c036832238500010002116d657461646174612e76657273696f6e0007001b000372310000",
    ),
    (
        "register_broker_v1",
        "010001000000010102030405060708090a0b0c0d0e0f10000000000000002a030a504c41494e544558540a6c6f63616c686f737423840000000453534c036832238500010002116d657461646174612e76657273696f6e0007001b00037231000100",
    ),
    (
        "register_broker_v2",
        "01000200000001010102030405060708090a0b0c0d0e0f10000000000000002a030a504c41494e544558540a6c6f63616c686f737423840000000453534c036832238500010002116d657461646174612e76657273696f6e0007001b00037231000100",
    ),
    (
        "register_broker_v3",
        "01000300000001010102030405060708090a0b0c0d0e0f10000000000000002a030a504c41494e544558540a6c6f63616c686f737423840000000453534c036832238500010002116d657461646174612e76657273696f6e0007001b000372310001010021031111111111111111222222222222222233333333333333334444444444444444",
    ),
    ("unregister_broker_v0", "01010000000003000000000000004d00"),
    (
        "topic_v0",
        "010200076f72646572730102030405060708090a0b0c0d0e0f1000",
    ),
    (
        "partition_v0",
        "010300000000040102030405060708090a0b0c0d0e0f100400000001000000020000000303000000010000000202000000030100000001000000050000000901000101",
    ),
    (
        "partition_v1",
        "010301000000040102030405060708090a0b0c0d0e0f10040000000100000002000000030300000001000000020200000003010000000100000005000000090411111111111111112222222222222222333333333333333344444444444444441111111111111111222222222222222201000101",
    ),
    (
        "partition_v2",
        "010302000000040102030405060708090a0b0c0d0e0f1004000000010000000200000003030000000100000002020000000301000000010000000500000009041111111111111111222222222222222233333333333333334444444444444444111111111111111122222222222222220300010101050200000002020101",
    ),
    (
        "config_v0",
        "01040002076f72646572730d726574656e74696f6e2e6d73053130303000",
    ),
    (
        "config_removed_v0",
        "0104000401116c6f672e726574656e74696f6e2e6d730000",
    ),
    (
        "partition_change_v0",
        "010500000000040102030405060708090a0b0c0d0e0f1005000502000000010104000000020209030000000100000002030101050100",
    ),
    (
        "partition_change_v1",
        "010501000000040102030405060708090a0b0c0d0e0f10060005020000000101040000000202090300000001000000020301010501000821031111111111111111222222222222222233333333333333334444444444444444",
    ),
    (
        "partition_change_v2",
        "010502000000040102030405060708090a0b0c0d0e0f100800050200000001010400000002020903000000010000000203010105010006050200000001070502000000030821031111111111111111222222222222222233333333333333334444444444444444",
    ),
    (
        "partition_change_empty_v0",
        "010500000000000102030405060708090a0b0c0d0e0f1000",
    ),
    ("fence_broker_v0", "01070000000002000000000000000a00"),
    ("unfence_broker_v0", "01080000000002000000000000000b00"),
    (
        "remove_topic_v0",
        "0109000102030405060708090a0b0c0d0e0f1000",
    ),
    (
        "feature_level_v0",
        "010c00116d657461646174612e76657273696f6e001b00",
    ),
    (
        "producer_ids_v0",
        "010f0000000001000000000000002a0000000000000bb800",
    ),
    (
        "broker_registration_change_v0",
        "01110000000001000000000000002a010001ff",
    ),
    (
        "broker_registration_change_v1",
        "01110100000001000000000000002a020001ff010101",
    ),
    (
        "broker_registration_change_v2",
        "01110200000001000000000000002a030001ff01010102110211111111111111112222222222222222",
    ),
    ("no_op_v0", "01140000"),
];

const U1: Uuid = Uuid::from_u64_pair(0x0102030405060708, 0x090a0b0c0d0e0f10);
const U2: Uuid = Uuid::from_u64_pair(0x1111111111111111, 0x2222222222222222);
const U3: Uuid = Uuid::from_u64_pair(0x3333333333333333, 0x4444444444444444);

fn register_broker(version: i16) -> MetadataRecord {
    RegisterBrokerRecord {
        version,
        broker_id: 1,
        is_migrating_zk_broker: version >= 2,
        incarnation_id: U1,
        broker_epoch: 42,
        end_points: vec![
            BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: 0,
            },
            BrokerEndpoint {
                name: "SSL".into(),
                host: "h2".into(),
                port: 9093,
                security_protocol: 1,
            },
        ],
        features: vec![BrokerFeature {
            name: "metadata.version".into(),
            min_supported_version: 7,
            max_supported_version: 27,
        }],
        rack: Some("r1".into()),
        fenced: false,
        in_controlled_shutdown: version >= 1,
        log_dirs: if version >= 3 { vec![U2, U3] } else { vec![] },
    }
    .into()
}

fn partition(version: i16) -> MetadataRecord {
    PartitionRecord {
        version,
        partition_id: 4,
        topic_id: U1,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2],
        removing_replicas: vec![3],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 1,
        leader_epoch: 5,
        partition_epoch: 9,
        directories: if version >= 1 {
            vec![U2, U3, U2]
        } else {
            vec![]
        },
        eligible_leader_replicas: (version >= 2).then(|| vec![2]),
        last_known_elr: (version >= 2).then(Vec::new),
    }
    .into()
}

fn partition_change(version: i16) -> MetadataRecord {
    PartitionChangeRecord {
        version,
        partition_id: 4,
        topic_id: U1,
        isr: Some(vec![1]),
        leader: 2,
        replicas: Some(vec![1, 2]),
        removing_replicas: Some(vec![]),
        adding_replicas: None,
        leader_recovery_state: 0,
        directories: (version >= 1).then(|| vec![U2, U3]),
        eligible_leader_replicas: (version >= 2).then(|| vec![1]),
        last_known_elr: (version >= 2).then(|| vec![3]),
    }
    .into()
}

fn broker_registration_change(version: i16) -> MetadataRecord {
    BrokerRegistrationChangeRecord {
        version,
        broker_id: 1,
        broker_epoch: 42,
        fenced: -1,
        in_controlled_shutdown: i8::from(version >= 1),
        log_dirs: if version >= 2 { vec![U2] } else { vec![] },
    }
    .into()
}

/// The value Golden.java builds for `name` (`<type>_v<version>`).
fn value(name: &str) -> MetadataRecord {
    let (kind, version) = name.rsplit_once("_v").expect("a versioned name");
    let version: i16 = version.parse().expect("a version");
    match kind {
        "register_broker" => register_broker(version),
        "unregister_broker" => UnregisterBrokerRecord {
            version,
            broker_id: 3,
            broker_epoch: 77,
        }
        .into(),
        "topic" => TopicRecord {
            version,
            name: "orders".into(),
            topic_id: U1,
        }
        .into(),
        "partition" => partition(version),
        "config" => ConfigRecord {
            version,
            resource_type: TOPIC_RESOURCE,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        }
        .into(),
        "config_removed" => ConfigRecord {
            version,
            resource_type: BROKER_RESOURCE,
            resource_name: String::new(),
            name: "log.retention.ms".into(),
            value: None,
        }
        .into(),
        "partition_change" => partition_change(version),
        "partition_change_empty" => PartitionChangeRecord {
            version,
            partition_id: 0,
            topic_id: U1,
            ..PartitionChangeRecord::default()
        }
        .into(),
        "fence_broker" => FenceBrokerRecord {
            version,
            id: 2,
            epoch: 10,
        }
        .into(),
        "unfence_broker" => UnfenceBrokerRecord {
            version,
            id: 2,
            epoch: 11,
        }
        .into(),
        "remove_topic" => RemoveTopicRecord {
            version,
            topic_id: U1,
        }
        .into(),
        "feature_level" => FeatureLevelRecord {
            version,
            name: "metadata.version".into(),
            feature_level: 27,
        }
        .into(),
        "producer_ids" => ProducerIdsRecord {
            version,
            broker_id: 1,
            broker_epoch: 42,
            next_producer_id: 3000,
        }
        .into(),
        "broker_registration_change" => broker_registration_change(version),
        "no_op" => NoOpRecord { version }.into(),
        other => panic!("no value for {other}"),
    }
}

pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every golden record, decoded: samples for the other modules' tests.
pub(crate) fn samples() -> Vec<(&'static str, Vec<u8>, MetadataRecord)> {
    GOLDEN
        .iter()
        .map(|(name, golden)| (*name, hex(golden), value(name)))
        .collect()
}

#[test]
fn encode_gives_kafkas_bytes_and_decode_gives_the_value() {
    for (name, golden, value) in samples() {
        let mut out = BytesMut::new();
        value.encode(&mut out).expect(name);
        assert_eq!(hex_of(&out), hex_of(&golden), "encode {name}");
        assert_eq!(
            MetadataRecord::decode(&golden).expect(name),
            value,
            "decode {name}"
        );
    }
}

#[test]
fn every_type_and_version_has_golden_bytes() {
    let mut seen = std::collections::BTreeSet::new();
    for (_, _, value) in samples() {
        seen.insert((value.api_key(), value.version()));
    }
    let expected = [
        (0, 3),
        (1, 0),
        (2, 0),
        (3, 2),
        (4, 0),
        (5, 2),
        (7, 0),
        (8, 0),
        (9, 0),
        (12, 0),
        (15, 0),
        (17, 2),
        (20, 0),
    ];
    for (api_key, max_version) in expected {
        for version in 0..=max_version {
            assert!(seen.contains(&(api_key, version)), "{api_key} v{version}");
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
