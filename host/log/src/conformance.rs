//! The behaviour every [`StreamLog`] must have, written once as a test suite: the embedded
//! log runs it in `host/log/tests/all/conformance.rs`, and any other implementation
//! (Kinesis) runs the same checks with [`conformance_tests!`](crate::conformance_tests).
//!
//! Each check is an `async fn` that panics with a message naming what broke. A check gets
//! a fresh [`Subject`]: the log, and the few things the suite needs to do around it
//! (restart it, reshard it, let retention run) that are not part of the traits.
//!
//! What the suite pins down:
//! - records come back per shard in the order appended, each where `append` said;
//! - records with one partition key land on one shard;
//! - an acknowledged append survives a restart;
//! - reads start at, or after, a position, and keep within their limits, but always return
//!   a large first record;
//! - a checkpoint resumes after its committed position with its state, across a restart;
//! - a pending commit is handed back until it is finished, and a commit over committed
//!   records is refused;
//! - lag and backlog count what follows the committed position;
//! - a shard that ends is read to its end, says so, and its children list it as a parent
//!   (for logs that reshard);
//! - retention removes the oldest records and reads skip them (for logs whose retention
//!   the suite can drive).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::stream_log::BoxFuture;
use crate::{
    CommitRange, LogError, LogRecord, NewRecord, Position, ReadFrom, ReadLimits, ShardId, StreamLog, readable_shards,
};

/// A log under test, and what the suite needs to do around it.
pub trait Subject: Send {
    /// The log under test.
    fn log(&self) -> Arc<dyn StreamLog>;

    /// Opens the log again, as a restarted host would: everything acknowledged must
    /// still be there. The suite drops every handle [`log`](Self::log) gave before.
    fn reopen(&mut self) -> BoxFuture<'_, ()>;

    /// Ends `shard` of `stream` and returns its children, when the log can reshard;
    /// `None` when it cannot (the embedded log's shards never change).
    fn split<'a>(&'a self, stream: &'a str, shard: &'a ShardId) -> Option<BoxFuture<'a, Vec<ShardId>>>;

    /// Removes the records of `stream` that arrived before `arrival_time` (µs since the
    /// epoch), when the suite can drive the log's retention; `None` when it cannot.
    fn expire_before<'a>(&'a self, stream: &'a str, arrival_time: i64) -> Option<BoxFuture<'a, ()>>;
}

/// One `#[tokio::test]` per check of the suite, each on a fresh subject from `$make`
/// (an expression giving a future of a [`Subject`]).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            appended_records_are_read_back_in_order_where_append_put_them,
            one_partition_key_lands_on_one_shard,
            an_acknowledged_append_survives_a_restart,
            a_read_starts_at_or_after_a_position,
            a_read_keeps_within_its_limits_but_always_returns_a_large_first_record,
            a_checkpoint_resumes_after_its_committed_position_across_a_restart,
            a_pending_commit_is_handed_back_until_it_is_finished,
            a_commit_over_committed_records_is_refused,
            lag_and_backlog_count_what_follows_the_committed_position,
            a_shard_that_ends_is_read_to_its_end_before_its_children,
            retention_removes_the_oldest_records_and_reads_skip_them
        );
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let mut subject = $make.await;
                $crate::conformance::$check(&mut subject).await;
            }
        )*
    };
}

const STREAM: &str = "conformance";
const CONSUMER: &str = "conformance-consumer";

fn record(key: &str, data: String, arrival_time: i64) -> NewRecord {
    NewRecord {
        partition_key: Some(key.to_owned()),
        data: data.into_bytes().into(),
        content_type: "application/json".into(),
        arrival_time,
    }
}

fn text(record: &LogRecord) -> String {
    String::from_utf8_lossy(&record.data).into_owned()
}

const ALL: ReadLimits = ReadLimits { records: usize::MAX, bytes: usize::MAX };

