//! Crash test with real kills. The test binary runs itself as a child
//! (`--exact crash_child_writer`) with `RUNNEL_CRASH_CHILD_DIR` set; the
//! child opens the log dir through a `LogManager` and appends forever,
//! printing `ack <first> <last>` once each append has returned. The parent
//! SIGKILLs it at a random moment (also during its startup recovery), reopens
//! the dir, and checks that every acknowledged batch is there byte for byte
//! and the log ends on a batch boundary. Acknowledged means written to the
//! page cache, not fsynced: a process kill must not lose it.
//!
//! Some rounds ask the child to shut down cleanly after a number of appends
//! (sometimes while the log is still shared, so its indexes stay
//! preallocated), and the kill may land before, during or after that
//! shutdown. While a child runs, a second manager on its dir is refused.
//!
//! Batch contents follow from their offset (`common::batch_for_offset`), so
//! every batch in the log, acknowledged or not, can be checked exactly;
//! some appends carry many batches, and in some rounds the kill is aimed at
//! a 14 MB append in flight, to tear a write.
//! `RUNNEL_CRASH_SEED` replays the kill times of an earlier run.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use runnel_log::batch::Batches;
use runnel_log::{
    BatchBuilder, LogConfig, LogError, LogManager, ManagerConfig, PartitionLog, TopicPartition,
};

const CHILD_DIR_ENV: &str = "RUNNEL_CRASH_CHILD_DIR";
const SEED_ENV: &str = "RUNNEL_CRASH_SEED";
/// `<appends>` or `<appends>,shared`: shut down cleanly after that many
/// appends, with the log handle dropped first or still held.
const SHUTDOWN_AFTER_ENV: &str = "RUNNEL_CRASH_CHILD_SHUTDOWN_AFTER";
const CHILD_TEST: &str = "crash_child_writer";
/// Rounds in all; every fourth asks the child for a clean shutdown, the
/// others always end in a kill.
const ROUNDS: usize = 32;
/// Appends between the child's flush + checkpoint, so recovery points move
/// and recovery starts from later segments.
const CHECKPOINT_EVERY: u64 = 64;
/// Set: after this many appends the child makes one large append (about
/// 14 MB) and says `big <offset>` just before it.
const TEAR_AFTER_ENV: &str = "RUNNEL_CRASH_CHILD_TEAR_AFTER";
const TEAR_AFTER_APPENDS: u64 = 20;
/// Batches of the large append, each one record of `BIG_VALUE_BYTES`.
const BIG_BATCHES: i64 = 16;
const BIG_VALUE_BYTES: usize = 900_000;
/// Generous bound for a child to start and print an awaited line.
const FIRST_LINE_DEADLINE: Duration = Duration::from_secs(120);

fn topic_partition() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

/// Small segments so rolls, multi-segment recovery and index entries all
/// happen within a round.
fn log_config() -> LogConfig {
    config(&[
        ("segment.bytes", "262144"),
        ("index.interval.bytes", "1024"),
    ])
}

fn manager_config(root: &Path) -> ManagerConfig {
    let mut config = ManagerConfig::new(vec![root.to_path_buf()]);
    config.default_config = log_config();
    config
}

/// The child: a writer that only stops when it is killed (or, when told,
/// after a clean shutdown). Without the environment variable (a normal test
/// run) it passes at once.
#[test]
fn crash_child_writer() {
    let Some(root) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let manager = LogManager::open(manager_config(Path::new(&root)), NOW).expect("child: open");
    let log = manager
        .get_or_create(&topic_partition(), log_config(), NOW)
        .expect("child: get_or_create");
    let mut out = std::io::stdout().lock();
    // Start on a fresh line: the test harness may have printed a prefix.
    let opened_at = log.lock().expect("lock").log_end_offset();
    writeln!(out, "\nopened {opened_at}").expect("stdout");
    out.flush().expect("stdout");
    let shutdown = std::env::var(SHUTDOWN_AFTER_ENV).ok();
    let shutdown_after = shutdown.as_deref().map(|s| {
        s.trim_end_matches(",shared")
            .parse::<u64>()
            .expect("appends")
    });
    let tear_after: Option<u64> = std::env::var(TEAR_AFTER_ENV)
        .ok()
        .map(|s| s.parse().expect("appends"));
    for appends in 1u64.. {
        if shutdown_after.is_some_and(|n| appends > n) {
            break;
        }
        if tear_after == Some(appends) {
            let offset = log.lock().expect("lock").log_end_offset();
            let big: Vec<u8> = (0..BIG_BATCHES)
                .flat_map(|i| big_batch_for_offset(offset + i))
                .collect();
            writeln!(out, "big {offset}").expect("stdout");
            out.flush().expect("stdout");
            let info = log
                .lock()
                .expect("lock")
                .append(&big, NOW)
                .expect("child: big append");
            writeln!(out, "ack {} {}", info.first_offset, info.last_offset).expect("stdout");
            out.flush().expect("stdout");
        }
        let info = {
            let mut log = log.lock().expect("lock");
            let offset = log.log_end_offset();
            let info = log
                .append(&append_for_offset(offset), NOW)
                .expect("child: append");
            if appends % CHECKPOINT_EVERY == 0 {
                log.flush().expect("child: flush");
            }
            info
        };
        writeln!(out, "ack {} {}", info.first_offset, info.last_offset).expect("stdout");
        out.flush().expect("stdout");
        if appends % CHECKPOINT_EVERY == 0 {
            manager.checkpoint().expect("child: checkpoint");
        }
    }
    let still_shared = shutdown.as_deref().is_some_and(|s| s.ends_with(",shared"));
    let held = still_shared.then_some(log);
    manager.shutdown().expect("child: shutdown");
    drop(held);
    writeln!(out, "closed").expect("stdout");
    out.flush().expect("stdout");
}

