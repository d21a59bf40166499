use std::path::Path;
use std::time::Duration;

use weir_log::{EmbeddedLog, LogConfig, RetentionReport};

use crate::{data, read_all, record};

const SECOND: i64 = 1_000_000;

fn open_with(dir: &Path, config: LogConfig) -> EmbeddedLog {
    EmbeddedLog::open(&dir.join("log.redb"), config).unwrap()
}

fn keep_for(age: Duration) -> LogConfig {
    LogConfig { retention_age: age, ..LogConfig::default() }
}

/// A partition key that lands on another shard than `key`.
fn key_on_another_shard(log: &EmbeddedLog, key: &str) -> String {
    let shard = log.shard_for(Some(key), b"");
    (0..).map(|i| format!("restaurant-{i}")).find(|other| log.shard_for(Some(other), b"") != shard).unwrap()
}

#[test]
fn retention_by_age_removes_the_oldest_records_and_never_reuses_their_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), keep_for(Duration::from_secs(60)));
    let shard = log.shard_for(Some("k"), b"");
    log.append("orders", (0..9).map(|i| record(Some("k"), &format!("t{:03}", i * 10), i * 10 * SECOND)).collect())
        .unwrap();
    log.append("clicks", vec![record(Some("k"), "recent", 90 * SECOND)]).unwrap();
    let record_size = log.stored_bytes("orders").unwrap() / 9;

    // Now is 100 s: records that arrived before 40 s are older than 60 s.
    let report = log.apply_retention(100 * SECOND).unwrap();

    assert_eq!(report, RetentionReport { removed: vec![("orders".into(), 4)], removed_unconsumed: vec![] });
    let kept = log.read("orders", shard, 0, 100, usize::MAX).unwrap();
    assert_eq!(data(&kept), ["t040", "t050", "t060", "t070", "t080"]);
    assert_eq!(kept[0].seq, 4, "the first record kept keeps its sequence number");
    assert_eq!(log.stored_bytes("orders").unwrap(), 5 * record_size);
    assert_eq!(log.next_seq("orders", shard).unwrap(), 9);
    assert_eq!(log.append("orders", vec![record(Some("k"), "t100", 100 * SECOND)]).unwrap()[0].seq, 9);
    assert_eq!(data(&read_all(&log, "clicks")), ["recent"], "other streams keep their young records");
    assert_eq!(log.apply_retention(100 * SECOND).unwrap(), RetentionReport::default(), "nothing more to remove");
}

#[test]
fn retention_removes_only_a_prefix_of_each_shard() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), keep_for(Duration::from_secs(60)));
    // A young record first, then an old one (a producer's clock, say): the old one stays
    // until the young one ahead of it goes, so a shard never has holes.
    log.append("orders", vec![record(Some("k"), "young", 90 * SECOND), record(Some("k"), "old", 0)]).unwrap();

    assert_eq!(log.apply_retention(100 * SECOND).unwrap(), RetentionReport::default());
    assert_eq!(data(&read_all(&log, "orders")), ["young", "old"]);
    assert_eq!(log.apply_retention(200 * SECOND).unwrap().removed, [("orders".into(), 2)]);
}

#[test]
fn retention_by_size_removes_the_oldest_records_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let probe = open_with(&dir.path().join("probe"), LogConfig::default());
    let (a, b) = ("restaurant-a".to_owned(), key_on_another_shard(&probe, "restaurant-a"));
    assert_eq!(a.len(), b.len(), "all records have one size");
    probe.append("size", vec![record(Some(&a), "t1", 0)]).unwrap();
    let size = probe.stored_bytes("size").unwrap();
    let log = open_with(dir.path(), LogConfig { retention_bytes: 3 * size + size / 2, ..LogConfig::default() });
    // Arrival times 1..=8 alternate between the two shards: a gets 1, 3, 5, 7; b 2, 4, 6, 8.
    for t in 1..=8 {
        let key = if t % 2 == 1 { &a } else { &b };
        log.append("orders", vec![record(Some(key), &format!("t{t}"), t * SECOND)]).unwrap();
    }

    let report = log.apply_retention(10 * SECOND).unwrap();

    assert_eq!(report.removed, [("orders".into(), 5)]);
    let (shard_a, shard_b) = (log.shard_for(Some(&a), b""), log.shard_for(Some(&b), b""));
    assert_eq!(data(&log.read("orders", shard_a, 0, 10, usize::MAX).unwrap()), ["t7"]);
    assert_eq!(data(&log.read("orders", shard_b, 0, 10, usize::MAX).unwrap()), ["t6", "t8"]);
    assert_eq!(log.stored_bytes("orders").unwrap(), 3 * size);
}

#[test]
fn retention_reports_records_a_consumer_had_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), keep_for(Duration::from_secs(60)));
    let shard = log.shard_for(Some("k"), b"");
    log.append("orders", (0..10).map(|i| record(Some("k"), &format!("r{i}"), i * 10 * SECOND)).collect()).unwrap();
    // "archive" committed 0..=1 and is working on 2..=3; "stats" committed 0..=5.
    let range = log.begin_batch("archive", "orders", shard, 0, 1).unwrap();
    log.commit_batch("archive", "orders", shard, range, vec![]).unwrap();
    log.begin_batch("archive", "orders", shard, 2, 3).unwrap();
    let range = log.begin_batch("stats", "orders", shard, 0, 5).unwrap();
    log.commit_batch("stats", "orders", shard, range, vec![]).unwrap();

    // Now is 110 s: records 0..=4 (0 s..40 s) are older than 60 s.
    let report = log.apply_retention(110 * SECOND).unwrap();

    assert_eq!(
        report,
        RetentionReport { removed: vec![("orders".into(), 5)], removed_unconsumed: vec![("orders".into(), 3)] },
        "records 2, 3 and 4 were never committed by archive"
    );
    let archive = log.checkpoint("archive", "orders", shard).unwrap().unwrap();
    assert_eq!(archive.next_seq, 2, "retention does not move checkpoints");
    let resumed = log.read("orders", shard, archive.next_seq, 100, usize::MAX).unwrap();
    assert_eq!(resumed[0].seq, 5, "a lagging consumer resumes at the first record kept");
}

#[test]
fn a_consumer_of_the_stream_that_never_read_a_shard_has_lost_that_shards_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), keep_for(Duration::from_secs(60)));
    let other_key = key_on_another_shard(&log, "k");
    let (shard, other) = (log.shard_for(Some("k"), b""), log.shard_for(Some(&other_key), b""));
    log.append("orders", vec![record(Some("k"), "old", 0); 3]).unwrap();
    log.append("orders", vec![record(Some(&other_key), "old", 0)]).unwrap();
    // "archive" consumed the other shard only.
    let range = log.begin_batch("archive", "orders", other, 0, 0).unwrap();
    log.commit_batch("archive", "orders", other, range, vec![]).unwrap();
    assert_eq!(log.checkpoint("archive", "orders", shard).unwrap(), None);

    let report = log.apply_retention(100 * SECOND).unwrap();

    assert_eq!(report.removed, [("orders".into(), 4)]);
    assert_eq!(report.removed_unconsumed, [("orders".into(), 3)]);
}

#[test]
fn nothing_is_removed_within_the_default_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), LogConfig::default());
    log.append("orders", vec![record(Some("k"), "a", 0)]).unwrap();

    assert_eq!(log.apply_retention(3600 * SECOND).unwrap(), RetentionReport::default());
}