/// Reads `shard` from `from` until `count` records came back or the log stops handing
/// out more (an implementation may answer a read with fewer records than exist).
async fn read_records(log: &dyn StreamLog, shard: &ShardId, from: ReadFrom, count: usize) -> Vec<LogRecord> {
    let mut records: Vec<LogRecord> = Vec::new();
    let mut from = from;
    let mut empty_reads = 0;
    while records.len() < count && empty_reads < 20 {
        let limits = ReadLimits { records: count - records.len(), bytes: usize::MAX };
        let read = log.read(STREAM, shard, from.clone(), limits).await.expect("read");
        match read.records.last() {
            Some(last) => from = ReadFrom::After(last.position.clone()),
            None => {
                if read.end_of_shard {
                    break;
                }
                empty_reads += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        records.extend(read.records);
    }
    records
}

/// Appends `n` records under key `key`, data `<key>-<i>`, arriving at `1_000 * (i + 1)`.
async fn append_numbered(log: &dyn StreamLog, key: &str, n: usize) -> (ShardId, Vec<Position>) {
    let records = (0..n).map(|i| record(key, format!("{key}-{i}"), 1_000 * (i as i64 + 1))).collect();
    let places = log.append(STREAM, records).await.expect("append");
    assert_eq!(places.len(), n, "append returns one place per record");
    let shard = places[0].shard.clone();
    assert!(places.iter().all(|p| p.shard == shard), "one key, one shard: {places:?}");
    (shard, places.into_iter().map(|p| p.position).collect())
}

/// Records come back per shard in the order appended, at the places `append` returned,
/// with strictly increasing positions.
pub async fn appended_records_are_read_back_in_order_where_append_put_them(subject: &mut dyn Subject) {
    let log = subject.log();
    let keys = ["k0", "k1", "k2", "k3", "k4"];
    let mut expected: BTreeMap<ShardId, Vec<(Position, String)>> = BTreeMap::new();
    for round in 0..2 {
        let records: Vec<NewRecord> =
            (0..20).map(|i| record(keys[i % keys.len()], format!("r{round}-{i}"), 1_000)).collect();
        let data: Vec<String> = records.iter().map(|r| String::from_utf8(r.data.to_vec()).unwrap()).collect();
        let places = log.append(STREAM, records).await.expect("append");
        assert_eq!(places.len(), data.len(), "one place per record");
        for (place, data) in places.into_iter().zip(data) {
            expected.entry(place.shard).or_default().push((place.position, data));
        }
    }
    let listed: BTreeSet<ShardId> = log.shards(STREAM).await.expect("shards").into_iter().map(|s| s.id).collect();
    for (shard, expected) in expected {
        assert!(listed.contains(&shard), "shard {shard} of an appended record is listed: {listed:?}");
        let read = read_records(log.as_ref(), &shard, ReadFrom::Oldest, expected.len()).await;
        let read: Vec<(Position, String)> = read.iter().map(|r| (r.position.clone(), text(r))).collect();
        assert_eq!(read, expected, "shard {shard} in append order, at the places append gave");
        assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "positions increase in shard {shard}");
    }
}

/// Records with one partition key land on one shard, request after request.
pub async fn one_partition_key_lands_on_one_shard(subject: &mut dyn Subject) {
    let log = subject.log();
    let mut shards = BTreeSet::new();
    for i in 0..5 {
        let places = log.append(STREAM, vec![record("restaurant-7", format!("{i}"), 1_000)]).await.expect("append");
        shards.insert(places[0].shard.clone());
    }
    assert_eq!(shards.len(), 1, "one key, one shard: {shards:?}");
}

/// What an append acknowledged is there after a restart.
pub async fn an_acknowledged_append_survives_a_restart(subject: &mut dyn Subject) {
    let (shard, positions) = append_numbered(subject.log().as_ref(), "durable", 3).await;
    subject.reopen().await;
    let log = subject.log();
    let read = read_records(log.as_ref(), &shard, ReadFrom::Oldest, 3).await;
    assert_eq!(read.iter().map(text).collect::<Vec<_>>(), ["durable-0", "durable-1", "durable-2"]);
    assert_eq!(read.iter().map(|r| r.position.clone()).collect::<Vec<_>>(), positions);
}

/// `At` starts with the record at the position, `After` with the one after it.
pub async fn a_read_starts_at_or_after_a_position(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "positions", 4).await;
    let at = read_records(log.as_ref(), &shard, ReadFrom::At(positions[1].clone()), 3).await;
    assert_eq!(at.iter().map(text).collect::<Vec<_>>(), ["positions-1", "positions-2", "positions-3"]);
    let after = read_records(log.as_ref(), &shard, ReadFrom::After(positions[1].clone()), 2).await;
    assert_eq!(after.iter().map(text).collect::<Vec<_>>(), ["positions-2", "positions-3"]);
    let past_the_end = log.read(STREAM, &shard, ReadFrom::After(positions[3].clone()), ALL).await.expect("read");
    assert!(past_the_end.records.is_empty(), "nothing after the last record: {past_the_end:?}");
}

