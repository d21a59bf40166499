//! `type = "lake"`: the data lake in a local directory — the raw archive as NDJSON,
//! events and aggregates as Parquet.

use std::sync::Arc;

use weir_sinks::{LakeSink, Sink};

use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType, StoreLocation};

use crate::connector::{Connector, SinkContext, open_store, settings_of};

pub(crate) struct Lake;

impl SinkKind for Lake {
    fn name(&self) -> &'static str {
        "lake"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Raw | OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "region", "endpoint", "path_style"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(LakeSettings { path: table.location("path", "lake") })
    }
}

/// The settings of a `lake` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSettings {
    /// `path`: the lake's root directory, resolved against `server.data_dir`. By default
    /// `lake`.
    pub path: StoreLocation,
}

impl SinkSettings for LakeSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Lake)
    }
}

impl Connector for Lake {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<LakeSettings>(name, settings)?;
        let store = open_store(name, &settings.path)?;
        context.stores.add_lake_layout(name, store.clone());
        Ok(Arc::new(LakeSink::new(name, store)))
    }
}
