//! Apache Kafka's DumpLogSegments, run over log files and its output read
//! back: the batches and records it prints per file, and the lines that
//! mean it found a damaged file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::kafka;

/// What DumpLogSegments prints when a file is damaged (learnt by dumping
/// corrupted copies: a flipped byte in a batch, a bad index entry, a bad
/// time index entry, a torn index, a torn snapshot, bytes after the last
/// batch) and what its decoders print for a record they cannot read.
pub const ERROR_MARKERS: &[&str] = &[
    "isvalid: false",
    "invalid bytes at the end",
    "Mismatches in :",
    "Index offset:",
    "Found timestamp mismatch",
    "Found out of order timestamp",
    "indexed offsets are not found",
    "Non-consecutive offsets",
    "Snapshot is corrupt",
    "Ignoring unknown file",
    "Error at offset",
    "Unknown record type",
    "Exception",
    "corrupt",
];

/// Runnel's `.log` records of one partition are compared with what was
/// produced as (offset, key, value or control marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Data {
        offset: i64,
        key: Option<String>,
        value: Option<String>,
    },
    Marker {
        offset: i64,
        kind: String,
    },
}

pub fn data(offset: i64, key: Option<&str>, value: Option<&str>) -> Entry {
    Entry::Data {
        offset,
        key: key.map(str::to_string),
        value: value.map(str::to_string),
    }
}

/// One batch line: `baseOffset: 0 lastOffset: 3 count: 4 ... isvalid: true`.
#[derive(Debug, Clone)]
pub struct DumpedBatch {
    pub fields: HashMap<String, String>,
}

impl DumpedBatch {
    pub fn parse(line: &str) -> Self {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut fields = HashMap::new();
        let mut i = 0;
        while i + 1 < words.len() {
            if let Some(name) = words[i].strip_suffix(':') {
                fields.insert(name.to_string(), words[i + 1].to_string());
                i += 2;
            } else {
                i += 1;
            }
        }
        Self { fields }
    }

    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in batch line {:?}", self.fields))
    }

    pub fn int(&self, name: &str) -> i64 {
        self.get(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {:?}", self.fields))
    }
}

/// One record line under a batch.
#[derive(Debug, Clone)]
pub struct DumpedRecord {
    pub offset: i64,
    pub header_keys: Vec<String>,
    /// `endTxnMarker: COMMIT` / `ABORT` of a control batch.
    pub marker: Option<String>,
    pub key: Option<String>,
    pub payload: Option<String>,
    pub batch: DumpedBatch,
}

impl DumpedRecord {
    pub fn parse(line: &str, batch: &DumpedBatch) -> Self {
        let rest = line
            .strip_prefix("| offset: ")
            .unwrap_or_else(|| panic!("not a record line: {line:?}"));
        let offset = rest
            .split(' ')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("no offset in {line:?}"));
        let (_, after) = rest
            .split_once(" headerKeys: [")
            .unwrap_or_else(|| panic!("no headerKeys in {line:?}"));
        let (headers, after) = after.split_once(']').expect("headerKeys end");
        let header_keys = headers
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        let mut marker = None;
        let mut key = None;
        let mut payload = None;
        if let Some(control) = after.strip_prefix(" endTxnMarker: ") {
            marker = control.split(' ').next().map(str::to_string);
        } else {
            let (key_part, payload_part) = match after.split_once(" payload: ") {
                Some((k, p)) => (k, Some(p)),
                None => (after, None),
            };
            key = key_part.strip_prefix(" key: ").map(str::to_string);
            payload = payload_part.map(str::to_string);
        }
        Self {
            offset,
            header_keys,
            marker,
            key,
            payload,
            batch: batch.clone(),
        }
    }

    pub fn entry(&self) -> Entry {
        match &self.marker {
            Some(kind) => Entry::Marker {
                offset: self.offset,
                kind: kind.clone(),
            },
            None => Entry::Data {
                offset: self.offset,
                key: self.key.clone(),
                value: self.payload.clone(),
            },
        }
    }
}

/// DumpLogSegments' output split at its `Dumping <file>` lines.
#[derive(Debug)]
pub struct Dump {
    pub sections: Vec<(PathBuf, Vec<String>)>,
    pub stdout: String,
}

