//! Moving a log file of format 1 (one redb value per record) into segments (format 2),
//! once, when a weir with format 2 opens it.
//!
//! The move runs in transactions of about [`CHUNK_BYTES`] of records each. Each moves the
//! table's first records into segments and removes them from it, so later transactions
//! reuse the pages earlier ones freed: one transaction for a 600 MB log left a 2.4 GB
//! file, chunks a 1.2 GB one (`examples/migrate_format_1.rs`; memory peaked at 1.1 GB
//! either way, redb's page cache). The first transaction marks the file format 2 with
//! [`MOVING_FORMAT_1_KEY`] set, so that an older weir refuses a half-moved file (it would
//! read it with its oldest records missing, and its consumers skip them); the last one
//! drops the old table and clears the mark. A move interrupted between two transactions
//! goes on at the next open, and the log is not used before it is done.

use redb::{ReadableTableMetadata, TableError, WriteTransaction};

use crate::segment::SegmentWriter;
use crate::tables::{FORMAT_VERSION, FORMAT_VERSION_KEY, Failure, MOVING_FORMAT_1_KEY, RECORDS_V1, SEGMENTS, SETTINGS};

/// About how many bytes of records one transaction of the move carries.
pub(crate) const CHUNK_BYTES: u64 = 64 << 20;

/// Moves the first records of the format-1 table, about `chunk_bytes` of them (always at
/// least one), into segments of consecutive sequence numbers, and removes them from it;
/// returns how many moved, 0 once the table is empty (or gone). Records are copied as they
/// are stored (their own encoding did not change); reading them checks them as before.
pub(crate) fn move_chunk(txn: &WriteTransaction, chunk_bytes: u64) -> Result<u64, Failure> {
    let mut records = match txn.open_table(RECORDS_V1) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let mut settings = txn.open_table(SETTINGS)?;
    settings.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
    settings.insert(MOVING_FORMAT_1_KEY, 1)?;
    let mut segments = txn.open_table(SEGMENTS)?;
    let mut writer = SegmentWriter::new();
    // The segment being written: its (stream, shard), first and next sequence numbers.
    let mut open: Option<(String, u32, u64, u64)> = None;
    let (mut moved, mut bytes) = (0, 0);
    while bytes < chunk_bytes {
        let Some((key, value)) = records.pop_first()? else { break };
        let (stream, shard, seq) = key.value();
        let continues = open.as_ref().is_some_and(|(open_stream, open_shard, _, next)| {
            open_stream == stream && *open_shard == shard && *next == seq
        });
        if !continues || writer.is_full() {
            if let Some((open_stream, open_shard, first, _)) = open.take() {
                segments.insert((open_stream.as_str(), open_shard, first), writer.finish())?;
                writer.clear();
            }
            open = Some((stream.to_owned(), shard, seq, seq));
        }
        bytes += writer.push_encoded(value.value());
        if let Some((_, _, _, next)) = open.as_mut() {
            *next = seq.saturating_add(1);
        }
        moved += 1;
    }
    if let Some((stream, shard, first, _)) = open {
        segments.insert((stream.as_str(), shard, first), writer.finish())?;
    }
    Ok(moved)
}

