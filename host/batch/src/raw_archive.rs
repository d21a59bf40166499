//! Reading a stream's raw archive out of the lake with DataFusion: the NDJSON files under
//! `raw/stream=<stream>/`, pruned by their `date=` partition (the records' arrival date),
//! in log order.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine as _;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{JsonReadOptions, SessionContext};
use object_store::ObjectStore;
use weir_events::time::parse_rfc3339;
use weir_runtime::RawRecord;
use weir_sinks::date_of;

use crate::error::BatchError;

/// The URL the job's input lake is registered under in the DataFusion session.
pub(crate) const LAKE_URL: &str = "weir-lake://input";

/// A record of the raw archive.
#[derive(Debug, Clone)]
pub struct ArchivedRecord {
    /// Its id in the archive (`orders-0003-00000000000000000042-0`).
    pub id: String,
    /// The record as it was ingested.
    pub record: RawRecord,
}

/// Registers `store` as the lake the session reads (`weir-lake://input/…`).
pub(crate) fn register_lake(ctx: &SessionContext, store: Arc<dyn ObjectStore>) -> Result<(), BatchError> {
    let url = ObjectStoreUrl::parse(LAKE_URL).map_err(|e| BatchError::Engine(e.to_string()))?;
    ctx.register_object_store(url.as_ref(), store);
    Ok(())
}

/// Registers each of the job's `[[jobs.tables]]` as a table of the session, over the
/// lake registered by [`register_lake`].
pub(crate) async fn register_tables(ctx: &SessionContext, tables: &[weir_config::JobTable]) -> Result<(), BatchError> {
    use datafusion::prelude::ParquetReadOptions;
    for table in tables {
        let path = format!("{LAKE_URL}/{}/", table.path);
        let partitions: Vec<(String, DataType)> =
            table.partitions.iter().map(|p| (p.clone(), DataType::Utf8)).collect();
        let registered = match table.format {
            weir_config::TableFormat::Parquet => {
                let options = ParquetReadOptions { table_partition_cols: partitions, ..Default::default() };
                ctx.register_parquet(table.name.as_str(), &path, options).await
            }
            weir_config::TableFormat::Ndjson => {
                let options = JsonReadOptions::default().file_extension(".ndjson").table_partition_cols(partitions);
                ctx.register_json(table.name.as_str(), &path, options).await
            }
        };
        registered.map_err(|e| BatchError::Engine(format!("table {} ({}): {e}", table.name, table.path)))?;
    }
    Ok(())
}

/// The columns of a raw archive line the job needs; others (`stream`, `shard`, `seq`)
/// are not read.
fn archive_schema() -> Schema {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Schema::new(vec![
        text("id"),
        text("key"),
        text("content_type"),
        text("arrival_time"),
        text("data"),
        text("data_base64"),
    ])
}

/// The records of `stream` that arrived in `[from, to)`, in id order (per shard, log
/// order). Only the `date=` partitions the range touches are listed and read.
///
/// # Errors
/// The lake cannot be listed or read, or a line is not a raw archive line.
pub(crate) async fn read(
    ctx: &SessionContext,
    stream: &str,
    from: i64,
    to: i64,
) -> Result<Vec<ArchivedRecord>, BatchError> {
    let table = format!("raw_{}", stream.replace('-', "_"));
    let schema = archive_schema();
    let options = JsonReadOptions::default()
        .schema(&schema)
        .file_extension(".ndjson")
        .table_partition_cols(vec![("date".to_owned(), DataType::Utf8)]);
    let path = format!("{LAKE_URL}/raw/stream={stream}/");
    if ctx.table_exist(table.as_str()).map_err(engine)? {
        ctx.deregister_table(table.as_str()).map_err(engine)?;
    }
    ctx.register_json(table.as_str(), &path, options).await.map_err(engine)?;
    let (first_date, last_date) = (date_of(from), date_of(to.saturating_sub(1)));
    let sql = format!(
        "SELECT id, key, content_type, arrival_time, data, data_base64 FROM {table} \
         WHERE date >= '{first_date}' AND date <= '{last_date}' ORDER BY id"
    );
    let batches = match ctx.sql(&sql).await {
        Ok(frame) => frame.collect().await.map_err(engine)?,
        Err(e) => return Err(engine(e)),
    };
    let mut records = Vec::new();
    for batch in &batches {
        decode(batch, from, to, &mut records)?;
    }
    Ok(records)
}

fn decode(batch: &RecordBatch, from: i64, to: i64, out: &mut Vec<ArchivedRecord>) -> Result<(), BatchError> {
    let column = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>());
    let (Some(id), Some(key), Some(content_type), Some(arrival), Some(data), Some(data_base64)) = (
        column("id"),
        column("key"),
        column("content_type"),
        column("arrival_time"),
        column("data"),
        column("data_base64"),
    ) else {
        return Err(BatchError::Engine("the raw archive query lost a column".into()));
    };
    for row in 0..batch.num_rows() {
        let bad = |why: String| BatchError::Archive(format!("record {:?}: {why}", id.value(row)));
        if id.is_null(row) || arrival.is_null(row) {
            return Err(bad("a raw archive line without id or arrival_time".into()));
        }
        let arrival_time = parse_rfc3339(arrival.value(row)).map_err(bad)?;
        if arrival_time < from || arrival_time >= to {
            continue;
        }
        let payload = if !data.is_null(row) {
            data.value(row).as_bytes().to_vec()
        } else if !data_base64.is_null(row) {
            base64::engine::general_purpose::STANDARD
                .decode(data_base64.value(row))
                .map_err(|e| bad(format!("data_base64 is not base64: {e}")))?
        } else {
            Vec::new()
        };
        out.push(ArchivedRecord {
            id: id.value(row).to_owned(),
            record: RawRecord {
                data: payload,
                key: (!key.is_null(row)).then(|| key.value(row).to_owned()),
                content_type: if content_type.is_null(row) {
                    "application/octet-stream".to_owned()
                } else {
                    content_type.value(row).to_owned()
                },
                arrival_time,
            },
        });
    }
    Ok(())
}

fn engine(e: impl std::fmt::Display) -> BatchError {
    BatchError::Engine(e.to_string())
}
