//! A full disk is loud: on a 4 MiB tmpfs the broker's produce requests get
//! KAFKA_STORAGE_ERROR, the broker logs the log dir and the OS error, counts
//! the failures, and `/readyz` turns not ready naming the dir; when space
//! comes back (the tmpfs grown in place, as a volume is) the dir clears by
//! itself and `/readyz` is ready again; the same holds when the write that
//! fails is the group coordinator's. Mounting needs root: as anyone else
//! the test says so on stderr and checks nothing.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use common::Broker;
use common::client::Client;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchBuilder;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                path(&mount),
            ],
        );
        Self { _dir: dir, mount }
    }

    fn resize(&self, size: &str) {
        run(
            "mount",
            &["-o", &format!("remount,size={size}"), path(&self.mount)],
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("{program} {args:?}: {err}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Produces one batch of 64 KiB to `topic`-0: the error code and the
/// offset it was written at.
fn produce(client: &mut Client, topic: &str) -> (i16, i64) {
    let value = vec![b'x'; 64 << 10];
    let batch = BatchBuilder::new(0).record(None, Some(&value), 0).build();
    let mut partition = produce_request::PartitionProduceData::default();
    partition.records = Some(Bytes::from(batch));
    let mut data = produce_request::TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    data.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![data];
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// The status line and body of `/readyz`.
fn readyz(metrics: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(metrics).expect("connect to metrics");
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: runnel\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    format!("{status} {body}")
}

fn wait_for(what: &str, mut check: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {:?}",
            common::DEADLINE
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_is_logged_counted_and_unready_until_space_returns() {
    if !is_root() {
        eprintln!("storage_faults: not run: mounting a small tmpfs needs root");
        return;
    }
    let disk = SmallDisk::mount("4m");
    let data = disk.mount.join("data");
    let mut broker = Broker::serve_with(&data, &["num.partitions=1"]);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    client.create_topic("fill");

    // Fill the disk: 64 KiB batches until one is refused.
    let mut appended = 0;
    let code = loop {
        match produce(&mut client, "fill") {
            (0, _) => appended += 1,
            (code, _) => break code,
        }
        assert!(appended < 200, "4 MiB took more than 200 batches of 64 KiB");
    };
    assert_eq!(code, KAFKA_STORAGE_ERROR, "after {appended} batches");
    assert!(appended > 0, "not one batch fit");
    // More refusals are counted, not logged one by one.
    for _ in 0..5 {
        assert_eq!(produce(&mut client, "fill").0, KAFKA_STORAGE_ERROR);
    }
    let data_name = data.display().to_string();
    let ready = wait_for("/readyz not ready", || {
        let ready = readyz(&broker.metrics);
        ready.starts_with("HTTP/1.1 503").then_some(ready)
    });
    assert!(
        ready.contains(&format!(
            "not ready: log dir {data_name} cannot take writes"
        )) && ready.contains("No space left on device"),
        "{ready}"
    );
    let metrics = common::scrape_metrics(&broker.metrics);
    let errors = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "runnel_storage_errors_total{{log_dir=\"{data_name}\"}} "
            ))
        })
        .unwrap_or_else(|| panic!("no storage error count:\n{metrics}"));
    assert!(errors.parse::<u64>().expect("count") >= 6, "{errors}");
    assert!(
        metrics.contains(&format!(
            "runnel_log_dir_failing{{log_dir=\"{data_name}\"}} 1"
        )),
        "{metrics}"
    );

    // Space comes back: the dir clears by itself and takes writes.
    disk.resize("64m");
    wait_for("/readyz ready again", || {
        let ready = readyz(&broker.metrics);
        ready.starts_with("HTTP/1.1 200").then_some(ready)
    });
    // The refused appends left nothing behind: the next offset follows on.
    assert_eq!(produce(&mut client, "fill"), (0, appended));
    let metrics = common::scrape_metrics(&broker.metrics);
    assert!(
        metrics.contains(&format!(
            "runnel_log_dir_failing{{log_dir=\"{data_name}\"}} 0"
        )),
        "{metrics}"
    );

    broker.terminate();
    let exit = broker.wait_exit();
    let stderr = common::plain(&exit.stderr);
    let logged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("log dir cannot take writes"))
        .collect();
    assert_eq!(logged.len(), 1, "one line per 10 s:\n{stderr}");
    assert!(
        logged[0].contains(&format!("log_dir={data_name}"))
            && logged[0].contains("No space left on device (os error 28)"),
        "{}",
        logged[0]
    );
    assert!(stderr.contains("log dir takes writes again"), "{stderr}");
}

/// Writes `dir/filler` until the filesystem refuses a byte more.
fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    for chunk in [64 << 10, 4 << 10, 1] {
        let bytes = vec![0u8; chunk];
        while file.write_all(&bytes).is_ok() {}
    }
    path
}

fn commit_offset(client: &mut Client, group: &str, topic: &str) -> i16 {
    let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = 1;
    let mut topic_data = offset_commit_request::OffsetCommitRequestTopic::default();
    topic_data.name = TopicName(StrBytes::from_string(topic.to_string()));
    topic_data.partitions = vec![partition];
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.generation_id_or_member_epoch = -1;
    request.topics = vec![topic_data];
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request);
    response.topics[0].partitions[0].error_code
}

/// The group coordinator's own writes mark the dir too: an offset commit
/// on a full disk is refused, `/readyz` names the dir, and when space
/// comes back the probe clears it without any produce request.
#[test]
fn a_full_disk_under_a_coordinator_write_is_unready_until_space_returns() {
    if !is_root() {
        eprintln!("storage_faults: not run: mounting a small tmpfs needs root");
        return;
    }
    let disk = SmallDisk::mount("4m");
    let data = disk.mount.join("data");
    let mut broker = Broker::serve_with(
        &data,
        &["num.partitions=1", "offsets.topic.num.partitions=1"],
    );
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    client.create_topic("t");
    // The first commit creates __consumer_offsets and writes to it.
    let code = wait_for("a first offset commit", || {
        let code = commit_offset(&mut client, "g", "t");
        (code == 0).then(|| code.to_string())
    });
    assert_eq!(code, "0");

    let filler = fill_up(&disk.mount);
    // Each commit is a batch of its own; one of them needs a page the
    // disk no longer has.
    let mut refused = None;
    for _ in 0..200 {
        let code = commit_offset(&mut client, "g", "t");
        if code != 0 {
            refused = Some(code);
            break;
        }
    }
    let code = refused.expect("an offset commit refused on a full disk");
    assert_eq!(code, 15, "COORDINATOR_NOT_AVAILABLE, retriable");
    let data_name = data.display().to_string();
    let ready = wait_for("/readyz not ready", || {
        let ready = readyz(&broker.metrics);
        ready.starts_with("HTTP/1.1 503").then_some(ready)
    });
    assert!(
        ready.contains(&format!(
            "not ready: log dir {data_name} cannot take writes"
        )) && ready.contains("No space left on device"),
        "{ready}"
    );

    std::fs::remove_file(&filler).expect("remove the filler");
    wait_for("/readyz ready again", || {
        let ready = readyz(&broker.metrics);
        ready.starts_with("HTTP/1.1 200").then_some(ready)
    });
    assert_eq!(commit_offset(&mut client, "g", "t"), 0);

    broker.terminate();
    let exit = broker.wait_exit();
    let stderr = common::plain(&exit.stderr);
    assert!(
        stderr.contains("log dir cannot take writes") && stderr.contains("__consumer_offsets-0"),
        "the log line names the offsets partition:\n{stderr}"
    );
    assert!(stderr.contains("log dir takes writes again"), "{stderr}");
}
