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

use bytes::Bytes;
use object_store::ObjectStore;
use weir_config::OutputKind;
use weir_log::BoxFuture;

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
    /// Per stream and output, the store of the first sink of its route that keeps the
    /// lake's layout (a lake or dead-letter sink), for `GET /v1/lake/{stream}/{kind}`.
    pub lake: BTreeMap<(String, OutputKind), LakeRoute>,
    /// Per sink, its store when it keeps the lake's layout.
    lake_sinks: BTreeMap<String, Arc<dyn ObjectStore>>,
}

/// Where a stream's output of one kind is read back in the lake's layout.
#[derive(Debug, Clone)]
pub struct LakeRoute {
    /// The sink's name.
    pub sink: String,
    /// Its object store.
    pub store: Arc<dyn ObjectStore>,
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

    /// Registers sink `sink` as one writing the lake's layout (`<kind>/stream=…/date=…/…`).
    pub fn add_lake_layout(&mut self, sink: &str, store: Arc<dyn ObjectStore>) {
        self.lake_sinks.insert(sink.to_owned(), store);
    }

    /// Reads `stream`'s `output` back from the first of the sinks it `routes` it to that
    /// keeps the lake's layout.
    pub fn route_lake(&mut self, stream: &str, output: OutputKind, routes: &[String]) {
        if let Some((sink, store)) = routes.iter().find_map(|sink| Some((sink, self.lake_sinks.get(sink)?))) {
            let route = LakeRoute { sink: sink.clone(), store: store.clone() };
            self.lake.insert((stream.to_owned(), output), route);
        }
    }

    /// The reader of the first of `sinks` whose aggregates can be read back.
    pub fn aggregates_of_sinks(&self, sinks: &[String]) -> Option<Arc<dyn AggregatesReader>> {
        sinks.iter().find_map(|sink| self.aggregate_sinks.get(sink)).cloned()
    }

    /// Reads the aggregates of `stream` from the first of the sinks it `routes` them to
    /// that can be read back.
    pub fn route_aggregates(&mut self, stream: &str, routes: &[String]) {
        if let Some(reader) = routes.iter().find_map(|sink| self.aggregate_sinks.get(sink)) {
            self.aggregates.insert(stream.to_owned(), reader.clone());
        }
    }
}
