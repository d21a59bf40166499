use std::collections::BTreeSet;

use weir_log::{Appended, LogError};

use crate::{data, open, read_all, record};

#[test]
fn appended_records_read_back_in_order_with_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let shard = log.shard_for(Some("restaurant-7"), b"");

    let first = log.append("orders", vec![record(Some("restaurant-7"), "a", 1), record(Some("restaurant-7"), "b", 2)]);
    let second = log.append("orders", vec![record(Some("restaurant-7"), "c", 3)]);

    assert_eq!(first.unwrap(), [Appended { shard, seq: 0 }, Appended { shard, seq: 1 }]);
    assert_eq!(second.unwrap(), [Appended { shard, seq: 2 }]);
    let records = log.read("orders", shard, 0, 100, 1 << 20).unwrap();
    assert_eq!(data(&records), ["a", "b", "c"]);
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
    let first = &records[0];
    assert_eq!(
        (first.shard, first.partition_key.as_deref(), first.content_type.as_str(), first.arrival_time),
        (shard, Some("restaurant-7"), "application/json", 1)
    );
    assert_eq!(data(&log.read("orders", shard, 1, 100, 1 << 20).unwrap()), ["b", "c"]);
    assert_eq!(log.next_seq("orders", shard).unwrap(), 3);
}

#[test]
fn one_append_reports_shard_and_sequence_number_per_record_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let keys: Vec<String> = (0..20).map(|i| format!("restaurant-{i}")).collect();

    let appended = log.append("orders", keys.iter().map(|key| record(Some(key), key, 0)).collect()).unwrap();

    assert_eq!(appended.len(), keys.len());
    for (key, at) in keys.iter().zip(&appended) {
        assert_eq!(at.shard, log.shard_for(Some(key), b""));
        let stored = log.read("orders", at.shard, at.seq, 1, usize::MAX).unwrap();
        assert_eq!(data(&stored), [key.as_str()]);
    }
    let total: u64 = (0..log.shards()).map(|shard| log.next_seq("orders", shard).unwrap()).sum();
    assert_eq!(total, 20);
}

#[test]
fn read_respects_max_records_and_max_bytes_but_always_returns_at_least_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let big = "x".repeat(1000);
    let records = vec![record(Some("k"), &big, 0), record(Some("k"), "bb", 0), record(Some("k"), "cc", 0)];
    let shard = log.append("orders", records).unwrap()[0].shard;

    assert_eq!(log.read("orders", shard, 0, 2, usize::MAX).unwrap().len(), 2, "max_records");
    assert_eq!(data(&log.read("orders", shard, 1, 10, 4).unwrap()), ["bb", "cc"], "exactly max_bytes fits");
    assert_eq!(data(&log.read("orders", shard, 1, 10, 3).unwrap()), ["bb"], "max_bytes");
    assert_eq!(
        data(&log.read("orders", shard, 0, 10, 10).unwrap()),
        [big],
        "a record larger than max_bytes still comes"
    );
    assert!(log.read("orders", shard, 0, 0, usize::MAX).unwrap().is_empty(), "max_records 0");
}

#[test]
fn reading_past_the_end_or_an_unknown_stream_returns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let shard = log.append("orders", vec![record(Some("k"), "a", 0)]).unwrap()[0].shard;

    assert!(log.read("orders", shard, 1, 10, 1000).unwrap().is_empty());
    assert!(log.read("clicks", 0, 0, 10, 1000).unwrap().is_empty());
    assert_eq!(log.next_seq("clicks", 0).unwrap(), 0);
    assert_eq!(log.stored_bytes("clicks").unwrap(), 0);
}

#[test]
fn a_shard_beyond_the_shard_count_is_an_error_naming_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());

    let error = log.read("orders", 4, 0, 10, 1000).unwrap_err();

    assert!(matches!(error, LogError::NoSuchShard { shard: 4, shards: 4, .. }), "{error:?}");
    assert_eq!(error.to_string(), "stream `orders` has shards 0..4; there is no shard 4");
    assert!(matches!(log.append("", vec![record(None, "a", 0)]), Err(LogError::EmptyName { kind: "stream" })));
}

