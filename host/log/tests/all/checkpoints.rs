use weir_log::{BatchRange, Checkpoint, LogError};

use crate::{data, open, record};

/// A log with `n` records of key "k" in stream "orders", and their shard.
fn log_with(dir: &std::path::Path, n: usize) -> (weir_log::EmbeddedLog, u32) {
    let log = open(dir);
    log.append("orders", (0..n).map(|i| record(Some("k"), &format!("r{i}"), 0)).collect()).unwrap();
    let shard = log.shard_for(Some("k"), b"");
    (log, shard)
}

#[test]
fn a_consumer_that_never_began_a_batch_has_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (log, shard) = log_with(dir.path(), 3);

    assert_eq!(log.checkpoint("archive", "orders", shard).unwrap(), None);
}

#[test]
fn commit_batch_moves_the_checkpoint_and_stores_state_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (log, shard) = log_with(dir.path(), 10);

    let range = log.begin_batch("stats", "orders", shard, 0, 4).unwrap();
    assert_eq!(range, BatchRange { first: 0, last: 4 });
    assert_eq!(
        log.checkpoint("stats", "orders", shard).unwrap(),
        Some(Checkpoint { next_seq: 0, pending: Some(range), state: vec![] }),
        "begun, not committed: the checkpoint has not moved"
    );
    log.commit_batch("stats", "orders", shard, range, b"window-state-1".to_vec()).unwrap();

    assert_eq!(
        log.checkpoint("stats", "orders", shard).unwrap(),
        Some(Checkpoint { next_seq: 5, pending: None, state: b"window-state-1".to_vec() })
    );
    let next = log.begin_batch("stats", "orders", shard, 5, 9).unwrap();
    assert_eq!(
        log.checkpoint("stats", "orders", shard).unwrap().unwrap().state,
        b"window-state-1",
        "kept while pending"
    );
    log.commit_batch("stats", "orders", shard, next, b"window-state-2".to_vec()).unwrap();
    assert_eq!(
        log.checkpoint("stats", "orders", shard).unwrap(),
        Some(Checkpoint { next_seq: 10, pending: None, state: b"window-state-2".to_vec() })
    );
    assert_eq!(log.next_seq("orders", shard).unwrap() - 10, 0, "no lag");
}

#[test]
fn a_pending_batch_is_returned_again_by_begin_batch_after_a_reopen_until_committed() {
    let dir = tempfile::tempdir().unwrap();
    let shard = {
        let (log, shard) = log_with(dir.path(), 10);
        log.begin_batch("archive", "orders", shard, 0, 3).unwrap();
        shard
        // Crash: the sinks may or may not have written 0..=3; nothing was committed.
    };

    let log = open(dir.path());

    let asked = log.begin_batch("archive", "orders", shard, 0, 9).unwrap();
    assert_eq!(asked, BatchRange { first: 0, last: 3 }, "the pending range, not the new one");
    assert_eq!(log.begin_batch("archive", "orders", shard, 0, 9).unwrap(), asked, "again, until committed");
    assert_eq!(log.begin_batch("archive", "orders", shard, 9, 0).unwrap(), asked, "whatever range is asked");
    let replay = log.read("orders", shard, asked.first, (asked.last - asked.first + 1) as usize, usize::MAX).unwrap();
    assert_eq!(data(&replay), ["r0", "r1", "r2", "r3"]);
    log.commit_batch("archive", "orders", shard, asked, vec![]).unwrap();
    assert_eq!(log.begin_batch("archive", "orders", shard, 4, 9).unwrap(), BatchRange { first: 4, last: 9 });
}

#[test]
fn committing_a_range_that_is_not_the_pending_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, shard) = log_with(dir.path(), 10);

    let none_pending = log.commit_batch("archive", "orders", shard, BatchRange { first: 0, last: 3 }, vec![]);
    let range = log.begin_batch("archive", "orders", shard, 0, 3).unwrap();
    let other = log.commit_batch("archive", "orders", shard, BatchRange { first: 0, last: 4 }, b"x".to_vec());

    let none_pending = none_pending.unwrap_err();
    assert!(matches!(none_pending, LogError::InvalidBatch { .. }), "{none_pending:?}");
    assert!(none_pending.to_string().contains("no batch is pending"), "{none_pending}");
    let other = other.unwrap_err();
    assert_eq!(
        other.to_string(),
        format!("consumer `archive` on stream `orders` shard {shard}: batch 0..=4 refused: the pending batch is 0..=3")
    );
    assert_eq!(
        log.checkpoint("archive", "orders", shard).unwrap(),
        Some(Checkpoint { next_seq: 0, pending: Some(range), state: vec![] }),
        "a refused commit changes nothing"
    );
}

#[test]
fn begin_batch_refuses_a_range_already_committed_or_not_yet_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (log, shard) = log_with(dir.path(), 10);
    let range = log.begin_batch("archive", "orders", shard, 0, 4).unwrap();
    log.commit_batch("archive", "orders", shard, range, vec![]).unwrap();

    let committed = log.begin_batch("archive", "orders", shard, 3, 6).unwrap_err();
    let beyond = log.begin_batch("archive", "orders", shard, 5, 10).unwrap_err();
    let reversed = log.begin_batch("archive", "orders", shard, 6, 5).unwrap_err();

    assert!(committed.to_string().contains("records before 5 were already committed"), "{committed}");
    assert!(beyond.to_string().contains("the shard's last record is 9"), "{beyond}");
    assert!(reversed.to_string().contains("first is after last"), "{reversed}");
    assert_eq!(log.checkpoint("archive", "orders", shard).unwrap().unwrap().pending, None);
}

#[test]
fn consumers_and_shards_keep_separate_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (log, shard) = log_with(dir.path(), 10);
    let other_shard = (shard + 1) % log.shards();

    let archive = log.begin_batch("archive", "orders", shard, 0, 9).unwrap();
    log.commit_batch("archive", "orders", shard, archive, b"a".to_vec()).unwrap();
    log.begin_batch("stats", "orders", shard, 0, 1).unwrap();

    assert_eq!(log.checkpoint("archive", "orders", shard).unwrap().unwrap().next_seq, 10);
    let stats = log.checkpoint("stats", "orders", shard).unwrap().unwrap();
    assert_eq!((stats.next_seq, stats.pending), (0, Some(BatchRange { first: 0, last: 1 })));
    assert_eq!(log.checkpoint("archive", "orders", other_shard).unwrap(), None);
    assert_eq!(log.checkpoint("archive", "clicks", shard).unwrap(), None);
}
