//! The read API: serving lookups, free-text search and warehouse aggregates.
//!
//! - `GET /v1/serving/{table}/{key}`: the newest document for `key` (200, JSON), 404 for
//!   an unknown table or key. `Cache-Control: max-age` is the serving cache's TTL, `ETag`
//!   the version of the event that wrote the document (`If-None-Match` → 304), and
//!   `X-Weir-Cache: hit|miss` says whether the host's cache answered.
//! - `GET /v1/search/{index}?q=QUERY&limit=N`: `{"index","query","total","hits":[…]}`,
//!   best first (`limit` 10 by default, at most 1000); 400 with the reason for a query that
//!   does not parse.
//! - `GET /v1/aggregates/{stream}?key=K&from=T&to=T`: the stream's committed aggregates
//!   from the warehouse its aggregates are routed to, whose event time is in `[from, to)`
//!   (RFC 3339; both optional) and key is `key` (optional).
//! - `GET /v1/lake/{stream}/{kind}?after=CURSOR&since=DATE&limit=N`: what the lake holds
//!   of the stream (`raw`, `events`, `aggregates`, `dead-letters`), oldest first, a page
//!   at a time with the cursor of the next (see `weir_sinks::read_page`); dead letters
//!   filtered by `plugin`, `stage` and `reason`.

use std::sync::Arc;

use crate::api_error::ApiError;
use crate::state::Api;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_config::OutputKind;
use weir_sinks::{LakeObject, MAX_PAGE_ROWS, PageError, PageQuery, RowFilter, read_page};

/// Hits a search returns when the request gives no `limit`.
pub const DEFAULT_SEARCH_LIMIT: usize = 10;

/// The read routes, over a running pipeline.
pub(crate) fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(serving_lookup))
        .routes(routes!(search))
        .routes(routes!(aggregates))
        .routes(routes!(lake_page))
}

fn known(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
    if names.is_empty() { "none is configured".to_owned() } else { format!("this pipeline has: {}", names.join(", ")) }
}

#[utoipa::path(
    get,
    path = "/v1/serving/{table}/{key}",
    tag = "read",
    summary = "The newest document for a key",
    security((), ("bearer" = [])),
    params(
        ("table" = String, Path, description = "serving table"),
        ("key" = String, Path, description = "key"),
    ),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        (status = 304, description = "not modified (If-None-Match)"),
        crate::schemas::ReadRefusals,
    )
)]
async fn serving_lookup(
    State(pipeline): State<Arc<Api>>,
    Path((table, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let stores = pipeline.stores();
    let Some(reader) = stores.serving.get(&table) else {
        return Err(ApiError::not_found(format!("unknown serving table {table:?}; {}", known(stores.serving.keys()))));
    };
    let lookup = reader.lookup(&key).await?;
    let cache = if lookup.cached { "hit" } else { "miss" };
    pipeline.metrics().add("weir_serving_lookups_total", &[("table", &table), ("cache", cache)], 1);
    let max_age = format!("max-age={}", reader.cache_ttl().as_secs());
    let Some(document) = lookup.document else {
        let mut response =
            ApiError::not_found(format!("serving table {table:?} has no value for key {key:?}")).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_str(&max_age).expect("ascii"));
        response.headers_mut().insert("x-weir-cache", HeaderValue::from_static(cache));
        return Ok(response);
    };
    let etag = document.etag;
    let not_modified = headers.get(header::IF_NONE_MATCH).is_some_and(|tag| tag.as_bytes() == etag.as_bytes());
    let builder = Response::builder()
        .header(header::CACHE_CONTROL, max_age)
        .header(header::ETAG, etag)
        .header("x-weir-cache", cache);
    let response = if not_modified {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder.status(StatusCode::OK).header(header::CONTENT_TYPE, "application/json").body(Body::from(document.body))
    };
    response.map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/search/{index}",
    tag = "read",
    summary = "Full-text search (tantivy query syntax)",
    security((), ("bearer" = [])),
    params(
        ("index" = String, Path, description = "search index"),
        ("q" = Option<String>, Query, description = "query, e.g. müller or total:>=20"),
        ("limit" = Option<u64>, Query, description = "hits, 1 to 1000 (10)"),
    ),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::ReadRefusals,
    )
)]
async fn search(
    State(pipeline): State<Arc<Api>>,
    Path(index_name): Path<String>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let stores = pipeline.stores();
    let Some(index) = stores.search.get(&index_name).cloned() else {
        return Err(ApiError::not_found(format!(
            "unknown search index {index_name:?}; {}",
            known(stores.search.keys())
        )));
    };
    let Some(q) = query.q.filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "give a query: ?q=words, ?q=field:value, ?q=total:>=20 (tantivy query syntax)",
        ));
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_SEARCH_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=weir_search::MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {text:?} is not a number from 1 to {}",
                    weir_search::MAX_LIMIT
                )));
            }
        },
    };
    let answer = index.search(&q, limit).await?;
    pipeline.metrics().add("weir_search_queries_total", &[("index", &index_name)], 1);
    let body = json!({ "index": index_name, "query": q, "total": answer.total, "hits": answer.hits });
    Ok(axum::Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct AggregatesQuery {
    key: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/aggregates/{stream}",
    tag = "read",
    summary = "A stream's aggregates from the warehouse",
    security((), ("bearer" = [])),
    params(
        ("stream" = String, Path, description = "stream"),
        ("key" = Option<String>, Query, description = "group key"),
        ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
    ),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::ReadRefusals,
    )
)]
async fn aggregates(
    State(pipeline): State<Arc<Api>>,
    Path(stream): Path<String>,
    query: Result<Query<AggregatesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let stores = pipeline.stores();
    let Some(reader) = stores.aggregates.get(&stream) else {
        return Err(ApiError::not_found(format!(
            "no warehouse holds aggregates of stream {stream:?}; streams whose aggregates are routed to a warehouse: {}",
            known(stores.aggregates.keys())
        )));
    };
    let time = |name: &str, text: Option<&str>, default: i64| match text {
        None => Ok(default),
        Some(text) => weir_events::time::parse_rfc3339(text).map_err(|e| {
            ApiError::bad_request(format!(
                "{name}={text:?} is not a time: {e}; write RFC 3339, e.g. 2026-11-26T10:00:00Z"
            ))
        }),
    };
    let from = time("from", query.from.as_deref(), i64::MIN)?;
    let to = time("to", query.to.as_deref(), i64::MAX)?;
    let rows = reader.aggregates(&stream, query.key.as_deref(), from, to).await?;
    let body = json!({
        "stream": stream,
        "key": query.key,
        "from": query.from,
        "to": query.to,
        "rows": rows,
    });
    Ok(axum::Json(body).into_response())
}