#[test]
fn streams_are_numbered_independently() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());

    log.append("orders", vec![record(Some("k"), "order", 0); 3]).unwrap();
    let clicks = log.append("clicks", vec![record(Some("k"), "click", 0)]).unwrap();

    assert_eq!(clicks[0].seq, 0);
    assert_eq!(data(&read_all(&log, "clicks")), ["click"]);
    assert_eq!(read_all(&log, "orders").len(), 3);
}

#[test]
fn concurrent_appends_get_distinct_gapless_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());

    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut appended = Vec::new();
                for i in 0..10 {
                    let records =
                        vec![record(Some("hot-key"), &format!("{t}-{i}-a"), 0), record(None, &format!("{t}-{i}-b"), 0)];
                    appended.extend(log.append("orders", records).unwrap());
                }
                appended
            })
        })
        .collect();
    let appended: Vec<Appended> = threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect();

    let distinct: BTreeSet<(u32, u64)> = appended.iter().map(|a| (a.shard, a.seq)).collect();
    assert_eq!(distinct.len(), 160, "no (shard, seq) given twice");
    for shard in 0..log.shards() {
        let seqs: Vec<u64> = read_all(&log, "orders").iter().filter(|r| r.shard == shard).map(|r| r.seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "shard {shard} has no gap");
    }
}

#[test]
fn stored_bytes_counts_the_records_of_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(log.stored_bytes("orders").unwrap(), 0);

    log.append("orders", (0..10).map(|i| record(Some(&i.to_string()), &"x".repeat(100), 0)).collect()).unwrap();

    let bytes = log.stored_bytes("orders").unwrap();
    assert!((1000..1500).contains(&bytes), "{bytes}: the payloads plus a little metadata");
}

#[test]
fn concurrent_appends_share_fsyncs_and_each_gets_its_own_positions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let (threads, appends_each) = (16, 20);
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));

    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let stream = if t % 2 == 0 { "orders" } else { "clicks" };
                let mut sent = Vec::new();
                for i in 0..appends_each {
                    let texts: Vec<String> = (0..3).map(|n| format!("{t}-{i}-{n}")).collect();
                    let records = texts.iter().map(|text| record(Some("hot-key"), text, 0)).collect();
                    let at = log.append(stream, records).unwrap();
                    // One append's records on one shard are contiguous and in order.
                    assert_eq!([at[1].seq, at[2].seq], [at[0].seq + 1, at[0].seq + 2], "append {t}-{i}");
                    sent.extend(texts.into_iter().zip(at).map(|(text, at)| (stream, text, at)));
                }
                sent
            })
        })
        .collect();
    let sent: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();

    // Every caller's positions hold exactly what that caller sent.
    for (stream, text, at) in &sent {
        let stored = log.read(stream, at.shard, at.seq, 1, usize::MAX).unwrap();
        assert_eq!(data(&stored), std::slice::from_ref(text), "{stream} {at:?}");
    }
    assert_eq!(read_all(&log, "orders").len() + read_all(&log, "clicks").len(), threads * appends_each * 3);
    let appends = (threads * appends_each) as u64;
    assert!(
        log.append_transactions() < appends,
        "{} transactions for {appends} concurrent appends: none shared an fsync",
        log.append_transactions()
    );
}

#[test]
fn keyless_records_land_on_the_shard_of_their_data_when_appends_share_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let start = std::sync::Arc::new(std::sync::Barrier::new(8));

    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut sent = Vec::new();
                for i in 0..20 {
                    let texts: Vec<String> = (0..5).map(|n| format!("order {t}-{i}-{n}")).collect();
                    let at = log.append("orders", texts.iter().map(|text| record(None, text, 0)).collect()).unwrap();
                    sent.extend(texts.into_iter().zip(at));
                }
                sent
            })
        })
        .collect();
    let sent: Vec<(String, Appended)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();

    let shards: BTreeSet<u32> = sent.iter().map(|(_, at)| at.shard).collect();
    assert_eq!(shards.len(), log.shards() as usize, "keyless records spread over every shard");
    for (text, at) in &sent {
        assert_eq!(at.shard, log.shard_for(None, text.as_bytes()), "{text}");
        assert_eq!(data(&log.read("orders", at.shard, at.seq, 1, usize::MAX).unwrap()), std::slice::from_ref(text));
    }
    assert!(log.append_transactions() < 160, "{} transactions: no append shared one", log.append_transactions());
}
