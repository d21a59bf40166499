use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use weir_log::{BatchRange, Checkpoint, EmbeddedLog, LogConfig, LogError};

use crate::{data, open, read_all, record};

#[test]
fn log_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let shard;
    {
        let log = open(dir.path());
        shard = log.append("orders", vec![record(Some("k"), "a", 1), record(Some("k"), "b", 2)]).unwrap()[0].shard;
        let range = log.begin_batch("archive", "orders", shard, 0, 0).unwrap();
        log.commit_batch("archive", "orders", shard, range, b"state-1".to_vec()).unwrap();
    }

    let log = open(dir.path());

    assert_eq!(data(&log.read("orders", shard, 0, 10, 1000).unwrap()), ["a", "b"]);
    assert_eq!(log.next_seq("orders", shard).unwrap(), 2);
    assert_eq!(
        log.checkpoint("archive", "orders", shard).unwrap(),
        Some(Checkpoint { next_seq: 1, pending: None, state: b"state-1".to_vec() })
    );
    assert_eq!(log.append("orders", vec![record(Some("k"), "c", 3)]).unwrap()[0].seq, 2, "numbering goes on");
    assert!(log.stored_bytes("orders").unwrap() > 0);
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("log").join("streams.redb");

    let log = EmbeddedLog::open(&path, LogConfig::default()).unwrap();

    assert!(path.is_file());
    assert_eq!(log.path(), path);
}

#[test]
fn reopening_with_another_shard_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    drop(EmbeddedLog::open(&path, LogConfig::default()).unwrap());

    let error = EmbeddedLog::open(&path, LogConfig { shards_per_stream: 8, ..LogConfig::default() }).unwrap_err();

    assert!(matches!(error, LogError::ShardCountMismatch { stored: 4, configured: 8, .. }), "{error:?}");
    assert!(error.to_string().contains("log.redb has 4 shards per stream but the configuration asks for 8"), "{error}");
    assert!(EmbeddedLog::open(&path, LogConfig::default()).is_ok(), "the file is unharmed");
}

#[test]
fn zero_shards_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { shards_per_stream: 0, ..LogConfig::default() };

    let error = EmbeddedLog::open(&dir.path().join("log.redb"), config).unwrap_err();

    assert!(matches!(error, LogError::InvalidConfig { .. }), "{error:?}");
}

#[test]
fn a_file_that_is_not_a_log_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a database, just some text that is long enough to be looked at".repeat(100)).unwrap();

    let error = EmbeddedLog::open(&path, LogConfig::default()).unwrap_err();

    assert!(matches!(error, LogError::Open { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("cannot open the stream log at {}", path.display())), "{error}");
}

/// Set in the child process of [`an_acknowledged_append_survives_kill_9`]: the log file it
/// appends to.
const CHILD_LOG: &str = "WEIR_LOG_TEST_CHILD_LOG";

/// Run in a child process by [`an_acknowledged_append_survives_kill_9`] (does nothing
/// otherwise): appends one record at a time forever, printing each acknowledged one.
#[test]
fn child_process_appending_until_killed() {
    let Some(path) = std::env::var_os(CHILD_LOG) else { return };
    let log = EmbeddedLog::open(path.as_ref(), LogConfig::default()).unwrap();
    for i in 0.. {
        let appended = log.append("orders", vec![record(Some("k"), &format!("order-{i}"), i)]).unwrap();
        println!("acknowledged {} {}", appended[0].shard, appended[0].seq);
    }
}

#[test]
fn an_acknowledged_append_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "durability::child_process_appending_until_killed", "--nocapture", "--test-threads=1"])
        .env(CHILD_LOG, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    // Kept open until the kill, so the child never meets a closed pipe.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in &mut lines {
        let line = line.unwrap();
        if let Some(at) = line.strip_prefix("acknowledged ") {
            let (shard, seq) = at.split_once(' ').unwrap();
            acknowledged.push((shard.parse::<u32>().unwrap(), seq.parse::<u64>().unwrap()));
            if acknowledged.len() == 20 {
                break;
            }
        }
    }

    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();
    drop(lines);

    assert_eq!(acknowledged.len(), 20, "the child acknowledged appends before it was killed");
    let log = EmbeddedLog::open(&path, LogConfig::default()).unwrap();
    let stored = read_all(&log, "orders");
    for (shard, seq) in &acknowledged {
        let record = stored.iter().find(|r| (r.shard, r.seq) == (*shard, *seq));
        let record = record.unwrap_or_else(|| panic!("acknowledged record {shard}/{seq} is lost"));
        assert_eq!(record.data, format!("order-{seq}").into_bytes());
    }
    assert!(stored.len() >= 20);
}

#[test]
fn a_pending_batch_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.append("orders", vec![record(Some("k"), "a", 0); 5]).unwrap();
        let shard = log.shard_for(Some("k"), b"");
        log.begin_batch("archive", "orders", shard, 0, 3).unwrap();
    }

    let log = open(dir.path());

    let shard = log.shard_for(Some("k"), b"");
    let checkpoint = log.checkpoint("archive", "orders", shard).unwrap().unwrap();
    assert_eq!(checkpoint.pending, Some(BatchRange { first: 0, last: 3 }));
}
