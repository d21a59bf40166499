//! The warehouse: events and aggregates as partitioned Parquet tables with commit markers.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::{Path, PathPart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::error::SinkError;
use crate::lake::local_store;
use crate::layout::{date_of, put_object};
use crate::sink::{EventItem, Sink, SinkBatch, SinkFuture, SinkItem, SinkRecord, WriteReport};
use crate::table;

/// The two kinds of tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarehouseTable {
    /// `events/<stream>/…`: the stream's events.
    Events,
    /// `aggregates/<stream>/…`: the stream's aggregates.
    Aggregates,
}

impl WarehouseTable {
    /// `events` or `aggregates`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Aggregates => "aggregates",
        }
    }
}

/// What a commit marker records: the files of one batch of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The batch, as [`SinkBatch::describe`] names it.
    pub batch: String,
    /// The data files, relative to the warehouse root.
    pub files: Vec<CommittedFile>,
}

/// One data file of a [`Commit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    /// Its key, relative to the warehouse root.
    pub path: String,
    /// Its `date=` partition (UTC date of the rows' event times).
    pub date: String,
    /// Rows in it.
    pub rows: u64,
    /// Smallest and largest event time in it, microseconds since the Unix epoch.
    pub min_time: i64,
    /// See `min_time`.
    pub max_time: i64,
}

/// Events and aggregates as Parquet tables that query engines (DuckDB, Spark, Athena,
/// Redshift Spectrum) read directly, in an object store (the local filesystem by default).
///
/// Per table (`events` and `aggregates` of each stream) and batch it writes
/// - one Parquet file per UTC date of the rows' event times, at
///   `<table>/<stream>/date=<YYYY-MM-DD>/<shard:04>-<first_seq:020>-<last_seq:020>.parquet`
///   (Hive-style partitions, columns as in the lake: see the crate docs);
/// - then the commit marker `<table>/<stream>/_commits/<shard:04>-<first_seq:020>-<last_seq:020>.json`
///   listing those files ([`Commit`]).
///
/// Readers that honour markers ([`Warehouse::committed`], the aggregates API) never see
/// a batch half written. Names depend only on the batch's range, so a replay after a
/// crash overwrites the same files and marker: no duplicates, also for a reader that
/// globs every `*.parquet` (DuckDB: `read_parquet('<root>/aggregates/orders/*/*.parquet',
/// hive_partitioning = true, union_by_name = true)`).
#[derive(Debug, Clone)]
pub struct Warehouse {
    name: String,
    store: Arc<dyn ObjectStore>,
}