impl Dump {
    /// Runs DumpLogSegments once over `files` with `flags`, and checks it
    /// exited 0, wrote nothing to stderr and printed no error marker.
    pub fn run(flags: &[&str], files: &[PathBuf], allow: &[&str]) -> Self {
        assert!(!files.is_empty(), "nothing to dump");
        let list = files
            .iter()
            .map(|f| f.to_str().expect("utf-8 path"))
            .collect::<Vec<_>>()
            .join(",");
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["--files", &list]);
        let started = Instant::now();
        let output = kafka::tool("kafka.tools.DumpLogSegments", &args)
            .expect_success(&format!("DumpLogSegments {flags:?}"));
        eprintln!(
            "DumpLogSegments {flags:?} over {} files: {} lines in {:.1?}",
            files.len(),
            output.stdout.lines().count(),
            started.elapsed()
        );
        // What is allowed goes to stderr as a header line and indented
        // detail lines.
        let mut stderr = Vec::new();
        let mut allowed_block = false;
        for line in output.stderr.lines() {
            if allow.iter().any(|a| line.contains(a)) {
                allowed_block = true;
            } else if !(allowed_block && line.starts_with("  ")) {
                allowed_block = false;
                if !line.trim().is_empty() && !line.contains("OpenJDK 64-Bit Server VM warning") {
                    stderr.push(line);
                }
            }
        }
        for line in output.stdout.lines() {
            for marker in ERROR_MARKERS {
                if allow.iter().any(|a| line.contains(a)) {
                    continue;
                }
                assert!(
                    !line
                        .to_ascii_lowercase()
                        .contains(&marker.to_ascii_lowercase()),
                    "DumpLogSegments {flags:?} printed {marker:?}: {line}"
                );
            }
        }
        let mut sections: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for line in output.stdout.lines() {
            if let Some(file) = line.strip_prefix("Dumping ") {
                sections.push((PathBuf::from(file), Vec::new()));
            } else if let Some((_, lines)) = sections.last_mut() {
                lines.push(line.to_string());
            } else {
                panic!("DumpLogSegments printed {line:?} before any file");
            }
        }
        let dumped: Vec<&PathBuf> = sections.iter().map(|(p, _)| p).collect();
        let asked: Vec<&PathBuf> = files.iter().collect();
        assert_eq!(dumped, asked, "DumpLogSegments did not dump every file");
        Self {
            sections,
            stdout: output.stdout,
        }
    }

    pub fn lines_of(&self, file: &Path) -> &[String] {
        self.sections
            .iter()
            .find(|(p, _)| p == file)
            .map(|(_, lines)| lines.as_slice())
            .unwrap_or_else(|| panic!("{} was not dumped", file.display()))
    }

    /// The batches and records of the `.log` files of `dir`, in offset
    /// order, after checking each file's lines are what a sound segment
    /// prints: valid v2 batches, in order, within the segment's offsets
    /// (from its name to the next one's), the first at its name's offset
    /// unless the cleaner removed records there.
    pub fn log_of(&self, dir: &Path, compacted: bool) -> (Vec<DumpedBatch>, Vec<DumpedRecord>) {
        let mut batches: Vec<DumpedBatch> = Vec::new();
        let mut records = Vec::new();
        let logs = files_with(dir, &["log"]);
        for (i, file) in logs.iter().enumerate() {
            let base = base_offset(file);
            let next_base = logs.get(i + 1).map_or(i64::MAX, |f| base_offset(f));
            let lines = self.lines_of(file);
            assert_eq!(
                lines.first().map(String::as_str),
                Some(format!("Log starting offset: {base}").as_str()),
                "{}",
                file.display()
            );
            let mut first_batch = true;
            for line in &lines[1..] {
                if line.starts_with("baseOffset: ") {
                    let batch = DumpedBatch::parse(line);
                    assert_eq!(batch.get("isvalid"), "true", "{}: {line}", file.display());
                    assert_eq!(batch.get("magic"), "2", "{}: {line}", file.display());
                    // Kafka stamps the leader's epoch on every batch it
                    // appends (see runnel_serves_the_files_kafka_writes).
                    assert_eq!(
                        batch.get("partitionLeaderEpoch"),
                        "0",
                        "{}: {line}",
                        file.display()
                    );
                    let (first, last) = (batch.int("baseOffset"), batch.int("lastOffset"));
                    assert!(
                        first >= base && last < next_base && first <= last,
                        "{}: a batch outside the segment: {line}",
                        file.display()
                    );
                    if let Some(previous) = batches.last() {
                        assert!(
                            first > previous.int("lastOffset"),
                            "{}: batches out of order: {line}",
                            file.display()
                        );
                    }
                    if first_batch && !compacted {
                        assert_eq!(
                            first,
                            base,
                            "{} does not start at its name's offset",
                            file.display()
                        );
                    }
                    first_batch = false;
                    batches.push(batch);
                } else if line.starts_with("| offset: ") {
                    let batch = batches.last().expect("a batch before its records");
                    let record = DumpedRecord::parse(line, batch);
                    assert!(
                        record.offset >= batch.int("baseOffset")
                            && record.offset <= batch.int("lastOffset"),
                        "{}: record outside its batch: {line}",
                        file.display()
                    );
                    records.push(record);
                } else {
                    panic!("{}: unexpected line {line:?}", file.display());
                }
            }
        }
        (batches, records)
    }
}

/// The files of `dir` whose names end in one of `suffixes`, sorted.
pub fn files_with(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| suffixes.contains(&e))
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    files.sort();
    files
}

/// The base offset a segment file is named after.
pub fn base_offset(file: &Path) -> i64 {
    file.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{} is not named by an offset", file.display()))
}