/// Ends the move once [`move_chunk`] found nothing left: drops the format-1 table and
/// clears the mark of a move in progress.
pub(crate) fn finish(txn: &WriteTransaction) -> Result<(), Failure> {
    let left = match txn.open_table(RECORDS_V1) {
        Ok(table) => table.len()?,
        Err(TableError::TableDoesNotExist(_)) => 0,
        Err(error) => return Err(error.into()),
    };
    if left > 0 {
        return Err(Failure::Storage(redb::Error::Io(std::io::Error::other(format!(
            "{left} records of log format 1 were not moved into segments"
        )))));
    }
    match txn.delete_table(RECORDS_V1) {
        Ok(_) | Err(TableError::TableDoesNotExist(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let mut settings = txn.open_table(SETTINGS)?;
    settings.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
    settings.remove(MOVING_FORMAT_1_KEY)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use redb::{Database, ReadableDatabase, ReadableTableMetadata};

    use crate::checkpoint::{self, Position};
    use crate::record;
    use crate::tables::{CHECKPOINTS, FORMAT_VERSION_KEY, SETTINGS, SHARDS, SHARDS_KEY, STATES};
    use crate::{EmbeddedLog, LogConfig, LogError, NewRecord};

    use super::*;

    fn order(text: &str) -> NewRecord {
        NewRecord {
            partition_key: Some(format!("key-{text}")),
            data: Bytes::from(text.to_owned()),
            content_type: "application/json".into(),
            arrival_time: 7,
        }
    }

    /// A log file as weir wrote it before segments: one value per record. Shard 0 of
    /// `orders` lost seqs 0..5 to retention; a consumer committed up to seq 6 there.
    fn write_format_1(path: &std::path::Path) -> u64 {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        let mut stored_bytes = 0;
        {
            let mut settings = txn.open_table(SETTINGS).unwrap();
            settings.insert(FORMAT_VERSION_KEY, 1).unwrap();
            settings.insert(SHARDS_KEY, 2).unwrap();
            let mut records = txn.open_table(RECORDS_V1).unwrap();
            let mut shards = txn.open_table(SHARDS).unwrap();
            for (stream, shard, seqs) in [("orders", 0, 5..10), ("orders", 1, 0..3), ("clicks", 0, 0..1)] {
                let mut bytes = 0;
                for seq in seqs.clone() {
                    let encoded = record::encode(&order(&format!("{stream}-{shard}-{seq}")));
                    bytes += encoded.len() as u64;
                    records.insert((stream, shard, seq), encoded.as_slice()).unwrap();
                }
                shards.insert((stream, shard), (seqs.end, bytes)).unwrap();
                if stream == "orders" {
                    stored_bytes += bytes;
                }
            }
            let position = checkpoint::encode(Position { next_seq: 7, pending: None });
            txn.open_table(CHECKPOINTS).unwrap().insert(("archive", "orders", 0), position.as_slice()).unwrap();
            txn.open_table(STATES).unwrap().insert(("archive", "orders", 0), b"state".as_slice()).unwrap();
        }
        txn.commit().unwrap();
        stored_bytes
    }

    fn texts(log: &EmbeddedLog, stream: &str, shard: u32, from: u64) -> Vec<(u64, String)> {
        let records = log.read(stream, shard, from, usize::MAX, usize::MAX).unwrap();
        records.into_iter().map(|r| (r.seq, String::from_utf8(r.data).unwrap())).collect()
    }

    #[test]
    fn a_format_1_file_is_moved_into_segments_when_opened_and_reads_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let stored_bytes = write_format_1(&path);
        let config = LogConfig { shards_per_stream: 2, ..LogConfig::default() };

        let log = EmbeddedLog::open(&path, config.clone()).unwrap();

        let orders_0: Vec<(u64, String)> = (5..10).map(|seq| (seq, format!("orders-0-{seq}"))).collect();
        assert_eq!(texts(&log, "orders", 0, 0), orders_0);
        assert_eq!(texts(&log, "orders", 0, 8), orders_0[3..]);
        assert_eq!(texts(&log, "orders", 1, 0), (0..3).map(|seq| (seq, format!("orders-1-{seq}"))).collect::<Vec<_>>());
        assert_eq!(texts(&log, "clicks", 0, 0), [(0, "clicks-0-0".to_owned())]);
        assert_eq!(log.stored_bytes("orders").unwrap(), stored_bytes);
        let checkpoint = log.checkpoint("archive", "orders", 0).unwrap().unwrap();
        assert_eq!((checkpoint.next_seq, checkpoint.state.as_slice()), (7, b"state".as_slice()));
        assert_eq!(log.backlog("archive", "orders").unwrap(), 3 + 3);
        let next = log.append("orders", vec![order("orders-0-10")]).unwrap()[0];
        assert_eq!(next.seq, if next.shard == 0 { 10 } else { 3 });
        drop(log);

        // The move happened once: the file is format 2 now, and the old table is gone.
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(SETTINGS).unwrap().get(FORMAT_VERSION_KEY).unwrap().unwrap().value(), 2);
        assert!(txn.open_table(RECORDS_V1).is_err(), "the format-1 table is dropped");
        assert_eq!(txn.open_table(SEGMENTS).unwrap().len().unwrap(), 4, "one segment per shard, plus the append");
        drop((txn, db));
        assert_eq!(
            EmbeddedLog::open(&path, config).unwrap().read("orders", 0, 0, 100, usize::MAX).unwrap().len(),
            5 + usize::from(next.shard == 0)
        );
    }

    #[test]
    fn a_move_interrupted_between_its_transactions_goes_on_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        write_format_1(&path);
        {
            // Two small transactions of the move, then the process stops.
            let db = Database::open(&path).unwrap();
            for _ in 0..2 {
                let txn = db.begin_write().unwrap();
                assert!(move_chunk(&txn, 1).unwrap() == 1, "a chunk moves at least one record");
                txn.commit().unwrap();
            }
            let txn = db.begin_read().unwrap();
            let settings = txn.open_table(SETTINGS).unwrap();
            assert_eq!(settings.get(FORMAT_VERSION_KEY).unwrap().unwrap().value(), 2, "older weirs refuse it");
            assert_eq!(settings.get(MOVING_FORMAT_1_KEY).unwrap().unwrap().value(), 1);
            assert_eq!(txn.open_table(SEGMENTS).unwrap().len().unwrap(), 2);
            assert_eq!(txn.open_table(RECORDS_V1).unwrap().len().unwrap(), 9 - 2);
        }

        let log = EmbeddedLog::open(&path, LogConfig { shards_per_stream: 2, ..LogConfig::default() }).unwrap();

        let orders_0: Vec<(u64, String)> = (5..10).map(|seq| (seq, format!("orders-0-{seq}"))).collect();
        assert_eq!(texts(&log, "orders", 0, 0), orders_0);
        assert_eq!(texts(&log, "orders", 0, 7), orders_0[2..]);
        assert_eq!(texts(&log, "orders", 1, 0), (0..3).map(|seq| (seq, format!("orders-1-{seq}"))).collect::<Vec<_>>());
        assert_eq!(texts(&log, "clicks", 0, 0), [(0, "clicks-0-0".to_owned())]);
        drop(log);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(SETTINGS).unwrap().get(MOVING_FORMAT_1_KEY).unwrap().is_none(), "the mark is cleared");
    }

    #[test]
    fn a_format_1_file_opened_with_another_shard_count_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        write_format_1(&path);

        let refused = EmbeddedLog::open(&path, LogConfig { shards_per_stream: 3, ..LogConfig::default() }).unwrap_err();

        assert!(matches!(refused, LogError::ShardCountMismatch { stored: 2, configured: 3, .. }), "{refused:?}");
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(SETTINGS).unwrap().get(FORMAT_VERSION_KEY).unwrap().unwrap().value(), 1);
        assert_eq!(txn.open_table(RECORDS_V1).unwrap().len().unwrap(), 9);
    }

    #[test]
    fn a_file_of_a_newer_format_is_refused_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(SETTINGS).unwrap().insert(FORMAT_VERSION_KEY, 3).unwrap();
            txn.commit().unwrap();
        }
        let refused = EmbeddedLog::open(&path, LogConfig::default()).unwrap_err();
        assert!(matches!(refused, LogError::UnsupportedFormat { found: 3, supported: 2, .. }), "{refused:?}");
    }
}
