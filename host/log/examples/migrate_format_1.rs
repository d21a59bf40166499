//! How long moving a format-1 log file (one redb value per record, before segments) into
//! segments takes, and how much memory it needs: the one-time cost of upgrading a host
//! whose log holds a day of records.
//!
//! ```sh
//! cargo run --release -p weir-log --example migrate_format_1 -- [RECORDS] [BYTES_PER_RECORD] [write|move] [FILE]
//! /usr/bin/time -f "%M KB peak, %e s" target/release/examples/migrate_format_1 1000000 500 write /var/tmp/log1.redb
//! /usr/bin/time -f "%M KB peak, %e s" target/release/examples/migrate_format_1 1000000 500 move /var/tmp/log1.redb
//! ```
//!
//! `write` writes a format-1 file of `RECORDS` records (4 shards, `BYTES_PER_RECORD` bytes
//! of data each) with redb directly, in the layout weir used before; `move` opens it with
//! `EmbeddedLog::open`, which moves the records, and reads every shard back to check the
//! count. Two processes, so that each one's peak memory is its own. Without a mode, both
//! in one process on a temporary file.

use std::time::Instant;

use redb::{Database, TableDefinition};
use weir_log::{EmbeddedLog, LogConfig};

const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("settings");
const RECORDS: TableDefinition<(&str, u32, u64), &[u8]> = TableDefinition::new("records");
const SHARDS: TableDefinition<(&str, u32), (u64, u64)> = TableDefinition::new("shards");
const SHARD_COUNT: u32 = 4;

/// A record in its format-1 encoding (host/log/src/record.rs): version, arrival time, no
/// partition key, content type, data.
fn encoded(data: &[u8]) -> Vec<u8> {
    let content_type = b"application/json";
    let mut out = vec![1];
    out.extend_from_slice(&1_764_150_900_000_000_i64.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&(content_type.len() as u32).to_le_bytes());
    out.extend_from_slice(content_type);
    out.extend_from_slice(data);
    out
}

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (records, bytes) = (arg(1, 200_000), arg(2, 500));
    let mode = std::env::args().nth(3).unwrap_or_default();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = std::env::args().nth(4).map_or_else(|| dir.path().join("log.redb"), Into::into);
    if mode != "move" {
        write_format_1(&path, records, bytes);
    }
    if mode != "write" {
        move_into_segments(&path, records);
    }
}

fn write_format_1(path: &std::path::Path, records: usize, bytes: usize) {
    let started = Instant::now();
    {
        let db = Database::create(path).expect("the file is created");
        let data = vec![b'x'; bytes];
        let per_shard = records.div_ceil(SHARD_COUNT as usize) as u64;
        for shard in 0..SHARD_COUNT {
            let txn = db.begin_write().expect("a write transaction");
            {
                let mut table = txn.open_table(RECORDS).expect("the records table");
                let value = encoded(&data);
                for seq in 0..per_shard {
                    table.insert(("orders", shard, seq), value.as_slice()).expect("a record is written");
                }
                let mut shards = txn.open_table(SHARDS).expect("the shards table");
                shards.insert(("orders", shard), (per_shard, per_shard * value.len() as u64)).expect("counters");
                let mut settings = txn.open_table(SETTINGS).expect("the settings table");
                settings.insert("format_version", 1).expect("the version");
                settings.insert("shards_per_stream", u64::from(SHARD_COUNT)).expect("the shard count");
            }
            txn.commit().expect("the transaction commits");
        }
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "format-1 file: {} records of {bytes} bytes, {:.0} MB, written in {:.1} s",
        records,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
}

fn move_into_segments(path: &std::path::Path, records: usize) {
    let started = Instant::now();
    let config = LogConfig { shards_per_stream: SHARD_COUNT, ..LogConfig::default() };
    let log = EmbeddedLog::open(path, config).expect("the log opens and moves its records");
    let moved = started.elapsed();
    let mut read = 0;
    for shard in 0..SHARD_COUNT {
        let mut from = 0;
        loop {
            let batch = log.read("orders", shard, from, 10_000, usize::MAX).expect("a read");
            let Some(last) = batch.last() else { break };
            from = last.seq + 1;
            read += batch.len();
        }
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "moved into segments in {:.1} s ({:.0} records/s); {read} records read back; file now {:.0} MB",
        moved.as_secs_f64(),
        read as f64 / moved.as_secs_f64(),
        size as f64 / 1e6
    );
    assert!(read >= records, "every record reads back");
}
