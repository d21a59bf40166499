//! A search index in Elasticsearch (or OpenSearch's compatible API), written with `_bulk`
//! and searched with `_search`, through the official `elasticsearch` crate.
//!
//! # Documents
//!
//! One document per event or aggregate, `_id` its record id (the same on every replay,
//! so a replay overwrites): the embedded index's document — `id`, `kind`, `key`, `time`,
//! `fields` (stored, not indexed: a stream's fields cannot fight over the mapping),
//! `lineage` — plus what queries use: `text` (every text value), one analysed field per
//! configured text field and one `double` per configured numeric field. The index is
//! created at start with that mapping (`dynamic: strict`) and an analyser that lowercases
//! and folds to ASCII, as the embedded index does.
//!
//! # Writes
//!
//! `_bulk` requests of at most [`MAX_BULK_DOCUMENTS`] documents and [`MAX_BULK_BYTES`],
//! `refresh=wait_for` (a commit is searchable when acknowledged). Every item's result is
//! read — a `200` can carry failures: an item refused for its content (`400`: a mapping
//! or parsing error) is rejected, dead-lettered with Elasticsearch's reason; any other
//! failed item (`429`, `5xx`, a `403` write block, a `404` missing index) is reported
//! failed and retried alone; the batch is never resent whole. A request answered `429`/`5xx` as a whole, or not answered, fails the call
//! (retried by delivery).

use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::indices::IndicesCreateParts;
use elasticsearch::params::Refresh;
use elasticsearch::{BulkParts, Elasticsearch, SearchParts};
use serde_json::{Value as Json, json};
use weir_events::Value;
use weir_sinks::{
    KeptRecord, PrepareFuture, Sink, SinkCommit, SinkError, SinkFuture, SinkItem, SinkRecord, WriteReport,
};

/// Documents per `_bulk` request, at most.
pub const MAX_BULK_DOCUMENTS: usize = 1000;
/// Bytes per `_bulk` request, at most (Elasticsearch refuses more than
/// `http.max_content_length`, 100 MB by default).
pub const MAX_BULK_BYTES: usize = 10 << 20;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variables credentials are read from.
pub const API_KEY_ENV: &str = "WEIR_ELASTICSEARCH_API_KEY";
/// With [`PASSWORD_ENV`]: basic authentication.
pub const USERNAME_ENV: &str = "WEIR_ELASTICSEARCH_USERNAME";
/// With [`USERNAME_ENV`].
pub const PASSWORD_ENV: &str = "WEIR_ELASTICSEARCH_PASSWORD";

/// Where an Elasticsearch index is and what it indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElasticSettings {
    /// The cluster's URL, `https://host:9200`.
    pub url: String,
    /// The index.
    pub index: String,
    /// Fields searchable by name.
    pub text_fields: Vec<String>,
    /// Fields filterable by range.
    pub numeric_fields: Vec<String>,
    /// Create the index when missing.
    pub create_index: bool,
}

/// What a search found: the total and the best hits, each the embedded index's document
/// with its `score`.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticAnswer {
    /// Documents matching.
    pub total: usize,
    /// The best ones first.
    pub hits: Vec<Json>,
}

/// Why a search failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElasticSearchError {
    /// Elasticsearch refused the query (`400`): the client's mistake.
    BadQuery(String),
    /// Anything else.
    Failed(String),
}

/// An Elasticsearch index: the sink that writes it and the searches that read it.
pub struct ElasticIndex {
    name: String,
    settings: ElasticSettings,
    client: Elasticsearch,
}

impl std::fmt::Debug for ElasticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticIndex").field("name", &self.name).field("settings", &self.settings).finish()
    }
}

/// What became of one document of a `_bulk` request.
enum ItemOutcome {
    Written,
    Retry(String),
    Refused(String),
}

