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