/// A read returns at most `limits.records` records and stops before `limits.bytes`, but
/// a first record larger than the byte limit still comes, alone.
pub async fn a_read_keeps_within_its_limits_but_always_returns_a_large_first_record(subject: &mut dyn Subject) {
    let log = subject.log();
    let records = (0..5).map(|i| record("limits", format!("{i}{}", "x".repeat(99)), 1_000)).collect();
    let places = log.append(STREAM, records).await.expect("append");
    let shard = places[0].shard.clone();
    for limits in [ReadLimits { records: 2, bytes: usize::MAX }, ReadLimits { records: 10, bytes: 250 }] {
        let read = log.read(STREAM, &shard, ReadFrom::Oldest, limits).await.expect("read");
        assert!(read.records.len() <= 2, "{limits:?} gave {} records", read.records.len());
    }
    let none = log.read(STREAM, &shard, ReadFrom::Oldest, ReadLimits { records: 0, bytes: 1 << 20 }).await;
    assert!(none.expect("read").records.is_empty(), "a read of 0 records returns none");
    let mut first = Vec::new();
    for _ in 0..20 {
        let small = ReadLimits { records: 10, bytes: 10 };
        first = log.read(STREAM, &shard, ReadFrom::Oldest, small).await.expect("read").records;
        if !first.is_empty() {
            break;
        }
    }
    assert_eq!(first.len(), 1, "a 100-byte first record comes alone under a 10-byte limit");
    assert_eq!(first[0].data.len(), 100);
}

/// A finished commit moves the checkpoint to its last position with the state given; a
/// restarted consumer reads on after it.
pub async fn a_checkpoint_resumes_after_its_committed_position_across_a_restart(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "resume", 5).await;
    assert_eq!(log.checkpoint(CONSUMER, STREAM, &shard).await.expect("checkpoint"), None, "none before a commit");
    let range = CommitRange { first: positions[0].clone(), last: positions[2].clone() };
    let begun = log.begin_commit(CONSUMER, STREAM, &shard, range.clone()).await.expect("begin");
    assert_eq!(begun, range);
    log.finish_commit(CONSUMER, STREAM, &shard, range, b"state-after-2".to_vec()).await.expect("finish");
    drop(log);
    subject.reopen().await;
    let log = subject.log();
    let checkpoint = log.checkpoint(CONSUMER, STREAM, &shard).await.expect("checkpoint").expect("a checkpoint");
    assert_eq!(checkpoint.committed.as_ref(), Some(&positions[2]));
    assert_eq!(checkpoint.pending, None);
    assert_eq!(checkpoint.state, b"state-after-2");
    let rest = read_records(log.as_ref(), &shard, ReadFrom::after(checkpoint.committed.as_ref()), 2).await;
    assert_eq!(rest.iter().map(text).collect::<Vec<_>>(), ["resume-3", "resume-4"]);
}

