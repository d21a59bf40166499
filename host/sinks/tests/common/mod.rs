//! Helpers shared by the sink tests.
#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use weir_events::Event;
use weir_sinks::{CommitId, DeadLetter, EventItem, RawItem, SinkCommit, SinkItem, SinkRecord};

/// 2026-11-26T10:15:00Z in microseconds.
pub const ARRIVAL: i64 = 1_795_688_100_000_000;

/// An empty commit of `orders/0003 [42..=57]` that arrived at [`ARRIVAL`].
pub fn commit() -> SinkCommit {
    SinkCommit { id: CommitId::log_range("orders", "3", "42", "57"), arrival_time: ARRIVAL, records: Vec::new() }
}

/// Appends `item` as output `output` of log record `seq`.
pub fn push(commit: &mut SinkCommit, seq: u64, output: usize, item: SinkItem) {
    let id = commit.id.record_id(&seq.to_string(), output);
    commit.records.push(SinkRecord { id, position: seq.to_string(), item });
}

pub fn raw(key: Option<&str>, data: &[u8]) -> SinkItem {
    SinkItem::Raw(RawItem {
        partition_key: key.map(str::to_owned),
        content_type: "text/csv".into(),
        arrival_time: ARRIVAL,
        data: data.to_vec(),
    })
}

pub fn event(event: Event) -> SinkItem {
    SinkItem::Event(Arc::new(EventItem { event, lineage: "orders-parser@1.0.0>restaurant-enricher@2.1.0".into() }))
}

pub fn aggregate(event: Event) -> SinkItem {
    SinkItem::Aggregate(Arc::new(EventItem { event, lineage: "restaurant-stats@1.0.0".into() }))
}

pub fn dead_letter(reason: &str, original: &[u8]) -> SinkItem {
    SinkItem::DeadLetter(DeadLetter {
        plugin: "orders-parser@1.0.0".into(),
        stage: "parse".into(),
        reason: reason.into(),
        original: original.to_vec(),
        content_type: "text/csv".into(),
        arrival_time: ARRIVAL,
    })
}

/// Every file under `root`, as sorted paths relative to it with `/` separators.
pub fn files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    let mut names: Vec<String> = out
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_str().unwrap())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    names.sort();
    names
}

/// The rows of a Parquet file, read back with the parquet crate's Arrow reader.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "one record batch expected in {}", path.display());
    batches.into_iter().next().unwrap()
}

/// The lines of an NDJSON file as JSON values.
pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}