/// A lake read's failure as an answer: the client's mistake, or the sink's (named).
pub(crate) fn lake_error(sink: &str, error: PageError) -> ApiError {
    match error {
        PageError::BadRequest(why) => ApiError::bad_request(why),
        PageError::Failed(why) => ApiError::internal(format!("sink {sink}: {why}")),
    }
}

#[derive(Debug, Deserialize)]
struct LakePageQuery {
    after: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    plugin: Option<String>,
    stage: Option<String>,
    reason: Option<String>,
}

/// The kinds `GET /v1/lake/{stream}/{kind}` reads, by their path segment.
const LAKE_KINDS: [(&str, OutputKind, LakeObject); 4] = [
    ("raw", OutputKind::Raw, LakeObject::Raw),
    ("events", OutputKind::Events, LakeObject::Events),
    ("aggregates", OutputKind::Aggregates, LakeObject::Aggregates),
    ("dead-letters", OutputKind::DeadLetters, LakeObject::DeadLetters),
];

/// Rows a lake page holds when the request gives no `limit`.
pub const DEFAULT_LAKE_PAGE_ROWS: usize = 100;

#[utoipa::path(
    get,
    path = "/v1/lake/{stream}/{kind}",
    tag = "read",
    summary = "What the lake holds of a stream (raw records, events, aggregates or dead letters), oldest first, page by page",
    description = "Objects are read date by date, shard by shard, in log order. `next` is the cursor to pass as \
        `after` for the next page, and to poll with once `more` is false: a page after it holds only what was \
        committed since. Dead letters can be filtered by plugin (`name` or `name@version`), stage and reason text.",
    security((), ("bearer" = [])),
    params(
        ("stream" = String, Path, description = "stream"),
        ("kind" = String, Path, description = "raw, events, aggregates or dead-letters"),
        ("after" = Option<String>, Query, description = "the `next` of the previous page"),
        ("since" = Option<String>, Query, description = "first date to read without a cursor, YYYY-MM-DD (UTC)"),
        ("limit" = Option<u64>, Query, description = "rows, 1 to 1000 (100)"),
        ("plugin" = Option<String>, Query, description = "dead letters of this plugin: name or name@version"),
        ("stage" = Option<String>, Query, description = "dead letters of this stage: parse, enrich, aggregate, sink, …"),
        ("reason" = Option<String>, Query, description = "dead letters whose reason contains this text (any case)"),
    ),
    responses(
        (status = 200, description = "OK: {stream, kind, sink, rows, next, more}", body = crate::schemas::JsonObject),
        crate::schemas::ReadRefusals,
    )
)]
async fn lake_page(
    State(pipeline): State<Arc<Api>>,
    Path((stream, kind)): Path<(String, String)>,
    query: Result<Query<LakePageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Some(&(kind_name, output, object)) = LAKE_KINDS.iter().find(|(name, _, _)| *name == kind) else {
        return Err(ApiError::not_found(format!(
            "the lake has no {kind:.40?} of a stream; ask for one of: raw, events, aggregates, dead-letters"
        )));
    };
    let stores = pipeline.stores();
    let Some(route) = stores.lake.get(&(stream.clone(), output)) else {
        let streams = stores.lake.keys().filter(|(_, o)| *o == output).map(|(s, _)| s);
        return Err(ApiError::not_found(format!(
            "no lake or dead-letter sink holds the {} of stream {stream:?}; streams whose {} are routed to one: {}",
            output.describe(),
            output.describe(),
            known(streams)
        )));
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LAKE_PAGE_ROWS,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_ROWS).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {text:.40?} is not a number from 1 to {MAX_PAGE_ROWS}"
                )));
            }
        },
    };
    let filter = RowFilter { plugin: query.plugin, stage: query.stage, reason: query.reason };
    if output != OutputKind::DeadLetters && !filter.is_empty() {
        return Err(ApiError::bad_request(format!(
            "plugin, stage and reason filter dead letters; /v1/lake/{stream}/{kind_name} takes only after, since and limit"
        )));
    }
    let page_query = PageQuery { after: query.after, since: query.since, limit, filter };
    let page =
        read_page(route.store.as_ref(), object, &stream, &page_query).await.map_err(|e| lake_error(&route.sink, e))?;
    let body = json!({
        "stream": stream,
        "kind": kind_name,
        "sink": route.sink,
        "rows": page.rows,
        "next": page.next,
        "more": page.more,
    });
    Ok(axum::Json(body).into_response())
}
