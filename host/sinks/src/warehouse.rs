//! The warehouse: events and aggregates as partitioned Parquet tables with commit markers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use object_store::ObjectStoreExt;
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::error::SinkError;
use crate::lake::local_store;
use crate::layout::{date_of, put_object};
use crate::sink::{EventItem, Sink, SinkCommit, SinkFuture, SinkItem, SinkRecord, WriteReport};
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

/// What a commit marker records: the files of one commit of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit, as [`SinkCommit::describe`] names it.
    pub commit: String,
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
/// Per table (`events` and `aggregates` of each stream) and commit it writes
/// - one Parquet file per UTC date of the rows' event times, at
///   `<table>/<stream>/date=<YYYY-MM-DD>/<shard:04>-<first_seq:020>-<last_seq:020>.parquet`
///   (Hive-style partitions, columns as in the lake: see the crate docs);
/// - then the commit marker `<table>/<stream>/_commits/<shard:04>-<first_seq:020>-<last_seq:020>.json`
///   listing those files ([`Commit`]).
///
/// Readers that honour markers ([`Warehouse::committed`], the aggregates API) never see
/// a commit half written. Names depend only on the commit's range, so a replay after a
/// crash overwrites the same files and marker: no duplicates, also for a reader that
/// globs every `*.parquet` (DuckDB: `read_parquet('<root>/aggregates/orders/*/*.parquet',
/// hive_partitioning = true, union_by_name = true)`).
#[derive(Debug, Clone)]
pub struct Warehouse {
    name: String,
    store: Arc<dyn ObjectStore>,
    decoded: Arc<Mutex<DecodedCommits>>,
    max_decoded_rows: usize,
}

/// Rows kept decoded for [`Warehouse::query`], at most.
const MAX_DECODED_ROWS: usize = 1_000_000;

/// The decoded rows of committed commits, by marker, so that a query reads and decodes
/// only the commits committed since the last one. A committed commit changes only when a
/// replay rewrites it, and a replay rewrites its marker last: a marker whose version (its
/// e-tag, else its modification time and size) differs is decoded again.
#[derive(Debug, Default)]
struct DecodedCommits {
    by_marker: HashMap<Path, (String, Arc<Vec<DecodedFile>>)>,
    rows: usize,
}

#[derive(Debug)]
struct DecodedFile {
    min_time: i64,
    max_time: i64,
    rows: Vec<DecodedRow>,
}

#[derive(Debug)]
struct DecodedRow {
    key: Option<String>,
    time: i64,
    json: Json,
}

impl Warehouse {
    /// A warehouse sink named `name` in `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self { name: name.into(), store, decoded: Arc::default(), max_decoded_rows: MAX_DECODED_ROWS }
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

    fn commit_name(commit: &SinkCommit) -> String {
        format!("{}-{}", commit.id.part_key(), commit.id.file_stem())
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let mut tables: BTreeMap<WarehouseTable, Vec<(usize, &SinkRecord, &EventItem)>> = BTreeMap::new();
        for (i, record) in commit.records.iter().enumerate() {
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
            if let Err(why) = self.write_table(commit, table, &rows).await? {
                report.failed.extend(rows.iter().map(|&(i, _, _)| (i, why.clone())));
            }
        }
        report.failed.sort_unstable_by_key(|(i, _)| *i);
        Ok(report)
    }

    /// Writes one table's rows of `commit`: the files, then the marker. `Ok(Err(why))` when
    /// a put failed (the rows are retried), `Err` when they cannot be encoded.
    async fn write_table(
        &self,
        commit: &SinkCommit,
        table: WarehouseTable,
        rows: &[(usize, &SinkRecord, &EventItem)],
    ) -> Result<Result<(), String>, SinkError> {
        let prefix = Self::table_prefix(table, commit.id.source());
        let name = Self::commit_name(commit);
        let mut by_date: BTreeMap<String, Vec<(&SinkRecord, &EventItem)>> = BTreeMap::new();
        for &(_, record, item) in rows {
            by_date.entry(date_of(item.event.time)).or_default().push((record, item));
        }
        let mut commit = Commit { commit: commit.describe(), files: Vec::new() };
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
        let mut files = Vec::new();
        for marker in self.markers(table, stream).await? {
            files.extend(self.commit(&marker.location).await?.files);
        }
        Ok(files)
    }

