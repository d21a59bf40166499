//! `type = "search"`: a full-text index (`<data_dir>/search/<index>`), for
//! `GET /v1/search/{index}`.

use std::sync::Arc;

use anyhow::Context as _;
use weir_log::BoxFuture;
use weir_search::{IndexSettings, SearchError, SearchIndex, SearchSink};
use weir_sinks::Sink;

use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType};

use crate::connector::{Connector, SinkContext, settings_of};
use crate::stores::{ReadError, SearchAnswer, SearchReader};

/// Field names a search index uses itself (`weir_search::RESERVED_FIELDS`).
const RESERVED_FIELDS: [&str; 5] = ["id", "key", "kind", "time", "text"];

pub(crate) struct Search;

impl SinkKind for Search {
    fn name(&self) -> &'static str {
        "search"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["index", "text_fields", "numeric_fields"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let index = table.name_or_sink_name("index", "search index");
        table.claim("search index", &index, "give each search sink its own index");
        let text_fields = table.field_names("text_fields", &RESERVED_FIELDS, &[]);
        let numeric_fields = table.field_names("numeric_fields", &RESERVED_FIELDS, &text_fields);
        SinkConfig::new(SearchSettings { index, text_fields, numeric_fields })
    }
}

/// The settings of a `search` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSettings {
    /// `index`: the index's name in `GET /v1/search/{index}`. By default the sink's name.
    /// Its files are in `<data_dir>/search/<index>`.
    pub index: String,
    /// `text_fields`: text fields searchable by name (`restaurant_name:müller`); every
    /// text value is searchable without a name either way. By default none.
    pub text_fields: Vec<String>,
    /// `numeric_fields`: number fields filterable by range (`total:>=20`). By default
    /// none.
    pub numeric_fields: Vec<String>,
}

impl SinkSettings for SearchSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Search)
    }
}

impl Connector for Search {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let search = settings_of::<SearchSettings>(name, settings)?;
        let index_settings =
            IndexSettings { text_fields: search.text_fields.clone(), numeric_fields: search.numeric_fields.clone() };
        let path = context.config.server.data_dir.join("search").join(&search.index);
        let index = SearchIndex::open(&search.index, &path, &index_settings).with_context(|| format!("sink {name}"))?;
        let index = Arc::new(index);
        context.stores.add_search_index(&search.index, Arc::new(SearchIndexReader(index.clone())));
        Ok(Arc::new(SearchSink::new(name, index)))
    }
}

/// The embedded search index, shared with the sink that writes it.
#[derive(Debug)]
struct SearchIndexReader(Arc<SearchIndex>);

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
