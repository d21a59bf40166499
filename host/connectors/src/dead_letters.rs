//! `type = "dead-letters"`: records a plugin could not process, with the reason, as
//! NDJSON in a local directory (under `dead-letters/`, so it may share the lake's root).

use std::sync::Arc;

use weir_sinks::{DeadLetterSink, Sink};

use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType, StoreLocation};

use crate::connector::{Connector, SinkContext, open_store, settings_of};

pub(crate) struct DeadLetters;

impl SinkKind for DeadLetters {
    fn name(&self) -> &'static str {
        "dead-letters"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        output == OutputKind::DeadLetters
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "region", "endpoint", "path_style"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(DeadLetterSettings { path: table.location("path", "lake") })
    }
}

/// The settings of a `dead-letters` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    /// `path`: the root directory, resolved against `server.data_dir`. By default `lake`.
    pub path: StoreLocation,
}

impl SinkSettings for DeadLetterSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&DeadLetters)
    }
}

impl Connector for DeadLetters {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<DeadLetterSettings>(name, settings)?;
        let store = open_store(name, &settings.path)?;
        context.stores.add_lake_layout(name, store.clone());
        Ok(Arc::new(DeadLetterSink::new(name, store)))
    }
}
