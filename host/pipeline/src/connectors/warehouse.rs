//! `type = "warehouse"`: partitioned Parquet tables with commit markers in a local
//! directory, for query engines and `GET /v1/aggregates/{stream}`.

use std::path::PathBuf;
use std::sync::Arc;

use weir_sinks::{Sink, Warehouse};

use super::{SinkContext, SinkKind, SinkSettings, clean_up};
use crate::config::{OutputKind, SinkConfig, SinkTable, SinkType};

pub(super) struct WarehouseKind;

impl SinkKind for WarehouseKind {
    fn name(&self) -> &'static str {
        "warehouse"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(WarehouseSettings { path: table.directory("path", "warehouse") })
    }
}

/// The settings of a `warehouse` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseSettings {
    /// `path`: the root directory, resolved against `server.data_dir`. By default
    /// `warehouse`.
    pub path: PathBuf,
}

impl SinkSettings for WarehouseSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&WarehouseKind)
    }

    fn build(&self, name: &str, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        clean_up(name, &self.path)?;
        let warehouse = Warehouse::local(name, &self.path)?;
        context.stores.add_aggregates_reader(name, Arc::new(warehouse.clone()));
        Ok(Arc::new(warehouse))
    }
}