/// A batch of one `BIG_VALUE_BYTES` record for offset `offset`; quick to
/// build, so the child's large write starts right after it says so.
fn big_batch_for_offset(offset: i64) -> Vec<u8> {
    let value = vec![(offset % 251) as u8; BIG_VALUE_BYTES];
    BatchBuilder::new(NOW + offset)
        .base_offset(offset)
        .record(Some(b"big"), Some(&value), NOW + offset)
        .build()
}

/// The batch stored at `offset`, told apart by size: generated batches are
/// far smaller than big ones.
fn expected_batch(offset: i64, size: usize) -> Vec<u8> {
    let mut batch = if size > BIG_VALUE_BYTES {
        big_batch_for_offset(offset)
    } else {
        batch_for_offset(offset)
    };
    // The append stamps the leader epoch, outside the CRC.
    batch[12..16].copy_from_slice(&runnel_log::log::LEADER_EPOCH.to_be_bytes());
    batch
}

/// What the writer appends at log end `offset`: one batch, or now and then
/// (as a produce request may) up to 64 batches in one append, a write
/// large enough for a kill to land in the middle of it.
fn append_for_offset(offset: i64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(offset as u64);
    let batches = if rng.u8(..) < 8 { rng.usize(2..=64) } else { 1 };
    let mut bytes = Vec::new();
    let mut next = offset;
    for _ in 0..batches {
        let batch = batch_for_offset(next);
        next = last_offset_of(&batch) + 1;
        bytes.extend_from_slice(&batch);
    }
    bytes
}

