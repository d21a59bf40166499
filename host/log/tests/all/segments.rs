//! A group commit stores each shard's records as segments (one redb value holding many
//! records, closed at 1 MiB or 4 096 records): every record must still be readable from any position, and
//! retention must be able to cut through the middle of a segment.

use std::time::Duration;

use weir_log::{EmbeddedLog, LogConfig};

use crate::{data, open, record};

const SECOND: i64 = 1_000_000;

/// 3 000 records of 1 KiB on one key: one append, so several segments of one shard.
fn big_append(log: &EmbeddedLog) -> (u32, Vec<String>) {
    let payloads: Vec<String> = (0..3000).map(|i| format!("{i:05}{}", "x".repeat(1019))).collect();
    let records = payloads.iter().enumerate().map(|(i, p)| record(Some("restaurant-7"), p, i as i64 * SECOND));
    let appended = log.append("orders", records.collect()).unwrap();
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), (0..3000).collect::<Vec<_>>());
    (appended[0].shard, payloads)
}

#[test]
fn records_of_a_large_append_read_back_from_any_position_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let (shard, payloads) = big_append(&log);
    let more = log.append("orders", vec![record(Some("restaurant-7"), "next", 0)]).unwrap();
    assert_eq!(more[0].seq, 3000);

    // About 1 000 records fill a segment: these start inside one and run into the next.
    for from in [0_u64, 1, 999, 1000, 1021, 1022, 2047, 2999, 3000] {
        let read = log.read("orders", shard, from, 60, usize::MAX).unwrap();
        let expected: Vec<String> =
            payloads.iter().cloned().chain(["next".to_owned()]).skip(from as usize).take(60).collect();
        assert_eq!(data(&read), expected, "reading from {from}");
        assert_eq!(read.first().map(|r| r.seq), Some(from));
    }
    assert!(log.read("orders", shard, 3001, 10, usize::MAX).unwrap().is_empty());
    let everything = log.read("orders", shard, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(everything.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..=3000).collect::<Vec<_>>());
    assert_eq!(everything[1500].arrival_time, 1500 * SECOND);

    // A byte limit stops inside a segment, and the next read goes on from there.
    let limited = log.read("orders", shard, 500, usize::MAX, 10 * 1024).unwrap();
    assert_eq!(limited.len(), 10);
    assert_eq!(limited.last().unwrap().seq, 509);
}

#[test]
fn retention_cuts_through_a_segment_and_keeps_its_tail_readable_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let now = 3000 * SECOND;
    let config = LogConfig { retention_age: Duration::from_secs(3000 - 1234), ..LogConfig::default() };
    let log = EmbeddedLog::open(&path, config.clone()).unwrap();
    let (shard, payloads) = big_append(&log);
    let stored_before = log.stored_bytes("orders").unwrap();

    let report = log.apply_retention(now).unwrap();

    assert_eq!(report.removed, [("orders".to_owned(), 1234)]);
    drop(log);
    let log = EmbeddedLog::open(&path, config).unwrap();
    let kept = log.read("orders", shard, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(kept.first().map(|r| r.seq), Some(1234));
    assert_eq!(data(&kept), payloads[1234..]);
    let from_inside = log.read("orders", shard, 1500, 3, usize::MAX).unwrap();
    assert_eq!(data(&from_inside), payloads[1500..1503]);
    // Every record is 1 024 bytes of data plus the same metadata.
    let per_record = stored_before / 3000;
    assert_eq!(log.stored_bytes("orders").unwrap(), stored_before - 1234 * per_record);
    assert_eq!(log.append("orders", vec![record(Some("restaurant-7"), "next", now)]).unwrap()[0].seq, 3000);
}

#[test]
fn tiny_records_are_cut_into_segments_of_at_most_4096_and_read_back_around_the_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let appended = log.append("orders", (0..10_000).map(|i| record(Some("k"), &i.to_string(), 0)).collect()).unwrap();
    let shard = appended[0].shard;
    for from in [0_u64, 4095, 4096, 4097, 8191, 8192, 9999] {
        let read = log.read("orders", shard, from, 3, usize::MAX).unwrap();
        let expected: Vec<String> = (from..10_000).take(3).map(|i| i.to_string()).collect();
        assert_eq!(data(&read), expected, "reading from {from}");
    }
}