/// `begin_commit` hands back the pending range, whatever it is asked for, until that range
/// is finished; finishing another range is refused. The pending range survives a restart.
pub async fn a_pending_commit_is_handed_back_until_it_is_finished(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "pending", 4).await;
    let first = CommitRange { first: positions[0].clone(), last: positions[1].clone() };
    let other = CommitRange { first: positions[0].clone(), last: positions[3].clone() };
    log.begin_commit(CONSUMER, STREAM, &shard, first.clone()).await.expect("begin");
    drop(log);
    subject.reopen().await;
    let log = subject.log();
    let pending = log.checkpoint(CONSUMER, STREAM, &shard).await.expect("checkpoint").expect("a checkpoint");
    assert_eq!(pending.pending.as_ref(), Some(&first), "the pending range survives a restart");
    assert_eq!(pending.committed, None);
    let again = log.begin_commit(CONSUMER, STREAM, &shard, other.clone()).await.expect("begin");
    assert_eq!(again, first, "the pending range is handed back");
    let refused = log.finish_commit(CONSUMER, STREAM, &shard, other, Vec::new()).await;
    assert!(refused.is_err(), "finishing a range that is not pending is refused");
    log.finish_commit(CONSUMER, STREAM, &shard, first, Vec::new()).await.expect("finish");
    let checkpoint = log.checkpoint(CONSUMER, STREAM, &shard).await.expect("checkpoint").expect("a checkpoint");
    assert_eq!(checkpoint.pending, None);
    assert_eq!(checkpoint.committed.as_ref(), Some(&positions[1]));
}

/// A commit may not start at or before the committed position, nor end before it starts.
pub async fn a_commit_over_committed_records_is_refused(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "refused", 4).await;
    let range = CommitRange { first: positions[0].clone(), last: positions[1].clone() };
    log.begin_commit(CONSUMER, STREAM, &shard, range.clone()).await.expect("begin");
    log.finish_commit(CONSUMER, STREAM, &shard, range, Vec::new()).await.expect("finish");
    for (first, last) in [(1, 2), (0, 3), (3, 2)] {
        let range = CommitRange { first: positions[first].clone(), last: positions[last].clone() };
        let refused = log.begin_commit(CONSUMER, STREAM, &shard, range.clone()).await;
        assert!(
            matches!(refused, Err(LogError::InvalidBatch { .. } | LogError::InvalidCommit { .. })),
            "commit {range} after committing up to {} must be refused: {refused:?}",
            positions[1]
        );
    }
}

/// Lag counts the records after a position; the backlog the records of a stream a
/// consumer has not committed. A log that cannot tell answers `None`.
pub async fn lag_and_backlog_count_what_follows_the_committed_position(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "lag", 5).await;
    if let Some(lag) = log.lag(STREAM, &shard, None).await.expect("lag") {
        assert_eq!(lag, 5, "everything is behind a consumer that committed nothing");
    }
    if let Some(lag) = log.lag(STREAM, &shard, Some(&positions[1])).await.expect("lag") {
        assert_eq!(lag, 3);
    }
    if let Some(lag) = log.lag(STREAM, &shard, Some(&positions[4])).await.expect("lag") {
        assert_eq!(lag, 0);
    }
    let range = CommitRange { first: positions[0].clone(), last: positions[3].clone() };
    log.begin_commit(CONSUMER, STREAM, &shard, range.clone()).await.expect("begin");
    log.finish_commit(CONSUMER, STREAM, &shard, range, Vec::new()).await.expect("finish");
    if let Some(backlog) = log.backlog(CONSUMER, STREAM).await.expect("backlog") {
        assert_eq!(backlog, 1, "one record of the stream is not committed");
    }
}

