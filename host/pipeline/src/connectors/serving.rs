//! `type = "serving"`: a table of the serving store (`<data_dir>/serving/serving.redb`,
//! one file shared by every serving sink): the newest event per key, for
//! `GET /v1/serving/{table}/{key}`.

use std::sync::Arc;

use anyhow::Context as _;
use weir_serving::{CacheSettings, ServingSink, ServingStore};
use weir_sinks::Sink;

use super::{SinkContext, SinkKind, SinkSettings};
use crate::config::{OutputKind, SinkConfig, SinkTable, SinkType};
use crate::stores::ServingTable;

pub(super) struct Serving;

impl SinkKind for Serving {
    fn name(&self) -> &'static str {
        "serving"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["table", "key_field"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let table_name = table.name_or_sink_name("table", "serving table");
        let key_field = table.string("key_field");
        SinkConfig::new(ServingSettings { table: table_name, key_field })
    }
}

/// The settings of a `serving` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingSettings {
    /// `table`: the table's name in `GET /v1/serving/{table}/{key}`. By default the
    /// sink's name.
    pub table: String,
    /// `key_field`: the event field whose value (text or integer) is the key. By default
    /// the event's key.
    pub key_field: Option<String>,
}

impl SinkSettings for ServingSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Serving)
    }

    fn build(&self, name: &str, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let store = context.shared("serving-store", |config| {
            let settings = CacheSettings {
                max_entries: config.server.serving_cache_entries,
                ttl: config.server.serving_cache_ttl.0,
            };
            let path = config.server.data_dir.join("serving").join("serving.redb");
            ServingStore::open(&path, settings).with_context(|| format!("sink {name}"))
        })?;
        let reader = ServingTable::new(store.clone(), &self.table);
        context.stores.add_serving_table(&self.table, Arc::new(reader));
        Ok(Arc::new(ServingSink::new(name, &self.table, self.key_field.clone(), store)))
    }
}
