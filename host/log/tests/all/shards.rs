use std::collections::BTreeSet;

use weir_log::{EmbeddedLog, LogConfig, fnv1a_64, shard_for};

use crate::{open, record};

#[test]
fn same_partition_key_always_lands_on_the_same_shard() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());

    let appended = log
        .append("orders", (0..10).map(|i| record(Some("restaurant-42"), &format!("{{\"order\":{i}}}"), i)).collect())
        .unwrap();

    let shard = log.shard_for(Some("restaurant-42"), b"");
    assert!(appended.iter().all(|a| a.shard == shard), "{appended:?}");
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        shard,
        log.shard_for(Some("restaurant-42"), b"other data"),
        "the data does not matter when there is a key"
    );
}

#[test]
fn shard_hashing_is_fnv1a_64_and_pinned_forever() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    // Logs on disk depend on these: a change here moves keys to other shards.
    assert_eq!(fnv1a_64(b"restaurant-42"), 0xadc0_f13f_710f_ef47);
    assert_eq!(shard_for(Some("restaurant-42"), b"", 4), 3);
    assert_eq!(shard_for(Some("restaurant-42"), b"", 16), 7);
    assert_eq!(shard_for(Some("customer-1001"), b"", 4), 2);
    assert_eq!(shard_for(None, b"{\"order\":1}", 4), 2);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open(dir.path()).shard_for(Some("restaurant-42"), b""), 3);
}

#[test]
fn a_record_without_key_lands_on_the_shard_of_its_content_so_a_replay_lands_there_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let request = vec![record(None, "{\"order\":1}", 0), record(None, "{\"order\":2}", 0)];

    let first = log.append("orders", request.clone()).unwrap();
    let replay = log.append("orders", request).unwrap();

    assert_eq!(first[0].shard, shard_for(None, b"{\"order\":1}", 4));
    assert_eq!(first.iter().map(|a| a.shard).collect::<Vec<_>>(), replay.iter().map(|a| a.shard).collect::<Vec<_>>());
}

#[test]
fn keys_spread_over_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        EmbeddedLog::open(&dir.path().join("log.redb"), LogConfig { shards_per_stream: 8, ..LogConfig::default() })
            .unwrap();

    let shards: BTreeSet<u32> = (0..200).map(|i| log.shard_for(Some(&format!("restaurant-{i}")), b"")).collect();

    assert_eq!(shards, (0..8).collect());
}
