//! The disk log answers as the simulation's `MemoryLog` does: random
//! appends (several epochs, batches of one to three records, leader
//! changes) and truncations at entry boundaries, checked after each step
//! (end offset, last fetched epoch, where each epoch ends, reads from each
//! entry), across a reopen, and a fetched snapshot replacing the log.

use bytes::Bytes;
use runnel_log::{BatchBuilder, LoadState, LogConfig, PartitionLog};
use runnel_quorum::disk_log::DiskLog;
use runnel_raft::{Entry, MemoryLog, OffsetAndEpoch, Payload, ReplicatedLog};

const VOTERS: [i32; 3] = [1, 2, 3];

/// xorshift64*: a fixed sequence per seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn open(dir: &std::path::Path) -> DiskLog {
    let mut config = LogConfig::default();
    // Small segments: appends and truncations cross them.
    config.set("segment.bytes", "2048").expect("segment.bytes");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let log = PartitionLog::open(dir, config, LoadState::default(), now).expect("open");
    DiskLog::new(log, VOTERS.to_vec()).expect("disk log")
}

fn data(offset: u64, epoch: u32, records: u32) -> Entry {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    for i in 0..records {
        builder.push(
            None,
            Some(format!("r{offset}-{i}").as_bytes()),
            1_700_000_000_000,
        );
    }
    Entry {
        offset,
        epoch,
        record_count: records,
        payload: Payload::Data(Bytes::from(builder.build())),
    }
}

/// What both logs must agree on about an entry.
fn shape(entries: &[Entry]) -> Vec<(u64, u32, u32, Option<i32>)> {
    entries
        .iter()
        .map(|e| {
            let leader = match e.payload {
                Payload::LeaderChange { leader_id } => Some(leader_id),
                Payload::Data(_) => None,
            };
            (e.offset, e.epoch, e.record_count, leader)
        })
        .collect()
}

fn check_same(disk: &DiskLog, memory: &MemoryLog, max_epoch: u32, step: &str) {
    assert_eq!(disk.log_start_offset(), memory.log_start_offset(), "{step}");
    assert_eq!(disk.end_offset(), memory.end_offset(), "{step}");
    assert_eq!(
        disk.last_fetched_epoch(),
        memory.last_fetched_epoch(),
        "{step}"
    );
    for epoch in 0..=max_epoch + 1 {
        assert_eq!(
            disk.end_offset_for_epoch(epoch),
            memory.end_offset_for_epoch(epoch),
            "{step}: where epoch {epoch} ends"
        );
    }
    for entry in memory.entries() {
        assert_eq!(
            shape(&disk.read(entry.offset, 3)),
            shape(&memory.read(entry.offset, 3)),
            "{step}: read from {}",
            entry.offset
        );
    }
}

#[test]
fn the_disk_log_answers_as_the_memory_log() {
    for seed in 1..=20u64 {
        let dir = tempfile::tempdir().expect("dir");
        let mut disk = open(dir.path());
        let mut memory = MemoryLog::new();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut epoch = 1;
        for step in 0..60 {
            let end = memory.end_offset();
            let step = format!("seed {seed} step {step}");
            if rng.below(6) == 0 && !memory.entries().is_empty() {
                let keep = rng.below(memory.entries().len() as u64) as usize;
                let offset = memory.entries()[keep].offset;
                disk.truncate_to(offset).expect("truncate disk");
                memory.truncate_to(offset).expect("truncate memory");
            } else {
                if rng.below(4) == 0 {
                    epoch += 1 + rng.below(2) as u32;
                }
                let entry = if rng.below(5) == 0 {
                    Entry {
                        offset: end,
                        epoch,
                        record_count: 1,
                        payload: Payload::LeaderChange {
                            leader_id: VOTERS[rng.below(3) as usize],
                        },
                    }
                } else {
                    data(end, epoch, 1 + rng.below(3) as u32)
                };
                disk.append(std::slice::from_ref(&entry))
                    .expect("append disk");
                memory.append(&[entry]).expect("append memory");
            }
            check_same(&disk, &memory, epoch, &step);
        }
        disk.flush().expect("flush");
        drop(disk);
        let disk = open(dir.path());
        check_same(&disk, &memory, epoch, &format!("seed {seed} reopened"));
    }
}

#[test]
fn a_fetched_snapshot_replaces_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let mut disk = open(dir.path());
    let mut memory = MemoryLog::new();
    for offset in 0..5 {
        let entry = data(offset, 2, 1);
        disk.append(std::slice::from_ref(&entry)).expect("append");
        memory.append(&[entry]).expect("append");
    }
    let id = OffsetAndEpoch::new(40, 6);
    let contents = b"snapshot records".repeat(10);
    for log in [&mut disk as &mut dyn ReplicatedLog, &mut memory] {
        log.write_snapshot_chunk(id, 0, &contents[..100], false)
            .expect("first chunk");
        log.write_snapshot_chunk(id, 100, &contents[100..], true)
            .expect("last chunk");
    }
    check_same(&disk, &memory, 7, "after the snapshot");
    assert_eq!(disk.latest_snapshot_id(), Some(id));
    assert_eq!(disk.log_start_offset(), 40);
    let chunk = disk.read_snapshot(id, 150, 1_000).expect("chunk");
    assert_eq!((chunk.size, &chunk.bytes[..]), (160, &contents[150..]));
    // A gap in the chunks is refused.
    let other = OffsetAndEpoch::new(50, 7);
    disk.write_snapshot_chunk(other, 0, b"abc", false)
        .expect("start");
    assert!(disk.write_snapshot_chunk(other, 10, b"def", true).is_err());
    // The log goes on from the snapshot, and a reopen finds it.
    let next = data(40, 7, 2);
    disk.append(std::slice::from_ref(&next)).expect("append");
    memory.append(&[next]).expect("append");
    check_same(&disk, &memory, 7, "appended after the snapshot");
    disk.flush().expect("flush");
    drop(disk);
    let disk = open(dir.path());
    assert_eq!(disk.latest_snapshot_id(), Some(id));
    check_same(&disk, &memory, 7, "reopened");
}
