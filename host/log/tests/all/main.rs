//! The stream log's behaviour, one module per concept.

mod append;
mod checkpoints;
mod conformance;
mod durability;
mod retention;
mod segments;
mod shards;
mod subscribe;

use std::path::Path;

use weir_log::{EmbeddedLog, LogConfig, NewRecord, StoredRecord};

/// A log with the default configuration in `dir`.
fn open(dir: &Path) -> EmbeddedLog {
    EmbeddedLog::open(&dir.join("log.redb"), LogConfig::default()).unwrap()
}

/// A JSON record arriving at `arrival_time` µs.
fn record(partition_key: Option<&str>, data: &str, arrival_time: i64) -> NewRecord {
    NewRecord {
        partition_key: partition_key.map(str::to_owned),
        data: data.as_bytes().to_vec().into(),
        content_type: "application/json".into(),
        arrival_time,
    }
}

/// The data of `records`, as text.
fn data(records: &[StoredRecord]) -> Vec<String> {
    records.iter().map(|record| String::from_utf8(record.data.clone()).unwrap()).collect()
}

/// Every record of every shard of `stream`.
fn read_all(log: &EmbeddedLog, stream: &str) -> Vec<StoredRecord> {
    (0..log.shards()).flat_map(|shard| log.read(stream, shard, 0, usize::MAX, usize::MAX).unwrap()).collect()
}
