//! The configured sinks, and the stores behind the read API: the serving store, the
//! search indexes and the warehouses.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use weir_search::{IndexSettings, SearchIndex, SearchSink};
use weir_serving::{CacheSettings, ServingSink, ServingStore};
use weir_sinks::{DeadLetterSink, LakeSink, Sink, Warehouse};

use crate::config::{OutputKind, PipelineConfig, SinkConfig};

/// What the read API reads.
#[derive(Debug, Default)]
pub struct Stores {
    /// The serving store, when a serving sink is configured.
    pub serving: Option<ServingStore>,
    /// Serving tables written by a sink.
    pub serving_tables: Vec<String>,
    /// Search indexes by name.
    pub search: BTreeMap<String, Arc<SearchIndex>>,
    /// Per stream, the warehouse its aggregates are routed to (the first, if several).
    pub aggregates: BTreeMap<String, Warehouse>,
}

/// The configured sinks, by name.
pub(crate) type SinksByName = BTreeMap<String, Arc<dyn Sink>>;

/// Builds every configured sink, by name, and the stores behind them.
///
/// # Errors
/// A sink that cannot be opened, naming it and its location.
pub(crate) fn build(config: &PipelineConfig) -> anyhow::Result<(SinksByName, Stores)> {
    let data_dir = &config.server.data_dir;
    let mut stores = Stores::default();
    let mut sinks: BTreeMap<String, Arc<dyn Sink>> = BTreeMap::new();
    let mut warehouses: BTreeMap<String, Warehouse> = BTreeMap::new();
    for (name, sink) in &config.sinks {
        let built: Arc<dyn Sink> = match sink {
            SinkConfig::Lake { path } => {
                clean_up(name, path)?;
                Arc::new(LakeSink::local(name, path)?)
            }
            SinkConfig::DeadLetters { path } => {
                clean_up(name, path)?;
                Arc::new(DeadLetterSink::local(name, path)?)
            }
            SinkConfig::Warehouse { path } => {
                clean_up(name, path)?;
                let warehouse = Warehouse::local(name, path)?;
                warehouses.insert(name.clone(), warehouse.clone());
                Arc::new(warehouse)
            }
            SinkConfig::Serving { table, key_field } => {
                let store = match &stores.serving {
                    Some(store) => store.clone(),
                    None => {
                        let settings = CacheSettings {
                            max_entries: config.server.serving_cache_entries,
                            ttl: config.server.serving_cache_ttl.0,
                        };
                        let path = data_dir.join("serving").join("serving.redb");
                        let store = ServingStore::open(&path, settings).with_context(|| format!("sink {name}"))?;
                        stores.serving = Some(store.clone());
                        store
                    }
                };
                stores.serving_tables.push(table.clone());
                Arc::new(ServingSink::new(name, table, key_field.clone(), store))
            }
            SinkConfig::Search { index, text_fields, numeric_fields } => {
                let settings =
                    IndexSettings { text_fields: text_fields.clone(), numeric_fields: numeric_fields.clone() };
                let path = data_dir.join("search").join(index);
                let opened = SearchIndex::open(index, &path, &settings).with_context(|| format!("sink {name}"))?;
                let opened = Arc::new(opened);
                stores.search.insert(index.clone(), opened.clone());
                Arc::new(SearchSink::new(name, opened))
            }
        };
        sinks.insert(name.clone(), built);
    }
    stores.serving_tables.sort();
    stores.serving_tables.dedup();
    for stream in &config.streams {
        let routed = stream.routes.get(OutputKind::Aggregates);
        if let Some(warehouse) = routed.iter().find_map(|sink| warehouses.get(sink)) {
            stores.aggregates.insert(stream.name.clone(), warehouse.clone());
        }
    }
    Ok((sinks, stores))
}

/// Removes what writes a crash interrupted left in a local sink's directory.
fn clean_up(name: &str, path: &Path) -> anyhow::Result<()> {
    let removed = weir_sinks::remove_interrupted_writes(path)
        .with_context(|| format!("cannot clean up sink {name} at {}", path.display()))?;
    if removed > 0 {
        tracing::warn!(sink = %name, "removed {removed} files left by writes a crash interrupted");
    }
    Ok(())
}