impl ElasticIndex {
    /// The index `settings` describe, written by sink `name`; credentials from
    /// [`API_KEY_ENV`] or [`USERNAME_ENV`] and [`PASSWORD_ENV`], if set.
    ///
    /// # Errors
    /// The URL is not valid.
    pub fn new(name: &str, settings: ElasticSettings) -> Result<Self, String> {
        let url = Url::parse(&settings.url).map_err(|e| format!("{}: not a URL: {e}", settings.url))?;
        let mut transport =
            TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(REQUEST_TIMEOUT).disable_proxy();
        if let Ok(key) = std::env::var(API_KEY_ENV) {
            transport = transport.auth(Credentials::EncodedApiKey(key));
        } else if let (Ok(user), Ok(password)) = (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV)) {
            transport = transport.auth(Credentials::Basic(user, password));
        }
        let transport = transport.build().map_err(|e| format!("{}: {e}", settings.url))?;
        Ok(Self { name: name.to_owned(), settings, client: Elasticsearch::new(transport) })
    }

    fn target(&self) -> String {
        format!("Elasticsearch index {} at {}", self.settings.index, self.settings.url)
    }

    fn write_error(&self, why: impl std::fmt::Display) -> SinkError {
        SinkError::Write { sink: self.name.clone(), target: self.target(), source: why.to_string().into() }
    }

    /// The index's settings and mappings (see the module docs).
    pub fn index_body(&self) -> Json {
        let mut properties = serde_json::Map::new();
        for (name, mapping) in [
            ("id", json!({"type": "keyword"})),
            ("kind", json!({"type": "keyword"})),
            ("key", json!({"type": "keyword"})),
            ("time", json!({"type": "date", "format": "strict_date_optional_time"})),
            ("lineage", json!({"type": "keyword", "index": false})),
            ("fields", json!({"type": "object", "enabled": false})),
            ("text", json!({"type": "text", "analyzer": "weir_folding"})),
        ] {
            properties.insert(name.to_owned(), mapping);
        }
        for name in &self.settings.text_fields {
            properties.insert(name.clone(), json!({"type": "text", "analyzer": "weir_folding"}));
        }
        for name in &self.settings.numeric_fields {
            properties.insert(name.clone(), json!({"type": "double"}));
        }
        json!({
            "settings": {"analysis": {"analyzer": {"weir_folding": {
                "type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]
            }}}},
            "mappings": {"dynamic": "strict", "properties": properties}
        })
    }

    /// Creates the index when missing (an existing one is used as it is).
    ///
    /// # Errors
    /// Elasticsearch refused or could not be reached.
    pub async fn open(&self) -> Result<(), String> {
        if !self.settings.create_index {
            return Ok(());
        }
        let response = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&self.settings.index))
            .body(self.index_body())
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.settings.url))?;
        let status = response.status_code();
        let body: Json = response.json().await.unwrap_or(Json::Null);
        if status.is_success() || body["error"]["type"] == "resource_already_exists_exception" {
            return Ok(());
        }
        Err(format!("creating the index was refused ({status}): {}", reason_of(&body)))
    }

    /// The document of one event or aggregate (see the module docs).
    fn document(&self, id: &str, kind: &str, item: &weir_sinks::EventItem) -> Json {
        let event = &item.event;
        let json_event = weir_events::json::event_to_json(event);
        let mut document = json!({
            "id": id,
            "kind": kind,
            "key": event.key,
            "time": weir_events::time::format_rfc3339(event.time),
            "fields": json_event.get("fields").cloned().unwrap_or_default(),
            "lineage": item.lineage,
        });
        let mut text = Vec::new();
        for (name, value) in &event.fields {
            if let Value::Text(value) = value {
                text.push(Json::from(value.as_str()));
                if self.settings.text_fields.iter().any(|f| f == name.as_ref()) {
                    document[name.as_ref()] = Json::from(value.as_str());
                }
            }
            let number = match value {
                Value::Int(i) => Some(*i as f64),
                Value::Float(x) if x.is_finite() => Some(*x),
                _ => None,
            };
            if let Some(number) = number
                && self.settings.numeric_fields.iter().any(|f| f == name.as_ref())
            {
                document[name.as_ref()] = json!(number);
            }
        }
        document["text"] = Json::Array(text);
        document
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let mut report = WriteReport::all_written();
        // (index in the commit, action and document lines).
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (i, record) in commit.records.iter().enumerate() {
            let (kind, item) = match &record.item {
                SinkItem::Event(item) => ("event", item),
                SinkItem::Aggregate(item) => ("aggregate", item),
                _ => continue,
            };
            let action = json!({"index": {"_index": self.settings.index, "_id": record.id}});
            let document = self.document(&record.id, kind, item);
            let line = format!("{action}\n{document}\n");
            if line.len() > MAX_BULK_BYTES {
                report.rejected.push((
                    i,
                    format!("its document is {} bytes, over the {MAX_BULK_BYTES} of one _bulk request", line.len()),
                ));
                continue;
            }
            lines.push((i, line));
        }
        self.send_lines(&lines, &mut report).await?;
        Ok(report)
    }

    /// Removes the documents under `kept`'s ids with `delete` actions: one the index does
    /// not hold (`404`) is removed already.
    async fn remove_kept(&self, kept: &[KeptRecord]) -> Result<WriteReport, SinkError> {
        let lines: Vec<(usize, String)> = kept
            .iter()
            .enumerate()
            .map(|(i, k)| (i, format!("{}\n", json!({"delete": {"_index": self.settings.index, "_id": k.key}}))))
            .collect();
        let mut report = WriteReport::all_written();
        self.send_lines(&lines, &mut report).await?;
        Ok(report)
    }

    /// Sends `lines` (index, action and document lines) in `_bulk` requests of at most
    /// [`MAX_BULK_DOCUMENTS`] and [`MAX_BULK_BYTES`], noting each line's outcome in `report`.
    async fn send_lines(&self, lines: &[(usize, String)], report: &mut WriteReport) -> Result<(), SinkError> {
        let mut start = 0;
        while start < lines.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < lines.len() && end - start < MAX_BULK_DOCUMENTS && bytes + lines[end].1.len() <= MAX_BULK_BYTES
            {
                bytes += lines[end].1.len();
                end += 1;
            }
            let chunk = &lines[start..end];
            let outcomes = self.bulk(chunk).await?;
            for ((index, _), outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    ItemOutcome::Written => {}
                    ItemOutcome::Retry(why) => report.failed.push((*index, why)),
                    ItemOutcome::Refused(why) => report.rejected.push((*index, why)),
                }
            }
            start = end;
        }
        Ok(())
    }

    /// One `_bulk` request: the outcome of each document, in order.
    async fn bulk(&self, chunk: &[(usize, String)]) -> Result<Vec<ItemOutcome>, SinkError> {
        let body: String = chunk.iter().map(|(_, line)| line.as_str()).collect();
        let response = self
            .client
            .bulk(BulkParts::None)
            .body(vec![body])
            .header(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))
            .refresh(Refresh::WaitFor)
            .send()
            .await
            .map_err(|e| self.write_error(format!("_bulk failed: {e}")))?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| self.write_error(format!("_bulk answer unreadable: {e}")))?;
        let answer: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if !status.is_success() {
            return Err(self.write_error(format!("_bulk answered {status}: {}", reason_of(&answer))));
        }
        let items = answer["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        if items.len() != chunk.len() {
            return Err(self.write_error(format!(
                "_bulk answered {} items for {} documents; retrying them all",
                items.len(),
                chunk.len()
            )));
        }
        Ok(items
            .iter()
            .map(|item| {
                let (action, result) = item
                    .as_object()
                    .and_then(|actions| actions.iter().next())
                    .map_or(("", &Json::Null), |(action, result)| (action.as_str(), result));
                let status = result["status"].as_u64().unwrap_or(0);
                if action == "delete" && status == 404 {
                    // Not there: removed already.
                    return ItemOutcome::Written;
                }
                let why = || format!("Elasticsearch answered {status}: {}", reason_of(result));
                // Only a 400 is about the document itself (a mapping or parsing error,
                // an illegal argument); anything else — 429, 5xx, a 403 write block, a
                // 404 missing index — is about the cluster, and retried.
                match status {
                    200..=299 => ItemOutcome::Written,
                    400 => ItemOutcome::Refused(why()),
                    _ => ItemOutcome::Retry(why()),
                }
            })
            .collect())
    }

    /// The `limit` best documents matching `query` (the query-string syntax of the
    /// embedded index, which Elasticsearch's `query_string` speaks too; `*` alone matches
    /// everything), with the exact total.
    ///
    /// # Errors
    /// [`ElasticSearchError::BadQuery`] when Elasticsearch refuses the query (`400`),
    /// [`ElasticSearchError::Failed`] otherwise.
    pub async fn search(&self, query: &str, limit: usize) -> Result<ElasticAnswer, ElasticSearchError> {
        let body = json!({ "query": query_dsl(query), "track_total_hits": true });
        let indices = [self.settings.index.as_str()];
        let response = self
            .client
            .search(SearchParts::Index(&indices))
            .body(body)
            .size(limit as i64)
            .send()
            .await
            .map_err(|e| ElasticSearchError::Failed(format!("{}: {e}", self.target())))?;
        let status = response.status_code();
        let answer: Json = response.json().await.unwrap_or(Json::Null);
        if status == StatusCode::BAD_REQUEST {
            return Err(ElasticSearchError::BadQuery(reason_of(&answer)));
        }
        if !status.is_success() {
            return Err(ElasticSearchError::Failed(format!(
                "{} answered {status}: {}",
                self.target(),
                reason_of(&answer)
            )));
        }
        let total = answer["hits"]["total"]["value"].as_u64().unwrap_or(0) as usize;
        let hits = answer["hits"]["hits"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|hit| {
                let source = &hit["_source"];
                json!({
                    "id": source["id"],
                    "kind": source["kind"],
                    "key": source["key"],
                    "time": source["time"],
                    "fields": source["fields"],
                    "lineage": source["lineage"],
                    "score": hit["_score"],
                })
            })
            .collect();
        Ok(ElasticAnswer { total, hits })
    }
}