/// Shards are listed once each. A shard that ends (a split) is read to its last record
/// with `end_of_shard`, its children list it as a parent, and they become readable only
/// once it is finished. A log that cannot reshard lists open shards without parents, and
/// never reports the end of one.
pub async fn a_shard_that_ends_is_read_to_its_end_before_its_children(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, _) = append_numbered(log.as_ref(), "split", 3).await;
    let shards = log.shards(STREAM).await.expect("shards");
    let ids: BTreeSet<&ShardId> = shards.iter().map(|s| &s.id).collect();
    assert_eq!(ids.len(), shards.len(), "each shard listed once: {shards:?}");
    let Some(split) = subject.split(STREAM, &shard) else {
        assert!(shards.iter().all(|s| !s.ended && s.parents.is_empty()), "{shards:?}");
        let read = log.read(STREAM, &shard, ReadFrom::Oldest, ALL).await.expect("read");
        assert!(!read.end_of_shard, "an open shard has no end");
        return;
    };
    let children = split.await;
    assert!(!children.is_empty(), "a split gives children");
    let shards = log.shards(STREAM).await.expect("shards");
    let parent = shards.iter().find(|s| s.id == shard).expect("the ended shard is still listed while it holds records");
    assert!(parent.ended, "the split shard has ended: {parent:?}");
    for child in &children {
        let info = shards.iter().find(|s| &s.id == child).expect("each child is listed");
        assert!(info.parents.contains(&shard), "{child} lists {shard} as a parent: {info:?}");
    }
    let readable = readable_shards(&shards, &BTreeSet::new());
    assert!(readable.contains(&&shard) && children.iter().all(|c| !readable.contains(&c)), "parent first");
    let records = read_records(log.as_ref(), &shard, ReadFrom::Oldest, 3).await;
    assert_eq!(records.iter().map(text).collect::<Vec<_>>(), ["split-0", "split-1", "split-2"]);
    let last = records.last().map(|r| r.position.clone()).expect("records");
    let mut end = log.read(STREAM, &shard, ReadFrom::After(last.clone()), ALL).await.expect("read");
    for _ in 0..20 {
        if end.end_of_shard {
            break;
        }
        end = log.read(STREAM, &shard, ReadFrom::After(last.clone()), ALL).await.expect("read");
    }
    assert!(end.end_of_shard && end.records.is_empty(), "reading past the last record says the shard ended");
    let finished = BTreeSet::from([shard.clone()]);
    let readable = readable_shards(&shards, &finished);
    assert!(children.iter().all(|c| readable.contains(&c)), "children readable once the parent is finished");
    let places = log.append(STREAM, vec![record("split", "after".to_owned(), 5_000)]).await.expect("append");
    assert!(children.contains(&places[0].shard), "new records of the key go to a child: {places:?}");
}

/// Retention removes the oldest records of a shard; a read from the oldest then starts at
/// the first record kept, and a checkpoint before the removed records reads on from there.
pub async fn retention_removes_the_oldest_records_and_reads_skip_them(subject: &mut dyn Subject) {
    let log = subject.log();
    let (shard, positions) = append_numbered(log.as_ref(), "retention", 4).await;
    let Some(expire) = subject.expire_before(STREAM, 2_500) else {
        let all = read_records(log.as_ref(), &shard, ReadFrom::Oldest, 4).await;
        assert_eq!(all.len(), 4, "without retention every record stays");
        return;
    };
    expire.await;
    let kept = read_records(log.as_ref(), &shard, ReadFrom::Oldest, 2).await;
    assert_eq!(kept.iter().map(text).collect::<Vec<_>>(), ["retention-2", "retention-3"]);
    let from_removed = read_records(log.as_ref(), &shard, ReadFrom::At(positions[0].clone()), 2).await;
    assert_eq!(from_removed.iter().map(text).collect::<Vec<_>>(), ["retention-2", "retention-3"]);
    let range = CommitRange { first: positions[2].clone(), last: positions[3].clone() };
    log.begin_commit(CONSUMER, STREAM, &shard, range.clone()).await.expect("a commit may skip removed records");
    log.finish_commit(CONSUMER, STREAM, &shard, range, Vec::new()).await.expect("finish");
}