impl Warehouse {
    /// A warehouse sink named `name` in `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self { name: name.into(), store }
    }

    /// A warehouse sink named `name` in the directory `root` (created if missing).
    ///
    /// # Errors
    /// [`SinkError::Open`] when the directory cannot be created or used.
    pub fn local(name: &str, root: &FsPath) -> Result<Self, SinkError> {
        Ok(Self::new(name, local_store(name, root)?))
    }

    fn table_prefix(table: WarehouseTable, stream: &str) -> Path {
        Path::from_iter([PathPart::from(table.as_str()), PathPart::from(stream)])
    }

    fn batch_name(batch: &SinkBatch) -> String {
        format!("{:04}-{:020}-{:020}", batch.shard, batch.first_seq, batch.last_seq)
    }

    async fn write_batch(&self, batch: &SinkBatch) -> Result<WriteReport, SinkError> {
        let mut tables: BTreeMap<WarehouseTable, Vec<(usize, &SinkRecord, &EventItem)>> = BTreeMap::new();
        for (i, record) in batch.records.iter().enumerate() {
            match &record.item {
                SinkItem::Event(item) => tables.entry(WarehouseTable::Events).or_default().push((i, record, item)),
                SinkItem::Aggregate(item) => {
                    tables.entry(WarehouseTable::Aggregates).or_default().push((i, record, item));
                }
                SinkItem::Raw(_) | SinkItem::DeadLetter(_) => {}
            }
        }
        let mut report = WriteReport::all_written();
        for (table, rows) in tables {
            if let Err(why) = self.write_table(batch, table, &rows).await? {
                report.failed.extend(rows.iter().map(|&(i, _, _)| (i, why.clone())));
            }
        }
        report.failed.sort_unstable_by_key(|(i, _)| *i);
        Ok(report)
    }

    /// Writes one table's rows of `batch`: the files, then the marker. `Ok(Err(why))` when
    /// a put failed (the rows are retried), `Err` when they cannot be encoded.
    async fn write_table(
        &self,
        batch: &SinkBatch,
        table: WarehouseTable,
        rows: &[(usize, &SinkRecord, &EventItem)],
    ) -> Result<Result<(), String>, SinkError> {
        let prefix = Self::table_prefix(table, &batch.stream);
        let name = Self::batch_name(batch);
        let mut by_date: BTreeMap<String, Vec<(&SinkRecord, &EventItem)>> = BTreeMap::new();
        for &(_, record, item) in rows {
            by_date.entry(date_of(item.event.time)).or_default().push((record, item));
        }
        let mut commit = Commit { batch: batch.describe(), files: Vec::new() };
        for (date, rows) in by_date {
            let key = prefix.clone().join(format!("date={date}")).join(format!("{name}.parquet"));
            let bytes = table::parquet_file(&rows).map_err(|message| SinkError::Encode {
                sink: self.name.clone(),
                target: key.to_string(),
                message,
            })?;
            if let Err(e) = put_object(&self.name, self.store.as_ref(), &key, bytes).await {
                return Ok(Err(e.to_string()));
            }
            let times = rows.iter().map(|(_, item)| item.event.time);
            commit.files.push(CommittedFile {
                path: key.to_string(),
                date,
                rows: rows.len() as u64,
                min_time: times.clone().min().unwrap_or_default(),
                max_time: times.max().unwrap_or_default(),
            });
        }
        let marker = prefix.join("_commits").join(format!("{name}.json"));
        let body = serde_json::to_vec(&commit).map_err(|e| SinkError::Encode {
            sink: self.name.clone(),
            target: marker.to_string(),
            message: e.to_string(),
        })?;
        match put_object(&self.name, self.store.as_ref(), &marker, body).await {
            Ok(()) => Ok(Ok(())),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// The committed files of a table of `stream`, in marker-name order (shard, then range).
    ///
    /// # Errors
    /// When the store cannot be listed or a marker cannot be read.
    pub async fn committed(&self, table: WarehouseTable, stream: &str) -> Result<Vec<CommittedFile>, SinkError> {
        let markers = Self::table_prefix(table, stream).join("_commits");
        let listed = self.store.list_with_delimiter(Some(&markers)).await.map_err(|e| self.read_error(&markers, e))?;
        let mut objects: Vec<_> =
            listed.objects.into_iter().filter(|o| o.location.extension() == Some("json")).collect();
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut files = Vec::new();
        for object in objects {
            let bytes = self.get(&object.location).await?;
            let commit: Commit = serde_json::from_slice(&bytes).map_err(|e| SinkError::Encode {
                sink: self.name.clone(),
                target: object.location.to_string(),
                message: format!("the commit marker is not readable: {e}"),
            })?;
            files.extend(commit.files);
        }
        Ok(files)
    }

    /// The committed rows of a table of `stream` whose key is `key` (when given) and whose
    /// event time is in `[from, to)`, as `{"id","key","time","seq","lineage","fields"}`, in
    /// file order. Files whose time span misses the range are not read.
    ///
    /// # Errors
    /// When a file cannot be read or decoded.
    pub async fn query(
        &self,
        table: WarehouseTable,
        stream: &str,
        key: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<Json>, SinkError> {
        let mut rows = Vec::new();
        for file in self.committed(table, stream).await? {
            if file.max_time < from || file.min_time >= to {
                continue;
            }
            let location = Path::from(file.path.as_str());
            let bytes = self.get(&location).await?;
            let decode_error = |message: String| SinkError::Encode {
                sink: self.name.clone(),
                target: file.path.clone(),
                message: format!("cannot decode the Parquet file: {message}"),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|builder| builder.build())
                .map_err(|e| decode_error(e.to_string()))?;
            for batch in reader {
                let batch = batch.map_err(|e| decode_error(e.to_string()))?;
                rows.extend(rows_of(&batch, key, from, to).map_err(decode_error)?);
            }
        }
        Ok(rows)
    }

    async fn get(&self, location: &Path) -> Result<bytes::Bytes, SinkError> {
        let result = self.store.get(location).await.map_err(|e| self.read_error(location, e))?;
        result.bytes().await.map_err(|e| self.read_error(location, e))
    }

    fn read_error(&self, location: &Path, source: object_store::Error) -> SinkError {
        SinkError::Write { sink: self.name.clone(), target: format!("reading {location}"), source: Box::new(source) }
    }
}

impl Sink for Warehouse {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, batch: &'a SinkBatch) -> SinkFuture<'a> {
        Box::pin(self.write_batch(batch))
    }
}

/// The rows of `batch` matching `key` and `[from, to)`, as JSON.
fn rows_of(batch: &RecordBatch, key: Option<&str>, from: i64, to: i64) -> Result<Vec<Json>, String> {
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| format!("no column {name}"));
    let ids = column("_id")?.as_string_opt::<i32>().ok_or("_id is not text")?;
    let keys = column("_key")?.as_string_opt::<i32>().ok_or("_key is not text")?;
    let times = column("_time")?.as_primitive_opt::<TimestampMicrosecondType>().ok_or("_time is not a timestamp")?;
    let seqs = column("_seq")?.as_primitive_opt::<UInt64Type>().ok_or("_seq is not a u64")?;
    let lineages = column("_lineage")?.as_string_opt::<i32>().ok_or("_lineage is not text")?;
    let schema = batch.schema();
    let field_columns: Vec<(&str, &dyn Array)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .skip(5)
        .map(|(field, column)| (field.name().as_str(), column.as_ref()))
        .collect();
    let mut rows = Vec::new();
    for row in 0..batch.num_rows() {
        let row_key = keys.is_valid(row).then(|| keys.value(row));
        let time = times.value(row);
        if key.is_some_and(|k| row_key != Some(k)) || time < from || time >= to {
            continue;
        }
        let mut fields = Map::new();
        for (name, column) in &field_columns {
            fields.insert((*name).to_owned(), cell(*column, row));
        }
        rows.push(json!({
            "id": ids.value(row),
            "key": row_key,
            "time": weir_events::time::format_rfc3339(time),
            "seq": seqs.value(row),
            "lineage": lineages.value(row),
            "fields": fields,
        }));
    }
    Ok(rows)
}

/// One cell as JSON, in weir's JSON form of values (timestamps as `{"$timestamp": …}`,
/// bytes as `{"$bytes": hex}`).
fn cell(column: &dyn Array, row: usize) -> Json {
    if column.is_null(row) {
        return Json::Null;
    }
    match column.data_type() {
        DataType::Boolean => Json::Bool(column.as_boolean().value(row)),
        DataType::Int64 => json!(column.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => json!(column.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Json::String(column.as_string::<i32>().value(row).to_owned()),
        DataType::Binary => {
            let bytes = column.as_binary::<i32>().value(row);
            json!({ "$bytes": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() })
        }
        DataType::Timestamp(_, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(row);
            json!({ "$timestamp": weir_events::time::format_rfc3339(micros) })
        }
        other => Json::String(format!("<{other} column>")),
    }
}

#[cfg(test)]
mod tests {
    use weir_events::{Event, Name, Value};

    use super::*;

    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;

    fn aggregate(seq: u64, key: &str, time: i64, revenue: f64) -> SinkRecord {
        let fields = vec![(Name::from("orders"), Value::Int(2)), (Name::from("revenue"), Value::Float(revenue))];
        SinkRecord {
            id: SinkRecord::make_id("orders", 1, seq, 0),
            seq,
            item: SinkItem::Aggregate(EventItem {
                event: Event { key: Some(key.to_owned()), time, fields },
                lineage: "stats@1".to_owned(),
            }),
        }
    }

    fn batch(first_seq: u64, records: Vec<SinkRecord>) -> SinkBatch {
        let last_seq = first_seq + 9;
        SinkBatch { stream: "orders".into(), shard: 1, first_seq, last_seq, arrival_time: 0, records }
    }

    fn revenue(rows: &[Json]) -> f64 {
        rows.iter().map(|r| r["fields"]["revenue"].as_f64().unwrap()).sum()
    }

    #[tokio::test]
    async fn writes_date_partitions_with_a_marker_and_a_replay_does_not_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local("warehouse", dir.path()).unwrap();
        let day = 20_000 * DAY;
        let first = batch(1, vec![aggregate(1, "r-1", day, 10.0), aggregate(2, "r-2", day + DAY, 5.5)]);
        assert!(warehouse.write(&first).await.unwrap().is_complete());
        assert!(warehouse.write(&first).await.unwrap().is_complete(), "a replay");
        let second = batch(11, vec![aggregate(11, "r-1", day + HOUR, 1.25)]);
        assert!(warehouse.write(&second).await.unwrap().is_complete());

        let files = warehouse.committed(WarehouseTable::Aggregates, "orders").await.unwrap();
        let dates: Vec<&str> = files.iter().map(|f| f.date.as_str()).collect();
        assert_eq!(dates, ["2024-10-04", "2024-10-05", "2024-10-04"]);
        assert!(dir.path().join("aggregates/orders/date=2024-10-05").is_dir());
        assert!(
            dir.path().join("aggregates/orders/_commits/0001-00000000000000000001-00000000000000000010.json").is_file()
        );

        let all = warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!((all.len(), revenue(&all)), (3, 16.75));
        let r1 = warehouse.query(WarehouseTable::Aggregates, "orders", Some("r-1"), day, day + DAY).await.unwrap();
        assert_eq!((r1.len(), revenue(&r1)), (2, 11.25));
        let first_hour = warehouse.query(WarehouseTable::Aggregates, "orders", None, day, day + HOUR).await.unwrap();
        assert_eq!(first_hour.len(), 1);
        assert_eq!(first_hour[0]["lineage"], "stats@1");
        assert_eq!(first_hour[0]["fields"]["orders"], 2);
        assert!(warehouse.query(WarehouseTable::Events, "orders", None, i64::MIN, i64::MAX).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn files_without_a_marker_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local("warehouse", dir.path()).unwrap();
        let day = 20_000 * DAY;
        warehouse.write(&batch(1, vec![aggregate(1, "r-1", day, 10.0)])).await.unwrap();
        // A crash after the data file and before its marker.
        let marker = dir.path().join("aggregates/orders/_commits/0001-00000000000000000001-00000000000000000010.json");
        std::fs::remove_file(marker).unwrap();
        assert!(
            warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX).await.unwrap().is_empty()
        );
    }
}
