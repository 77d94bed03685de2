//! Kafka's `quorum-state` file: the election state a KRaft node persists
//! before it acts on it (its epoch, the leader it knows, the vote it cast),
//! at `<metadata.log.dir>/__cluster_metadata-0/quorum-state`.
//!
//! The file is one line of JSON, Kafka's `QuorumStateData` (as its generated
//! JSON converter writes it) plus a `data_version` field, as Kafka 4.1's
//! `FileQuorumStateStore` writes it:
//!
//! | field              | JSON type        | data_version | meaning                                  |
//! |--------------------|------------------|--------------|------------------------------------------|
//! | `clusterId`        | string           | 0            | always `""` (Kafka never filled it)      |
//! | `leaderId`         | int32            | 0, 1         | the leader, `-1` if none known           |
//! | `leaderEpoch`      | int32            | 0, 1         | the epoch                                |
//! | `votedId`          | int32            | 0, 1         | the vote cast in the epoch, `-1` if none |
//! | `votedDirectoryId` | base64url uuid   | 1            | the voted-for's directory (KIP-853)      |
//! | `appliedOffset`    | int64            | 0            | always `0`                               |
//! | `currentVoters`    | `[{"voterId"}]`, nullable | 0   | the static voter set                     |
//! | `data_version`     | int16            | 0, 1         | 0 for `kraft.version` 0, 1 for 1         |
//!
//! Every field of a version is mandatory when read, as in Kafka's
//! converter; unknown fields are ignored. Kafka writes version 0 while the
//! quorum's voters are static (`controller.quorum.voters`, `kraft.version`
//! 0), which is what `runnel-raft` runs, so [`QuorumStateFile::v0`] is the
//! one the broker writes; both versions are read.
//!
//! Reading a missing file gives the fresh state (epoch 0, no leader, no
//! vote); a file that can't be read or parsed is an error naming the path
//! and the problem. Writing is atomic as Kafka's: `quorum-state.tmp` is
//! written and fsynced, renamed over the file, and the directory fsynced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use runnel_raft::{NodeId, QuorumStateData};
use serde_json::Value;
use uuid::Uuid;

/// The file's name in the metadata partition's directory.
pub const FILE_NAME: &str = "quorum-state";
/// The directory of `__cluster_metadata-0` in the metadata log dir.
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";
/// The highest `data_version` Kafka 4.1 reads and writes.
pub const HIGHEST_DATA_VERSION: i64 = 1;

/// `<metadata_log_dir>/__cluster_metadata-0/quorum-state`.
pub fn path_in(metadata_log_dir: &Path) -> PathBuf {
    metadata_log_dir
        .join(METADATA_PARTITION_DIR)
        .join(FILE_NAME)
}

