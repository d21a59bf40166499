//! `type = "elasticsearch"`: a search index in Elasticsearch (built only with the `aws`
//! feature, with the production stores), answered by `GET /v1/search/{index}` in the
//! embedded index's response shape.

use std::sync::Arc;

use weir_aws::{ElasticIndex, ElasticSearchError, ElasticSettings};
use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType};
use weir_log::BoxFuture;
use weir_sinks::Sink;

use crate::connector::{Connector, SinkContext, settings_of};
use crate::stores::{ReadError, SearchAnswer, SearchReader};

/// Field names a document uses itself.
const RESERVED_FIELDS: [&str; 7] = ["id", "key", "kind", "time", "text", "fields", "lineage"];

pub(crate) struct ElasticSearch;

impl SinkKind for ElasticSearch {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url", "index", "text_fields", "numeric_fields", "create_index"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let url = table.endpoint("url").unwrap_or_default();
        if url.is_empty() {
            table.problem("url", "give the cluster's url = \"https://host:9200\"");
        }
        let index = table.name_or_sink_name("index", "search index");
        table.claim("search index", &index, "give each search sink its own index");
        let text_fields = table.field_names("text_fields", &RESERVED_FIELDS, &[]);
        let numeric_fields = table.field_names("numeric_fields", &RESERVED_FIELDS, &text_fields);
        let create_index = table.boolean("create_index", true);
        SinkConfig::new(ElasticSinkSettings(ElasticSettings { url, index, text_fields, numeric_fields, create_index }))
    }
}

/// The settings of an `elasticsearch` sink: `url`, `index` (by default the sink's name),
/// `text_fields`, `numeric_fields` (as a `search` sink's) and `create_index` (default
/// `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticSinkSettings(pub ElasticSettings);

impl SinkSettings for ElasticSinkSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&ElasticSearch)
    }
}

impl Connector for ElasticSearch {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<ElasticSinkSettings>(name, settings)?;
        let index =
            Arc::new(ElasticIndex::new(name, settings.0.clone()).map_err(|e| anyhow::anyhow!("sink {name}: {e}"))?);
        context.stores.add_search_index(&settings.0.index, Arc::new(ElasticReader(index.clone())));
        Ok(index)
    }
}

/// Searches an Elasticsearch index, with the embedded index's bounds on queries.
#[derive(Debug)]
struct ElasticReader(Arc<ElasticIndex>);

impl SearchReader for ElasticReader {
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> BoxFuture<'a, Result<SearchAnswer, ReadError>> {
        Box::pin(async move {
            weir_search::check_query(query)
                .map_err(|reason| ReadError::BadRequest(format!("invalid query: {reason}")))?;
            let limit = limit.clamp(1, weir_search::MAX_LIMIT);
            match self.0.search(query, limit).await {
                Ok(answer) => Ok(SearchAnswer { total: answer.total, hits: answer.hits }),
                Err(ElasticSearchError::BadQuery(reason)) => {
                    Err(ReadError::BadRequest(format!("invalid query {query:?}: {reason}")))
                }
                Err(ElasticSearchError::Failed(reason)) => Err(ReadError::Failed(reason)),
            }
        })
    }
}