/// The Elasticsearch query of a query string: `match_all` for `*`, else `query_string`
/// over `text` with AND between terms (as the embedded index).
pub fn query_dsl(query: &str) -> Json {
    if query.trim() == "*" {
        return json!({"match_all": {}});
    }
    json!({"query_string": {"query": query, "default_field": "text", "default_operator": "AND"}})
}

/// The `error.type: error.reason` of an Elasticsearch answer, or the answer itself cut
/// to 300 characters.
fn reason_of(answer: &Json) -> String {
    let error = &answer["error"];
    match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ => {
            let text = answer.to_string();
            text.chars().take(300).collect()
        }
    }
}

impl Sink for ElasticIndex {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }

    /// A document's `_id` is its record's id.
    fn kept_key(&self, record: &SinkRecord) -> Option<String> {
        matches!(record.item, SinkItem::Event(_) | SinkItem::Aggregate(_)).then(|| record.id.clone())
    }

    /// The `_id` is the record's, so a document under a kept id is always the kept record's.
    fn remove<'a>(&'a self, kept: &'a [KeptRecord]) -> SinkFuture<'a> {
        Box::pin(self.remove_kept(kept))
    }

    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(async move {
            self.open().await.map_err(|why| SinkError::Open {
                sink: self.name.clone(),
                location: self.target(),
                source: why.into(),
            })
        })
    }
}
