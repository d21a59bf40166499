//! `type = "warehouse"`: partitioned Parquet tables with commit markers in a local
//! directory, for query engines and `GET /v1/aggregates/{stream}`.

use std::sync::Arc;

use weir_log::BoxFuture;
use weir_sinks::{Sink, Warehouse, WarehouseTable};

use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType, StoreLocation};

use crate::connector::{Connector, SinkContext, open_store, settings_of};
use crate::stores::{AggregatesReader, ReadError};

pub(crate) struct WarehouseKind;

impl SinkKind for WarehouseKind {
    fn name(&self) -> &'static str {
        "warehouse"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "region", "endpoint", "path_style"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(WarehouseSettings { path: table.location("path", "warehouse") })
    }
}

/// The settings of a `warehouse` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseSettings {
    /// `path`: the root directory, resolved against `server.data_dir`. By default
    /// `warehouse`.
    pub path: StoreLocation,
}

impl SinkSettings for WarehouseSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&WarehouseKind)
    }
}

impl Connector for WarehouseKind {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<WarehouseSettings>(name, settings)?;
        let store = open_store(name, &settings.path)?;
        let warehouse = Warehouse::new(name, store);
        context.stores.add_aggregates_reader(name, Arc::new(warehouse.clone()));
        Ok(Arc::new(warehouse))
    }
}

impl AggregatesReader for Warehouse {
    fn aggregates<'a>(
        &'a self,
        stream: &'a str,
        key: Option<&'a str>,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, ReadError>> {
        Box::pin(async move {
            self.query(WarehouseTable::Aggregates, stream, key, from, to)
                .await
                .map_err(|e| ReadError::Failed(e.to_string()))
        })
    }
}
