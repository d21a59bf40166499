//! The read side: what the read API answers from, behind one trait per question —
//! serving lookups ([`ServingReader`]), free-text search ([`SearchReader`]) and
//! aggregates ([`AggregatesReader`]) — and the configured sinks, built by their
//! connectors, which register the readers of what they write.
//!
//! Today's implementations are the embedded stores: the redb serving store behind its
//! cache, the tantivy index and the Parquet warehouse. A production store (DynamoDB,
//! Elasticsearch, Redshift) is one more implementation, registered by its connector.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use weir_log::BoxFuture;
use weir_search::{SearchError, SearchIndex};
use weir_serving::ServingStore;
use weir_sinks::{Sink, Warehouse, WarehouseTable};

use crate::config::{OutputKind, PipelineConfig};
use crate::connectors::SinkContext;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request cannot be answered as asked (a query that does not parse): the
    /// client's mistake, with the reason.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error("{0}")]
    Failed(String),
}

/// A document read from a serving table.
#[derive(Debug, Clone)]
pub struct ServedDocument {
    /// The JSON document.
    pub body: Bytes,
    /// Its version, as an HTTP entity tag (`"<time>-<seq>"`).
    pub etag: String,
}

/// What a serving lookup found.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The document, or `None` when the key has none.
    pub document: Option<ServedDocument>,
    /// Whether this host's cache answered.
    pub cached: bool,
}

/// One serving table: the newest document per key.
pub trait ServingReader: Send + Sync + Debug {
    /// The document of `key`.
    fn lookup<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Lookup, ReadError>>;

    /// How long a reader may cache an answer (`Cache-Control: max-age`).
    fn cache_ttl(&self) -> Duration;
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    /// Documents matching, in all.
    pub total: usize,
    /// The best ones first, each a JSON document with its `score`.
    pub hits: Vec<serde_json::Value>,
}

/// One search index.
pub trait SearchReader: Send + Sync + Debug {
    /// The `limit` best documents matching `query`.
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> BoxFuture<'a, Result<SearchAnswer, ReadError>>;
}

/// Where a stream's aggregates are stored, for `GET /v1/aggregates/{stream}`.
pub trait AggregatesReader: Send + Sync + Debug {
    /// The committed aggregates of `stream` whose event time is in `[from, to)` (µs) and,
    /// with `key`, whose key is `key`.
    fn aggregates<'a>(
        &'a self,
        stream: &'a str,
        key: Option<&'a str>,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, ReadError>>;
}

/// What the read API reads, by name.
#[derive(Debug, Default)]
pub struct Stores {
    /// Serving tables by name.
    pub serving: BTreeMap<String, Arc<dyn ServingReader>>,
    /// Search indexes by name.
    pub search: BTreeMap<String, Arc<dyn SearchReader>>,
    /// Per stream, where its aggregates are read (the first sink of its aggregates route
    /// that can be read back).
    pub aggregates: BTreeMap<String, Arc<dyn AggregatesReader>>,
    /// Per sink, the reader of the aggregates it stores.
    aggregate_sinks: BTreeMap<String, Arc<dyn AggregatesReader>>,
}

impl Stores {
    /// Registers serving table `table`.
    pub fn add_serving_table(&mut self, table: &str, reader: Arc<dyn ServingReader>) {
        self.serving.insert(table.to_owned(), reader);
    }

    /// Registers search index `index`.
    pub fn add_search_index(&mut self, index: &str, reader: Arc<dyn SearchReader>) {
        self.search.insert(index.to_owned(), reader);
    }

    /// Registers sink `sink` as one whose aggregates can be read back.
    pub fn add_aggregates_reader(&mut self, sink: &str, reader: Arc<dyn AggregatesReader>) {
        self.aggregate_sinks.insert(sink.to_owned(), reader);
    }
}

/// The configured sinks, by name.
pub(crate) type SinksByName = BTreeMap<String, Arc<dyn Sink>>;

/// Builds every configured sink, by name, through its connector, and the stores behind
/// them.
///
/// # Errors
/// A sink that cannot be opened, naming it and its location.
pub(crate) fn build(config: &PipelineConfig) -> anyhow::Result<(SinksByName, Stores)> {
    let mut stores = Stores::default();
    let mut sinks: SinksByName = BTreeMap::new();
    {
        let mut context = SinkContext::new(config, &mut stores);
        for (name, sink) in &config.sinks {
            sinks.insert(name.clone(), sink.inner().build(name, &mut context)?);
        }
    }
    for stream in &config.streams {
        let routed = stream.routes.get(OutputKind::Aggregates);
        if let Some(reader) = routed.iter().find_map(|sink| stores.aggregate_sinks.get(sink)) {
            stores.aggregates.insert(stream.name.clone(), reader.clone());
        }
    }
    Ok((sinks, stores))
}

/// A table of the embedded serving store.
#[derive(Debug)]
pub(crate) struct ServingTable {
    store: ServingStore,
    table: String,
}

impl ServingTable {
    pub(crate) fn new(store: ServingStore, table: &str) -> Self {
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

/// The embedded search index, shared with the sink that writes it.
#[derive(Debug)]
pub(crate) struct SearchIndexReader(pub(crate) Arc<SearchIndex>);

impl SearchReader for SearchIndexReader {
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> BoxFuture<'a, Result<SearchAnswer, ReadError>> {
        Box::pin(async move {
            let index = self.0.clone();
            let query = query.to_owned();
            let results = tokio::task::spawn_blocking(move || index.search(&query, limit))
                .await
                .map_err(|e| ReadError::Failed(format!("the search did not complete: {e}")))?;
            match results {
                Ok(results) => {
                    let hits = results
                        .hits
                        .into_iter()
                        .map(|hit| {
                            let mut document = hit.document;
                            if let Some(object) = document.as_object_mut() {
                                object.insert("score".into(), serde_json::json!(hit.score));
                            }
                            document
                        })
                        .collect();
                    Ok(SearchAnswer { total: results.total, hits })
                }
                Err(e @ SearchError::Query { .. }) => Err(ReadError::BadRequest(e.to_string())),
                Err(e) => Err(ReadError::Failed(e.to_string())),
            }
        })
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
