//! The job's lake in the DataFusion session: the store the `[[jobs.tables]]` are read
//! from, and the raw archive's records. (The raw archive itself is read by the plugin
//! step, `chain_plan.rs`, from the `date=` partitions the period touches.)

use std::sync::Arc;

use arrow_schema::DataType;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{JsonReadOptions, SessionContext};
use object_store::ObjectStore;
use weir_runtime::RawRecord;

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

/// A file reference table (`{"key": document, …}`) as a table in memory: one row per key,
/// `_key` and one column per top-level member of the documents (a document that is not
/// an object is the column `value`), types inferred from the JSON.
fn reference_table(path: &std::path::Path) -> Result<datafusion::datasource::MemTable, String> {
    use datafusion::arrow::json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let object =
        document.as_object().ok_or_else(|| format!("{} is not a JSON object of key → document", path.display()))?;
    let rows: Vec<serde_json::Value> = object
        .iter()
        .map(|(key, value)| {
            let mut row = match value {
                serde_json::Value::Object(members) => members.clone(),
                other => serde_json::Map::from_iter([("value".to_owned(), other.clone())]),
            };
            row.insert("_key".to_owned(), serde_json::Value::String(key.clone()));
            serde_json::Value::Object(row)
        })
        .collect();
    let schema = Arc::new(infer_json_schema_from_iterator(rows.iter().map(Ok)).map_err(|e| e.to_string())?);
    let mut decoder = ReaderBuilder::new(schema.clone()).build_decoder().map_err(|e| e.to_string())?;
    decoder.serialize(&rows).map_err(|e| e.to_string())?;
    let batches: Vec<_> = decoder.flush().map_err(|e| e.to_string())?.into_iter().collect();
    datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(|e| e.to_string())
}

/// Registers each of the job's `[[jobs.tables]]` as a table of the session: a lake
/// prefix over the lake registered by [`register_lake`], or a file reference table.
pub(crate) async fn register_tables(
    ctx: &SessionContext,
    tables: &[weir_config::JobTable],
    references: &std::collections::BTreeMap<String, weir_config::ReferenceConfig>,
) -> Result<(), BatchError> {
    use datafusion::prelude::ParquetReadOptions;
    for table in tables {
        if let Some(reference) = &table.reference {
            let failed =
                |why: String| BatchError::Engine(format!("table {} (reference table {reference}): {why}", table.name));
            let Some(weir_config::ReferenceSource::File(path)) = references.get(reference).map(|r| &r.source) else {
                return Err(failed("not a file reference table of the configuration".to_owned()));
            };
            let memory = reference_table(path).map_err(failed)?;
            ctx.register_table(table.name.as_str(), Arc::new(memory)).map_err(|e| failed(e.to_string()))?;
            continue;
        }
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