/// A running child with its output being read on two threads. Dropping it
/// kills the child, so a failing parent leaves no writer behind (and a
/// child whose parent died stops at its next write to the closed pipe).
struct Writer {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Writer {
    fn spawn(root: &Path, shutdown_after: Option<String>, tear: bool) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("current exe"));
        command
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, root)
            .env_remove(SHUTDOWN_AFTER_ENV)
            .env_remove(TEAR_AFTER_ENV);
        if tear {
            command.env(TEAR_AFTER_ENV, TEAR_AFTER_APPENDS.to_string());
        }
        if let Some(after) = shutdown_after {
            command.env(SHUTDOWN_AFTER_ENV, after);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Collects lines until `deadline`, or until the first line starting
    /// with `until` (which must come before the deadline). Panics with the
    /// child's stderr if it ends first, unless it ended after a clean
    /// shutdown.
    fn read_until(&mut self, deadline: Instant, until: Option<&str>, seen: &mut Vec<String>) {
        loop {
            let now = Instant::now();
            if now >= deadline {
                assert!(until.is_none(), "no {until:?} line from the child in time");
                return;
            }
            match self.lines.recv_timeout(deadline - now) {
                Ok(line) => {
                    let wanted = until.is_some_and(|u| line.trim_start().starts_with(u));
                    seen.push(line);
                    if wanted {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) if closed(seen) => return,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait");
                    let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!(
                        "the child writer ended on its own ({status}):\n{}",
                        stderr.unwrap_or_default()
                    );
                }
            }
        }
    }

    /// SIGKILLs the child (if it still runs) and returns every line it
    /// printed before it ended.
    fn kill(mut self, mut seen: Vec<String>) -> Vec<String> {
        self.child.kill().expect("SIGKILL the child");
        let status = self.child.wait().expect("wait");
        if let Some(stdout) = self.stdout.take() {
            stdout.join().expect("stdout reader");
        }
        seen.extend(self.lines.try_iter());
        assert!(
            !status.success() || closed(&seen),
            "the child finished without a clean shutdown"
        );
        seen
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes in the `.log` files of a partition dir (0 before it exists).
fn log_bytes(dir: &Path) -> u64 {
    if !dir.exists() {
        return 0;
    }
    segment_bases(dir)
        .into_iter()
        .map(|base| file_len(&seg_path(dir, base, ".log")))
        .sum()
}

/// Whether the child reported a finished clean shutdown.
fn closed(lines: &[String]) -> bool {
    lines.iter().any(|line| line.trim() == "closed")
}

/// What the parent knows survives: acknowledged batches by base offset, and
/// the CRC and size of every batch it has already checked byte for byte.
#[derive(Default)]
struct Expected {
    acked: BTreeMap<i64, i64>,
    checked: BTreeMap<i64, (u32, usize)>,
    log_end_offset: i64,
}

impl Expected {
    fn record_acks(&mut self, lines: &[String]) -> usize {
        let mut count = 0;
        for line in lines {
            let line = line.trim();
            if let Some(opened) = line.strip_prefix("opened ") {
                let opened: i64 = opened.parse().expect("opened offset");
                assert_eq!(
                    opened, self.log_end_offset,
                    "the child opened the log elsewhere than where the parent left it"
                );
            } else if let Some(ack) = line.strip_prefix("ack ") {
                let (first, last) = ack.split_once(' ').expect("ack <first> <last>");
                let first: i64 = first.parse().expect("first offset");
                let last: i64 = last.parse().expect("last offset");
                assert!(first >= self.log_end_offset && last >= first, "{line}");
                self.acked.insert(first, last);
                count += 1;
            }
        }
        count
    }

    /// Checks the reopened log against everything acknowledged so far.
    /// Returns the bytes the log holds.
    fn check(&mut self, log: &PartitionLog) -> u64 {
        let end = log.log_end_offset();
        let last_acked = self.acked.values().next_back().copied().unwrap_or(-1);
        assert!(
            end > last_acked,
            "log end {end} lost acknowledged offset {last_acked}"
        );
        assert!(end >= self.log_end_offset, "log end {end} went back");
        assert_eq!(log.log_start_offset(), 0);
        let mut stored: BTreeMap<i64, i64> = BTreeMap::new();
        let mut stored_bytes = 0u64;
        // Batches checked in an earlier round: same size and CRC (the
        // iterator validated the CRC over the bytes). New ones: every byte.
        let mut offset = 0;
        while offset < end {
            let bytes = log
                .read(offset, u32::MAX as u64, None, true)
                .unwrap_or_else(|e| panic!("read at {offset}: {e}"))
                .region
                .unwrap_or_else(|| panic!("nothing at {offset} below the log end {end}"))
                .to_vec()
                .expect("read region");
            for batch in Batches::new(&bytes) {
                let (header, batch) =
                    batch.unwrap_or_else(|e| panic!("invalid batch after offset {offset}: {e}"));
                assert_eq!(header.base_offset, offset, "offsets are contiguous");
                match self.checked.get(&offset) {
                    Some(&(crc, size)) => assert_eq!(
                        (header.crc, batch.len()),
                        (crc, size),
                        "batch at {offset} changed"
                    ),
                    None => {
                        assert!(
                            batch == expected_batch(offset, batch.len()).as_slice(),
                            "batch at {offset} differs from what was appended"
                        );
                        self.checked.insert(offset, (header.crc, batch.len()));
                    }
                }
                stored.insert(offset, header.last_offset());
                stored_bytes += batch.len() as u64;
                offset = header.next_offset();
            }
        }
        assert_eq!(offset, end, "the log ends on a batch boundary");
        // On disk too: the segment files hold exactly those batches.
        assert_eq!(
            log_bytes(log.dir()),
            stored_bytes,
            "segment files end on batch boundaries"
        );
        // An acknowledged append may hold several batches: it starts and
        // ends on batch boundaries, and offsets in between are contiguous.
        let ends: std::collections::BTreeSet<i64> = stored.values().copied().collect();
        for (first, last) in &self.acked {
            assert!(
                stored.contains_key(first) && ends.contains(last),
                "acknowledged append {first}-{last} is missing"
            );
        }
        self.log_end_offset = end;
        stored_bytes
    }
}

#[test]
fn killed_writers_lose_no_acknowledged_append() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .map(|s| s.parse().expect("RUNNEL_CRASH_SEED is a number"))
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test seed {seed} (set {SEED_ENV}={seed} to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let started = Instant::now();
    let mut expected = Expected::default();
    let mut total_acks = 0;
    let mut kills = 0;
    // Rounds whose recovery cut a partly written batch.
    let mut torn_tails = 0;
    let mut clean_stops = 0;

    for round in 0..ROUNDS {
        let shutdown_after = (round % 4 == 1).then(|| {
            let appends = rng.u64(0..400);
            if rng.bool() {
                format!("{appends},shared")
            } else {
                appends.to_string()
            }
        });
        let shuts_down = shutdown_after.is_some();
        let tears = round % 4 == 2;
        let mut writer = Writer::spawn(root, shutdown_after.clone(), tears);
        let mut lines = Vec::new();
        // Every other round the child gets going before the clock starts;
        // in the others the kill may land during its start and recovery.
        if round % 2 == 0 {
            let deadline = Instant::now() + FIRST_LINE_DEADLINE;
            writer.read_until(deadline, Some("ack "), &mut lines);
            // The child holds the dir's lock, across processes.
            match LogManager::open(manager_config(root), NOW) {
                Err(LogError::DirLocked { .. }) => {}
                other => panic!("a second manager beside a live writer: {other:?}"),
            }
        }
        let kill_after = if tears {
            // Kill while the child's large append is checked and written:
            // in a debug build that takes some 45 ms.
            let deadline = Instant::now() + FIRST_LINE_DEADLINE;
            writer.read_until(deadline, Some("big "), &mut lines);
            Duration::from_millis(rng.u64(0..50))
        } else {
            Duration::from_millis(rng.u64(0..300))
        };
        writer.read_until(Instant::now() + kill_after, None, &mut lines);
        let lines = writer.kill(lines);
        let acks = expected.record_acks(&lines);
        total_acks += acks;
        let child_closed = closed(&lines);
        if !child_closed {
            kills += 1;
        }

        let partition_dir = root.join(topic_partition().dir_name());
        let bytes_before_recovery = log_bytes(&partition_dir);
        let manager = LogManager::open(manager_config(root), NOW)
            .unwrap_or_else(|e| panic!("round {round}: reopen after the kill: {e}"));
        if child_closed {
            assert!(
                manager.started_clean(),
                "a finished shutdown leaves its marker"
            );
        } else if !shuts_down {
            assert!(!manager.started_clean(), "a killed writer leaves no marker");
        }
        let log = manager
            .get_or_create(&topic_partition(), log_config(), NOW)
            .expect("partition");
        {
            let mut log = log.lock().expect("lock");
            let kept = expected.check(&log);
            if kept < bytes_before_recovery {
                torn_tails += 1;
            }
            // The parent writes too, then hands the log to the next child.
            let offset = log.log_end_offset();
            let info = log
                .append(&batch_for_offset(offset), NOW)
                .expect("parent append");
            expected.acked.insert(info.first_offset, info.last_offset);
            expected.log_end_offset = info.last_offset + 1;
        }
        drop(log);
        if round % 4 == 3 {
            manager.shutdown().expect("clean shutdown");
            clean_stops += 1;
        } else {
            drop(manager); // an unclean stop without a kill
        }
        eprintln!(
            "round {round}: {} after {kill_after:?}, {acks} acks, log end {}",
            match (&shutdown_after, child_closed) {
                (Some(after), true) => format!("closed (shutdown after {after})"),
                (Some(after), false) => format!("killed (shutdown after {after})"),
                (None, _) if tears => "killed during a large write".to_string(),
                (None, _) => "killed".to_string(),
            },
            expected.log_end_offset
        );
    }

    let manager = LogManager::open(manager_config(root), NOW).expect("final reopen");
    let log = manager.get(&topic_partition()).expect("partition");
    expected.check(&log.lock().expect("lock"));
    manager.shutdown().expect("shutdown");
    assert!(kills >= 20, "only {kills} rounds ended in a kill");
    assert!(
        total_acks >= ROUNDS / 2,
        "every other round acknowledged appends"
    );
    eprintln!(
        "{ROUNDS} rounds, {kills} kills, {torn_tails} torn tails cut, {clean_stops} clean stops by the parent, {total_acks} acknowledged appends, \
         {} batches checked, log end {}, {:?}",
        expected.checked.len(),
        expected.log_end_offset,
        started.elapsed()
    );
}
