//! `type = "serving"`: a table of the serving store (`<data_dir>/serving/serving.redb`,
//! one file shared by every serving sink): the newest event per key, for
//! `GET /v1/serving/{table}/{key}`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use weir_log::BoxFuture;
use weir_serving::{CacheSettings, ServingSink, ServingStore};
use weir_sinks::Sink;

use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType};

use crate::connector::{Connector, SinkContext, settings_of};
use crate::stores::{Lookup, ReadError, ServedDocument, ServingReader};

pub(crate) struct Serving;

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
        table.claim("serving table", &table_name, "give each serving sink its own table");
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
}

impl Connector for Serving {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<ServingSettings>(name, settings)?;
        let store = context.shared("serving-store", |config| {
            let cache = CacheSettings {
                max_entries: config.server.serving_cache_entries,
                ttl: config.server.serving_cache_ttl.0,
            };
            let path = config.server.data_dir.join("serving").join("serving.redb");
            ServingStore::open(&path, cache).with_context(|| format!("sink {name}"))
        })?;
        let reader = ServingTable::new(store.clone(), &settings.table);
        context.stores.add_serving_table(&settings.table, Arc::new(reader));
        Ok(Arc::new(ServingSink::new(name, &settings.table, settings.key_field.clone(), store)))
    }
}

/// A table of the embedded serving store.
#[derive(Debug)]
struct ServingTable {
    store: ServingStore,
    table: String,
}

impl ServingTable {
    fn new(store: ServingStore, table: &str) -> Self {
        Self { store, table: table.to_owned() }
    }
}

fn lookup_of(lookup: weir_serving::Lookup) -> Lookup {
    let document =
        lookup.document.map(|document| ServedDocument { etag: document.etag(), body: document.body.clone() });
    Lookup { document, cached: lookup.cached }
}

impl ServingReader for ServingTable {
    fn lookup<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Lookup, ReadError>> {
        Box::pin(async move {
            // A cache hit is answered without leaving the async worker; a miss reads the disk.
            if let Some(hit) = self.store.cached(&self.table, key) {
                return Ok(lookup_of(hit));
            }
            let (store, table, key) = (self.store.clone(), self.table.clone(), key.to_owned());
            let found = tokio::task::spawn_blocking(move || store.get(&table, &key))
                .await
                .map_err(|e| ReadError::Failed(format!("the serving lookup did not complete: {e}")))?;
            found.map(lookup_of).map_err(|e| ReadError::Failed(e.to_string()))
        })
    }

    fn cache_ttl(&self) -> Duration {
        self.store.cache_settings().ttl
    }
}
