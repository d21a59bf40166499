//! `type = "search"`: a full-text index (`<data_dir>/search/<index>`), for
//! `GET /v1/search/{index}`.

use std::sync::Arc;

use anyhow::Context as _;
use weir_search::{IndexSettings, SearchIndex, SearchSink};
use weir_sinks::Sink;

use super::{SinkContext, SinkKind, SinkSettings};
use crate::config::{OutputKind, SinkConfig, SinkTable, SinkType};
use crate::stores::SearchIndexReader;

/// Field names a search index uses itself (`weir_search::RESERVED_FIELDS`).
const RESERVED_FIELDS: [&str; 5] = ["id", "key", "kind", "time", "text"];

pub(super) struct Search;

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

    fn build(&self, name: &str, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings =
            IndexSettings { text_fields: self.text_fields.clone(), numeric_fields: self.numeric_fields.clone() };
        let path = context.config.server.data_dir.join("search").join(&self.index);
        let index = SearchIndex::open(&self.index, &path, &settings).with_context(|| format!("sink {name}"))?;
        let index = Arc::new(index);
        context.stores.add_search_index(&self.index, Arc::new(SearchIndexReader(index.clone())));
        Ok(Arc::new(SearchSink::new(name, index)))
    }
}
