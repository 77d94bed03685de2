//! Offset checkpoint files, in Kafka's text format so its tools read them:
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
//! `cleaner-offset-checkpoint` in each log dir.
//!
//! ```text
//! 0                 <- version
//! 2                 <- number of entries
//! orders 0 1200     <- topic partition offset
//! orders 1 877
//! ```
//!
//! Written to `<name>.tmp`, fsynced and renamed over the old file, so a crash
//! leaves either the old or the new checkpoint.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{LogError, Result};
use crate::topic_partition::TopicPartition;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
const VERSION: i32 = 0;

/// Reads a checkpoint; a missing file is an empty checkpoint.
pub fn read(path: &Path) -> Result<BTreeMap<TopicPartition, i64>> {
    let Some(lines) = read_lines(path)? else {
        return Ok(BTreeMap::new());
    };
    let malformed = |line: usize, reason: String| LogError::MalformedCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut entries = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let line_no = i + 3;
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed(
                line_no,
                format!("expected 'topic partition offset', got {line:?}"),
            ));
        };
        let partition = partition
            .parse()
            .map_err(|_| malformed(line_no, format!("partition {partition:?} is not a number")))?;
        let offset = offset
            .parse()
            .map_err(|_| malformed(line_no, format!("offset {offset:?} is not a number")))?;
        entries.insert(TopicPartition::new(topic, partition), offset);
    }
    if entries.len() != lines.len() {
        return Err(malformed(
            2,
            format!("says {} entries but holds {}", lines.len(), entries.len()),
        ));
    }
    Ok(entries)
}

/// Replaces the checkpoint at `path` atomically.
pub fn write(path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition))
        .collect();
    write_lines(path, &lines)
}

/// The entry lines of a checkpoint in Kafka's layout (version 0, a count,
/// the entries), once the version and count are checked; `None` when the
/// file does not exist.
pub fn read_lines(path: &Path) -> Result<Option<Vec<String>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::ReadCheckpoint {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let malformed = |line: usize, reason: String| LogError::MalformedCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim();
    if version != VERSION.to_string() {
        return Err(malformed(1, format!("unsupported version {version:?}")));
    }
    let count: usize = lines
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|_| malformed(2, "entry count is not a number".into()))?;
    let entries: Vec<String> = lines.map(str::to_string).collect();
    if entries.len() != count {
        return Err(malformed(
            2,
            format!("says {count} entries but holds {}", entries.len()),
        ));
    }
    Ok(Some(entries))
}

/// Replaces the checkpoint at `path` atomically with `lines` as entries.
pub fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let err = |source| LogError::WriteCheckpoint {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a directory's entries (a created, renamed or removed file)
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LogError::Flush {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let mut entries = BTreeMap::new();
        entries.insert(TopicPartition::new("orders", 1), 877);
        entries.insert(TopicPartition::new("orders", 0), 1200);
        write(&path, &entries).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "0\n2\norders 0 1200\norders 1 877\n"
        );
        assert_eq!(read(&path).expect("read"), entries);
    }

    #[test]
    fn a_missing_file_is_empty_and_a_bad_one_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x");
        assert!(read(&path).expect("missing is ok").is_empty());
        std::fs::write(&path, "0\n1\norders zero 5\n").expect("write");
        let err = read(&path).expect_err("malformed");
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