    /// The commit markers of a table of `stream`, in name order (shard, then range).
    async fn markers(&self, table: WarehouseTable, stream: &str) -> Result<Vec<ObjectMeta>, SinkError> {
        let markers = Self::table_prefix(table, stream).join("_commits");
        let listed = self.store.list_with_delimiter(Some(&markers)).await.map_err(|e| self.read_error(&markers, e))?;
        let mut objects: Vec<_> =
            listed.objects.into_iter().filter(|o| o.location.extension() == Some("json")).collect();
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    async fn commit(&self, marker: &Path) -> Result<Commit, SinkError> {
        let bytes = self.get(marker).await?;
        serde_json::from_slice(&bytes).map_err(|e| SinkError::Encode {
            sink: self.name.clone(),
            target: marker.to_string(),
            message: format!("the commit marker is not readable: {e}"),
        })
    }

    /// The committed rows of a table of `stream` whose key is `key` (when given) and whose
    /// event time is in `[from, to)`, as `{"id","key","time","seq","lineage","fields"}`, in
    /// file order. Batches decoded by an earlier query are not read again (up to
    /// 1 000 000 rows are kept decoded; beyond that, later commits are decoded per query,
    /// only the files whose time span meets the range).
    ///
    /// # Errors
    /// When a marker or file cannot be read or decoded.
    pub async fn query(
        &self,
        table: WarehouseTable,
        stream: &str,
        key: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<Json>, SinkError> {
        let markers = self.markers(table, stream).await?;
        let mut rows = Vec::new();
        for marker in &markers {
            let version = marker.e_tag.clone().unwrap_or_else(|| format!("{}-{}", marker.last_modified, marker.size));
            let cached = {
                let decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
                decoded.by_marker.get(&marker.location).filter(|(v, _)| *v == version).map(|(_, files)| files.clone())
            };
            let files = match cached {
                Some(files) => files,
                None => {
                    let room = {
                        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
                        // An outdated version of this commit (a replay rewrote it) goes first.
                        if let Some((_, old)) = decoded.by_marker.remove(&marker.location) {
                            decoded.rows -= old.iter().map(|f| f.rows.len()).sum::<usize>();
                        }
                        decoded.rows < self.max_decoded_rows
                    };
                    if room {
                        let files = Arc::new(self.decode(&marker.location, i64::MIN, i64::MAX).await?);
                        let count: usize = files.iter().map(|f| f.rows.len()).sum();
                        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
                        if decoded.rows + count <= self.max_decoded_rows
                            && !decoded.by_marker.contains_key(&marker.location)
                        {
                            decoded.by_marker.insert(marker.location.clone(), (version, files.clone()));
                            decoded.rows += count;
                        }
                        files
                    } else {
                        // The cache is full: decode only the files the range touches.
                        Arc::new(self.decode(&marker.location, from, to).await?)
                    }
                }
            };
            for file in files.iter().filter(|f| f.max_time >= from && f.min_time < to) {
                let matching = file
                    .rows
                    .iter()
                    .filter(|r| r.time >= from && r.time < to && key.is_none_or(|k| r.key.as_deref() == Some(k)));
                rows.extend(matching.map(|r| r.json.clone()));
            }
        }
        // Forget commits whose marker is gone.
        let listed: HashSet<&Path> = markers.iter().map(|m| &m.location).collect();
        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        let prefix = Self::table_prefix(table, stream);
        let gone: Vec<Path> =
            decoded.by_marker.keys().filter(|p| p.prefix_matches(&prefix) && !listed.contains(p)).cloned().collect();
        for path in gone {
            if let Some((_, files)) = decoded.by_marker.remove(&path) {
                decoded.rows -= files.iter().map(|f| f.rows.len()).sum::<usize>();
            }
        }
        Ok(rows)
    }

    /// Reads and decodes the rows of the commit committed by `marker`, in the files whose
    /// time span meets `[from, to)`.
    async fn decode(&self, marker: &Path, from: i64, to: i64) -> Result<Vec<DecodedFile>, SinkError> {
        let mut decoded = Vec::new();
        for file in self.commit(marker).await?.files {
            if file.max_time < from || file.min_time >= to {
                continue;
            }
            let bytes = self.get(&Path::from(file.path.as_str())).await?;
            let decode_error = |message: String| SinkError::Encode {
                sink: self.name.clone(),
                target: file.path.clone(),
                message: format!("cannot decode the Parquet file: {message}"),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|builder| builder.build())
                .map_err(|e| decode_error(e.to_string()))?;
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| decode_error(e.to_string()))?;
                rows.extend(rows_of(&batch).map_err(decode_error)?);
            }
            decoded.push(DecodedFile { min_time: file.min_time, max_time: file.max_time, rows });
        }
        Ok(decoded)
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

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }
}