/// What is wrong with a file's contents.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the file is empty")]
    Empty,
    #[error("the first line is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("the JSON is not an object")]
    NotAnObject,
    #[error("no data_version field")]
    MissingDataVersion,
    #[error("data_version {found} is not one of 0..={HIGHEST_DATA_VERSION}")]
    UnsupportedDataVersion { found: String },
    #[error("field {field} is mandatory in data_version {data_version}")]
    MissingField {
        field: &'static str,
        data_version: i64,
    },
    #[error("field {field} is {found}, expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("field {field} holds {value}, which is not a valid {what}")]
    InvalidValue {
        field: &'static str,
        value: String,
        what: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumStateFileError {
    #[error("reading the quorum state file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the quorum state file {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("writing the temporary quorum state file {path}")]
    WriteTemp {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("renaming {from} over the quorum state file")]
    Rename {
        from: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("syncing the directory {path} after replacing the quorum state file")]
    SyncDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The fields only one `data_version` has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFields {
    V0 {
        cluster_id: String,
        applied_offset: i64,
        /// `null` in the file is `None`.
        current_voters: Option<Vec<NodeId>>,
    },
    V1 {
        /// The nil uuid when the vote names no directory.
        voted_directory_id: Uuid,
    },
}

/// The file's contents, field for field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStateFile {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub voted_id: i32,
    pub version: VersionFields,
}

impl QuorumStateFile {
    /// What Kafka writes with static voters (`kraft.version` 0).
    pub fn v0(state: QuorumStateData, voters: impl IntoIterator<Item = NodeId>) -> Self {
        QuorumStateFile {
            version: VersionFields::V0 {
                cluster_id: String::new(),
                applied_offset: 0,
                current_voters: Some(voters.into_iter().collect()),
            },
            ..Self::common(state)
        }
    }

    /// What Kafka writes with `kraft.version` 1 (KIP-853). `runnel-raft`
    /// knows no directory ids, so the vote names none.
    pub fn v1(state: QuorumStateData) -> Self {
        QuorumStateFile {
            version: VersionFields::V1 {
                voted_directory_id: Uuid::nil(),
            },
            ..Self::common(state)
        }
    }

    fn common(state: QuorumStateData) -> Self {
        QuorumStateFile {
            leader_id: state.leader_id.unwrap_or(-1),
            // An epoch past i32::MAX can't be written in Kafka's format; the
            // core never gets there (it stops at the last epoch a peer can
            // name, and peers name i32 epochs).
            leader_epoch: i32::try_from(state.leader_epoch).unwrap_or(i32::MAX),
            voted_id: state.voted_id.unwrap_or(-1),
            version: VersionFields::V1 {
                voted_directory_id: Uuid::nil(),
            },
        }
    }

    pub fn data_version(&self) -> i64 {
        match self.version {
            VersionFields::V0 { .. } => 0,
            VersionFields::V1 { .. } => 1,
        }
    }

    /// The election state as `runnel-raft` keeps it.
    pub fn to_raft(&self) -> Result<QuorumStateData, ParseError> {
        let leader_epoch =
            u32::try_from(self.leader_epoch).map_err(|_| ParseError::InvalidValue {
                field: "leaderEpoch",
                value: self.leader_epoch.to_string(),
                what: "epoch",
            })?;
        Ok(QuorumStateData {
            leader_epoch,
            leader_id: optional_id("leaderId", self.leader_id)?,
            voted_id: optional_id("votedId", self.voted_id)?,
        })
    }

    /// Parses the file's contents (Kafka reads the first line only).
    pub fn parse(contents: &str) -> Result<Self, ParseError> {
        let line = contents.lines().next().ok_or(ParseError::Empty)?;
        let value: Value = serde_json::from_str(line).map_err(ParseError::NotJson)?;
        let object = value.as_object().ok_or(ParseError::NotAnObject)?;
        let data_version = object
            .get("data_version")
            .ok_or(ParseError::MissingDataVersion)?;
        let data_version = match data_version.as_i64() {
            Some(v @ 0..=HIGHEST_DATA_VERSION) => v,
            _ => {
                return Err(ParseError::UnsupportedDataVersion {
                    found: data_version.to_string(),
                });
            }
        };
        let fields = Fields {
            object,
            data_version,
        };
        let version = if data_version == 0 {
            VersionFields::V0 {
                cluster_id: fields.string("clusterId")?,
                applied_offset: fields.int64("appliedOffset")?,
                current_voters: fields.voters("currentVoters")?,
            }
        } else {
            VersionFields::V1 {
                voted_directory_id: fields.uuid("votedDirectoryId")?,
            }
        };
        Ok(QuorumStateFile {
            leader_id: fields.int32("leaderId")?,
            leader_epoch: fields.int32("leaderEpoch")?,
            voted_id: fields.int32("votedId")?,
            version,
        })
    }

    /// The file's contents, in Kafka's field order, without a newline.
    pub fn to_json(&self) -> String {
        let (leader_id, leader_epoch, voted_id) =
            (self.leader_id, self.leader_epoch, self.voted_id);
        match &self.version {
            VersionFields::V0 {
                cluster_id,
                applied_offset,
                current_voters,
            } => {
                let voters = match current_voters {
                    None => "null".to_owned(),
                    Some(voters) => {
                        let items: Vec<String> = voters
                            .iter()
                            .map(|id| format!("{{\"voterId\":{id}}}"))
                            .collect();
                        format!("[{}]", items.join(","))
                    }
                };
                format!(
                    "{{\"clusterId\":{},\"leaderId\":{leader_id},\"leaderEpoch\":{leader_epoch},\"votedId\":{voted_id},\"appliedOffset\":{applied_offset},\"currentVoters\":{voters},\"data_version\":0}}",
                    Value::String(cluster_id.clone())
                )
            }
            VersionFields::V1 { voted_directory_id } => format!(
                "{{\"leaderId\":{leader_id},\"leaderEpoch\":{leader_epoch},\"votedId\":{voted_id},\"votedDirectoryId\":\"{}\",\"data_version\":1}}",
                uuid_to_base64(voted_directory_id)
            ),
        }
    }
}

/// Reads the file at `path`; `None` if there is none.
pub fn read(path: &Path) -> Result<Option<QuorumStateFile>, QuorumStateFileError> {
    let contents = match fs::read_to_string(path) {
        Ok(contents) => contents,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(QuorumStateFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    QuorumStateFile::parse(&contents)
        .map(Some)
        .map_err(|source| QuorumStateFileError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

/// The election state in the file at `path`: the fresh state if there is
/// no file.
pub fn read_state(path: &Path) -> Result<QuorumStateData, QuorumStateFileError> {
    let Some(file) = read(path)? else {
        return Ok(QuorumStateData::default());
    };
    file.to_raft()
        .map_err(|source| QuorumStateFileError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

/// Replaces the file at `path` atomically and durably.
pub fn write(path: &Path, file: &QuorumStateFile) -> Result<(), QuorumStateFileError> {
    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(".tmp");
    let temp = PathBuf::from(temp_name);
    let write_temp = || -> std::io::Result<()> {
        let mut out = File::create(&temp)?;
        out.write_all(file.to_json().as_bytes())?;
        out.sync_all()
    };
    write_temp().map_err(|source| QuorumStateFileError::WriteTemp {
        path: temp.clone(),
        source,
    })?;
    fs::rename(&temp, path).map_err(|source| QuorumStateFileError::Rename {
        from: temp.clone(),
        source,
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| QuorumStateFileError::SyncDir {
            path: dir.to_owned(),
            source,
        })
}

fn optional_id(field: &'static str, id: i32) -> Result<Option<NodeId>, ParseError> {
    match id {
        -1 => Ok(None),
        id if id >= 0 => Ok(Some(id)),
        id => Err(ParseError::InvalidValue {
            field,
            value: id.to_string(),
            what: "node id (or -1)",
        }),
    }
}

/// The fields of one parsed object, read as Kafka's converter reads them.
struct Fields<'a> {
    object: &'a serde_json::Map<String, Value>,
    data_version: i64,
}

impl Fields<'_> {
    fn get(&self, field: &'static str) -> Result<&Value, ParseError> {
        self.object.get(field).ok_or(ParseError::MissingField {
            field,
            data_version: self.data_version,
        })
    }

    fn int32(&self, field: &'static str) -> Result<i32, ParseError> {
        let value = self.get(field)?;
        value
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| wrong_type(field, "an int32", value))
    }

    fn int64(&self, field: &'static str) -> Result<i64, ParseError> {
        let value = self.get(field)?;
        value
            .as_i64()
            .ok_or_else(|| wrong_type(field, "an int64", value))
    }

    fn string(&self, field: &'static str) -> Result<String, ParseError> {
        let value = self.get(field)?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong_type(field, "a string", value))
    }

    fn uuid(&self, field: &'static str) -> Result<Uuid, ParseError> {
        let value = self.get(field)?;
        let text = value
            .as_str()
            .ok_or_else(|| wrong_type(field, "a string", value))?;
        uuid_from_base64(text).ok_or_else(|| ParseError::InvalidValue {
            field,
            value: text.to_owned(),
            what: "base64url uuid",
        })
    }

    fn voters(&self, field: &'static str) -> Result<Option<Vec<NodeId>>, ParseError> {
        let value = self.get(field)?;
        if value.is_null() {
            return Ok(None);
        }
        let items = value
            .as_array()
            .ok_or_else(|| wrong_type(field, "an array or null", value))?;
        items
            .iter()
            .map(|item| {
                item.get("voterId")
                    .and_then(Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| wrong_type(field, "[{\"voterId\": int32}]", item))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ParseError {
    ParseError::WrongType {
        field,
        expected,
        found: found.to_string(),
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's `Uuid.toString`: URL-safe base64 of the 16 bytes, no padding.
pub fn uuid_to_base64(uuid: &Uuid) -> String {
    let bytes = uuid.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut word = [0u8; 3];
        word[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(word[0]) << 16) | (u32::from(word[1]) << 8) | u32::from(word[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(BASE64URL[index as usize]));
        }
    }
    out
}

/// Kafka's `Uuid.fromString`: 22 characters of URL-safe base64 (padding
/// allowed).
pub fn uuid_from_base64(text: &str) -> Option<Uuid> {
    let text = text.trim_end_matches('=');
    if text.len() != 22 {
        return None;
    }
    let mut bytes = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut at = 0;
    for c in text.bytes() {
        let digit = BASE64URL.iter().position(|b| *b == c)?;
        acc = (acc << 6) | digit as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *bytes.get_mut(at)? = (acc >> bits) as u8;
            at += 1;
        }
    }
    // The two bits left over must be zero, or two texts would name one id.
    (acc & ((1 << bits) - 1) == 0).then(|| Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written by Kafka 4.1.1's `FileQuorumStateStore`: the output of
    /// `broker/quorum/golden/QuorumStateGolden.java write` (voters 1, 2, 3;
    /// Kafka lists them in its set's order).
    const KAFKA_WROTE: &[(&str, &str)] = &[
        (
            "leader_v0",
            r#"{"clusterId":"","leaderId":2,"leaderEpoch":5,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":3},{"voterId":2},{"voterId":1}],"data_version":0}"#,
        ),
        (
            "leader_voted_v0",
            r#"{"clusterId":"","leaderId":2,"leaderEpoch":5,"votedId":2,"appliedOffset":0,"currentVoters":[{"voterId":3},{"voterId":2},{"voterId":1}],"data_version":0}"#,
        ),
        (
            "voted_v0",
            r#"{"clusterId":"","leaderId":-1,"leaderEpoch":7,"votedId":3,"appliedOffset":0,"currentVoters":[{"voterId":3},{"voterId":2},{"voterId":1}],"data_version":0}"#,
        ),
        (
            "unknown_v0",
            r#"{"clusterId":"","leaderId":-1,"leaderEpoch":0,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":3},{"voterId":2},{"voterId":1}],"data_version":0}"#,
        ),
        (
            "leader_v1",
            r#"{"leaderId":2,"leaderEpoch":5,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
        ),
        (
            "voted_v1",
            r#"{"leaderId":-1,"leaderEpoch":7,"votedId":3,"votedDirectoryId":"AQIDBAUGBwgJCgsMDQ4PEA","data_version":1}"#,
        ),
        (
            "unknown_v1",
            r#"{"leaderId":-1,"leaderEpoch":4,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
        ),
    ];

    fn kafka(name: &str) -> &'static str {
        KAFKA_WROTE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
            .unwrap_or_default()
    }

    fn state(leader_epoch: u32, leader_id: Option<i32>, voted_id: Option<i32>) -> QuorumStateData {
        QuorumStateData {
            leader_epoch,
            leader_id,
            voted_id,
        }
    }

    fn expected(name: &str) -> QuorumStateData {
        match name {
            "leader_v0" | "leader_v1" => state(5, Some(2), None),
            "leader_voted_v0" => state(5, Some(2), Some(2)),
            "voted_v0" | "voted_v1" => state(7, None, Some(3)),
            "unknown_v0" => state(0, None, None),
            _ => state(4, None, None),
        }
    }

    #[test]
    fn reads_every_file_kafka_writes() -> Result<(), ParseError> {
        for (name, text) in KAFKA_WROTE {
            let file = QuorumStateFile::parse(text)?;
            assert_eq!(file.to_raft()?, expected(name), "{name}");
            assert_eq!(
                file.data_version(),
                if name.ends_with("v0") { 0 } else { 1 }
            );
        }
        let voted = QuorumStateFile::parse(kafka("voted_v1"))?;
        let directory = Uuid::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(
            voted.version,
            VersionFields::V1 {
                voted_directory_id: directory
            }
        );
        Ok(())
    }

    #[test]
    fn writes_what_kafka_writes_byte_for_byte() {
        for name in ["leader_v0", "leader_voted_v0", "voted_v0", "unknown_v0"] {
            let file = QuorumStateFile::v0(expected(name), [3, 2, 1]);
            assert_eq!(file.to_json(), kafka(name), "{name}");
        }
        for name in ["leader_v1", "unknown_v1"] {
            assert_eq!(
                QuorumStateFile::v1(expected(name)).to_json(),
                kafka(name),
                "{name}"
            );
        }
    }

    #[test]
    fn every_file_round_trips() -> Result<(), ParseError> {
        for (_, text) in KAFKA_WROTE {
            let file = QuorumStateFile::parse(text)?;
            assert_eq!(file.to_json(), *text);
        }
        let null_voters = r#"{"clusterId":"a\"b","leaderId":-1,"leaderEpoch":1,"votedId":-1,"appliedOffset":9,"currentVoters":null,"data_version":0}"#;
        let file = QuorumStateFile::parse(null_voters)?;
        assert_eq!(file.to_json(), null_voters);
        Ok(())
    }

    #[test]
    fn corrupt_contents_are_named_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("{\"leaderId\":", "not JSON"),
            ("[1]", "not an object"),
            (
                r#"{"leaderId":1,"leaderEpoch":1,"votedId":-1}"#,
                "no data_version",
            ),
            (
                r#"{"leaderId":1,"leaderEpoch":1,"votedId":-1,"data_version":2}"#,
                "data_version 2 is not",
            ),
            (
                r#"{"leaderId":1,"leaderEpoch":1,"votedId":-1,"data_version":1}"#,
                "votedDirectoryId is mandatory in data_version 1",
            ),
            (
                r#"{"leaderId":"1","leaderEpoch":1,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
                "leaderId is \"1\", expected an int32",
            ),
            (
                r#"{"leaderId":1,"leaderEpoch":1,"votedId":-1,"votedDirectoryId":"AAAA","data_version":1}"#,
                "not a valid base64url uuid",
            ),
            (
                r#"{"leaderId":1,"leaderEpoch":4294967296,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
                "leaderEpoch is 4294967296, expected an int32",
            ),
            (
                r#"{"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[{"id":1}],"data_version":0}"#,
                "currentVoters is {\"id\":1}",
            ),
        ];
        for (text, message) in cases {
            match QuorumStateFile::parse(text) {
                Ok(file) => panic!("{text} parsed as {file:?}"),
                Err(e) => assert!(e.to_string().contains(message), "{text}: {e}"),
            }
        }
    }

    #[test]
    fn impossible_states_are_refused() -> Result<(), ParseError> {
        for text in [
            r#"{"leaderId":-2,"leaderEpoch":1,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
            r#"{"leaderId":1,"leaderEpoch":-1,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#,
        ] {
            let file = QuorumStateFile::parse(text)?;
            assert!(file.to_raft().is_err(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn uuids_are_kafkas_base64() {
        let directory = Uuid::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(uuid_to_base64(&directory), "AQIDBAUGBwgJCgsMDQ4PEA");
        assert_eq!(uuid_from_base64("AQIDBAUGBwgJCgsMDQ4PEA"), Some(directory));
        assert_eq!(
            uuid_from_base64("AQIDBAUGBwgJCgsMDQ4PEA=="),
            Some(directory)
        );
        assert_eq!(uuid_to_base64(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        // The last character's low bits must be zero.
        assert_eq!(uuid_from_base64("AQIDBAUGBwgJCgsMDQ4PEB"), None);
        assert_eq!(uuid_from_base64("AQIDBAUGBwgJCgsMDQ4PE+"), None);
        for _ in 0..100 {
            let id = Uuid::new_v4();
            assert_eq!(uuid_from_base64(&uuid_to_base64(&id)), Some(id));
        }
    }

    #[test]
    fn a_missing_file_is_the_fresh_state() -> Result<(), QuorumStateFileError> {
        let dir = tempfile::tempdir().map_err(|source| QuorumStateFileError::Read {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let path = path_in(dir.path());
        assert!(path.ends_with("__cluster_metadata-0/quorum-state"));
        assert_eq!(read(&path)?, None);
        assert_eq!(read_state(&path)?, QuorumStateData::default());
        Ok(())
    }

    #[test]
    fn write_replaces_the_file_and_leaves_no_temp() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(FILE_NAME);
        write(
            &path,
            &QuorumStateFile::v0(state(3, None, Some(1)), [1, 2, 3]),
        )?;
        write(
            &path,
            &QuorumStateFile::v0(state(4, Some(2), None), [1, 2, 3]),
        )?;
        assert_eq!(read_state(&path)?, state(4, Some(2), None));
        assert!(!dir.path().join("quorum-state.tmp").exists());
        let names: Vec<_> = fs::read_dir(dir.path())?.collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 1);
        Ok(())
    }

    #[test]
    fn a_corrupt_file_names_its_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, "{\"leaderId\":1")?;
        let err = read_state(&path).err().ok_or("a torn file was read")?;
        assert!(matches!(err, QuorumStateFileError::Corrupt { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        Ok(())
    }

    /// Kafka's own reader on what we write. Needs Java and Kafka's jars
    /// (`bash scripts/kafka.sh install`); run with `--ignored`.
    #[test]
    #[ignore = "runs Kafka's FileQuorumStateStore on a JVM"]
    fn kafka_reads_what_we_write() -> Result<(), Box<dyn std::error::Error>> {
        let home = std::env::var("HOME")?;
        let libs = format!("{home}/.cache/runnel-test-tools/kafka-4.1.1/libs/*");
        let dir = tempfile::tempdir()?;
        let cases = [
            (
                QuorumStateFile::v0(state(5, Some(2), None), [1, 2, 3]),
                "epoch=5, leaderId=OptionalInt[2], votedKey=Optional.empty",
            ),
            (
                QuorumStateFile::v0(state(7, None, Some(3)), [1, 2, 3]),
                "epoch=7, leaderId=OptionalInt.empty, votedKey=Optional[ReplicaKey(id=3, directoryId=<undefined>)]",
            ),
            (
                QuorumStateFile::v1(state(4, None, None)),
                "epoch=4, leaderId=OptionalInt.empty, votedKey=Optional.empty",
            ),
        ];
        let mut args = vec![
            "-cp".to_owned(),
            libs,
            concat!(env!("CARGO_MANIFEST_DIR"), "/golden/QuorumStateGolden.java").to_owned(),
            "read".to_owned(),
        ];
        for (i, (file, _)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("quorum-state-{i}"));
            write(&path, file)?;
            args.push(path.display().to_string());
        }
        let output = std::process::Command::new("java").args(&args).output()?;
        let stdout = String::from_utf8(output.stdout)?;
        for (i, (_, seen)) in cases.iter().enumerate() {
            let line = stdout
                .lines()
                .find(|l| l.contains(&format!("quorum-state-{i} ")))
                .ok_or_else(|| format!("no line for case {i} in {stdout}"))?;
            assert!(line.contains(seen), "case {i}: {line}");
        }
        Ok(())
    }
}