/// The rows of a batch of the lake's or the warehouse's layout as JSON:
/// `{id, key, time, seq, lineage, fields}`.
pub(crate) fn json_rows_of(batch: &RecordBatch) -> Result<Vec<Json>, String> {
    Ok(rows_of(batch)?.into_iter().map(|row| row.json).collect())
}

/// The rows of `commit`, as JSON with their key and time.
fn rows_of(batch: &RecordBatch) -> Result<Vec<DecodedRow>, String> {
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| format!("no column {name}"));
    let ids = column("_id")?.as_string_opt::<i32>().ok_or("_id is not text")?;
    let keys = column("_key")?.as_string_opt::<i32>().ok_or("_key is not text")?;
    let times = column("_time")?.as_primitive_opt::<TimestampMicrosecondType>().ok_or("_time is not a timestamp")?;
    // Text since positions became opaque; files written by earlier builds hold a u64.
    let seq_column = column("_seq")?;
    let seq_at = |row: usize| -> Result<String, &'static str> {
        if let Some(text) = seq_column.as_string_opt::<i32>() {
            Ok(text.value(row).to_owned())
        } else if let Some(numbers) = seq_column.as_primitive_opt::<UInt64Type>() {
            Ok(numbers.value(row).to_string())
        } else {
            Err("_seq is neither text nor a u64")
        }
    };
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
        let mut fields = Map::new();
        for (name, column) in &field_columns {
            fields.insert((*name).to_owned(), cell(*column, row));
        }
        let json = json!({
            "id": ids.value(row),
            "key": row_key,
            "time": weir_events::time::format_rfc3339(time),
            "seq": weir_events::json::id_to_json(&seq_at(row)?),
            "lineage": lineages.value(row),
            "fields": fields,
        });
        rows.push(DecodedRow { key: row_key.map(str::to_owned), time, json });
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
    use crate::CommitId;

    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;

    fn aggregate(seq: u64, key: &str, time: i64, revenue: f64) -> SinkRecord {
        let fields = vec![(Name::from("orders"), Value::Int(2)), (Name::from("revenue"), Value::Float(revenue))];
        SinkRecord {
            id: commit_id(0).record_id(&seq.to_string(), 0),
            position: seq.to_string(),
            item: SinkItem::Aggregate(std::sync::Arc::new(EventItem {
                event: Event { key: Some(key.to_owned()), time, fields },
                lineage: "stats@1".to_owned(),
            })),
        }
    }

    fn commit_id(first_seq: u64) -> CommitId {
        CommitId::log_range("orders", "1", &first_seq.to_string(), &(first_seq + 9).to_string())
    }

    fn commit(first_seq: u64, records: Vec<SinkRecord>) -> SinkCommit {
        SinkCommit { id: commit_id(first_seq), arrival_time: 0, records }
    }

    fn revenue(rows: &[Json]) -> f64 {
        rows.iter().map(|r| r["fields"]["revenue"].as_f64().unwrap()).sum()
    }

    #[tokio::test]
    async fn writes_date_partitions_with_a_marker_and_a_replay_does_not_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local("warehouse", dir.path()).unwrap();
        let day = 20_000 * DAY;
        let first = commit(1, vec![aggregate(1, "r-1", day, 10.0), aggregate(2, "r-2", day + DAY, 5.5)]);
        assert!(warehouse.write(&first).await.unwrap().is_complete());
        assert!(warehouse.write(&first).await.unwrap().is_complete(), "a replay");
        let second = commit(11, vec![aggregate(11, "r-1", day + HOUR, 1.25)]);
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
        warehouse.write(&commit(1, vec![aggregate(1, "r-1", day, 10.0)])).await.unwrap();
        // A crash after the data file and before its marker.
        let marker = dir.path().join("aggregates/orders/_commits/0001-00000000000000000001-00000000000000000010.json");
        std::fs::remove_file(marker).unwrap();
        assert!(
            warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX).await.unwrap().is_empty()
        );
    }

    #[tokio::test]
    async fn a_query_reuses_decoded_batches_until_a_replay_or_a_lost_marker_changes_them() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local("warehouse", dir.path()).unwrap();
        let day = 20_000 * DAY;
        let all = || warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX);
        warehouse.write(&commit(1, vec![aggregate(1, "r-1", day, 10.0)])).await.unwrap();
        assert_eq!(revenue(&all().await.unwrap()), 10.0);
        warehouse.write(&commit(11, vec![aggregate(11, "r-2", day, 2.5)])).await.unwrap();
        assert_eq!(revenue(&all().await.unwrap()), 12.5, "a commit committed after the first query");
        assert_eq!(warehouse.decoded.lock().unwrap().rows, 2);

        // A replay whose plugin output changed rewrites the commit and its marker.
        warehouse.write(&commit(1, vec![aggregate(1, "r-1", day, 20.0)])).await.unwrap();
        assert_eq!(revenue(&all().await.unwrap()), 22.5, "the rewritten commit is decoded again");

        let marker = dir.path().join("aggregates/orders/_commits/0001-00000000000000000011-00000000000000000020.json");
        std::fs::remove_file(marker).unwrap();
        assert_eq!(revenue(&all().await.unwrap()), 20.0, "a commit without its marker is not served");
        assert_eq!(warehouse.decoded.lock().unwrap().rows, 1);
    }

    #[tokio::test]
    async fn past_its_row_limit_the_cache_keeps_what_it_has_and_queries_still_see_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut warehouse = Warehouse::local("warehouse", dir.path()).unwrap();
        warehouse.max_decoded_rows = 1;
        let day = 20_000 * DAY;
        warehouse.write(&commit(1, vec![aggregate(1, "r-1", day, 10.0)])).await.unwrap();
        warehouse.write(&commit(11, vec![aggregate(11, "r-1", day + DAY, 2.5)])).await.unwrap();

        let all = warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(revenue(&all), 12.5);
        assert_eq!(warehouse.decoded.lock().unwrap().rows, 1, "one row kept, the other decoded per query");
        let second_day =
            warehouse.query(WarehouseTable::Aggregates, "orders", Some("r-1"), day + DAY, day + 2 * DAY).await.unwrap();
        assert_eq!(revenue(&second_day), 2.5);

        // A rewritten cached commit is dropped from the cache and read afresh.
        warehouse.write(&commit(1, vec![aggregate(1, "r-1", day, 20.0)])).await.unwrap();
        let all = warehouse.query(WarehouseTable::Aggregates, "orders", None, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(revenue(&all), 22.5);
        assert_eq!(warehouse.decoded.lock().unwrap().rows, 1);
    }
}
