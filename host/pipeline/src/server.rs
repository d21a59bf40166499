//! The HTTP surface: ingest, metrics and health, and the read API ([`crate::read_api`]). One `app()` serves `weir serve` and the
//! tests.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use weir_log::NewRecord;

use crate::api_error::ApiError;
use crate::pipeline::{IngestError, Pipeline};
use weir_config::Role;

/// Records one request may carry (Kinesis' PutRecords takes 500; NDJSON producers batch
/// more). A larger request is answered 413.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// The router, over a running pipeline.
pub fn app(pipeline: Arc<Pipeline>) -> Router {
    // The ingest handler reads bodies itself, up to the configured limit, so that an
    // oversized request gets the same JSON 413 as every other refusal.
    let ingest_routes = Router::new()
        .route("/v1/streams/{stream}/records", post(ingest))
        .route_layer(from_fn_with_state(pipeline.clone(), require_ingest_token));
    let read_routes = crate::read_api::routes().route_layer(from_fn_with_state(pipeline.clone(), require_read_token));
    Router::new()
        .merge(ingest_routes)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .merge(read_routes)
        .merge(crate::admin_api::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(pipeline)
}

/// Middleware of the ingest route: with `server.require_token`, a token with the ingest
/// (or admin) role, checked before the body is read.
async fn require_ingest_token(State(p): State<Arc<Pipeline>>, request: Request, next: Next) -> Response {
    data_route(&p, Role::Ingest, request, next).await
}

/// Middleware of the read API: with `server.require_token`, a token with the read (or
/// admin) role.
async fn require_read_token(State(p): State<Arc<Pipeline>>, request: Request, next: Next) -> Response {
    data_route(&p, Role::Read, request, next).await
}

async fn data_route(p: &Pipeline, needed: Role, request: Request, next: Next) -> Response {
    if p.admin().requires_data_tokens()
        && let Err(refused) = p.admin().authorize(request.headers(), needed)
    {
        return refused.into_response();
    }
    next.run(request).await
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        let message = err.to_string();
        match err {
            IngestError::UnknownStream { .. } => ApiError::new(StatusCode::NOT_FOUND, "unknown_stream", message),
            IngestError::RecordTooLarge { .. }
            | IngestError::RequestTooLarge { .. }
            | IngestError::TooManyRecords { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            IngestError::Backpressure { retry_after_secs, .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backpressure", message).retry_after(retry_after_secs)
            }
            IngestError::ShuttingDown | IngestError::Log(weir_log::LogError::Interrupted { .. }) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message).retry_after(1)
            }
            IngestError::Log(_) => ApiError::internal(message),
        }
    }
}

#[derive(Debug, Deserialize)]
struct IngestQuery {
    /// The partition key of every record of the request.
    key: Option<String>,
    /// For JSON records: the member whose (text or number) value is each record's
    /// partition key, e.g. `restaurant_id`.
    key_field: Option<String>,
}

fn key_of(record: &serde_json::Value, field: &str) -> Option<String> {
    match record.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `POST /v1/streams/{stream}/records`: NDJSON (`application/x-ndjson`), a JSON array
/// (`application/json`; a single object is one record), or any other body as one raw
/// record with its content type kept. Answers once the records are durably appended.
async fn ingest(
    State(pipeline): State<Arc<Pipeline>>,
    Path(stream): Path<String>,
    Query(query): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = pipeline.limits().max_request_bytes;
    let body: Bytes =
        axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::from(IngestError::RequestTooLarge { limit }))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/octet-stream".into());
    let key = query.key.or_else(|| headers.get("x-partition-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
    let arrival_time = crate::now_micros();
    let record = |data: Vec<u8>, content_type: &str, json: Option<&serde_json::Value>| NewRecord {
        partition_key: key.clone().or_else(|| json.zip(query.key_field.as_deref()).and_then(|(j, f)| key_of(j, f))),
        data,
        content_type: content_type.to_owned(),
        arrival_time,
    };
    // Counted before anything is allocated per record, so a body of tiny records cannot
    // make the host build millions of them.
    let too_many = |records: usize| IngestError::TooManyRecords { records, limit: MAX_RECORDS_PER_REQUEST };
    let records: Vec<NewRecord> = match content_type.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/ndjson" => {
            let lines = body.split(|&b| b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace)).count();
            if lines > MAX_RECORDS_PER_REQUEST {
                return Err(too_many(lines).into());
            }
            body.split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .map(|line| {
                    let parsed = query.key_field.as_ref().and_then(|_| serde_json::from_slice(line).ok());
                    record(line.to_vec(), "application/json", parsed.as_ref())
                })
                .collect()
        }
        "application/json" => {
            let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body is not JSON ({e}); send a JSON array of records, one JSON record, or NDJSON with Content-Type: application/x-ndjson"
                ))
            })?;
            match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| record(item.to_string().into_bytes(), "application/json", Some(item)))
                    .collect(),
                other => vec![record(body.to_vec(), "application/json", Some(&other))],
            }
        }
        other => vec![record(body.to_vec(), other, None)],
    };
    if records.is_empty() {
        return Err(ApiError::bad_request("the request holds no records"));
    }
    let appended = pipeline.ingest(&stream, records).await?;
    let body = json!({
        "records": appended.len(),
        "sequence_numbers": appended.iter().map(|a| json!({"shard": id_json(a.shard.as_str()), "seq": id_json(a.position.as_str())})).collect::<Vec<_>>(),
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn metrics(State(pipeline): State<Arc<Pipeline>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], pipeline.metrics().render())
}

/// `GET /healthz`: the streams and how many records each has waiting to be processed.
async fn healthz(State(pipeline): State<Arc<Pipeline>>) -> impl IntoResponse {
    let mut pending = serde_json::Map::new();
    for stream in pipeline.stream_names() {
        let n = pipeline.pending(&stream).await.ok().flatten().map_or(serde_json::Value::Null, |p| json!(p));
        pending.insert(stream, n);
    }
    axum::Json(json!({ "status": "ok", "streams": pipeline.stream_names(), "pending": pending }))
}

/// A shard id or position in an ingest answer: a number when it is one that JSON readers
/// keep exactly (the embedded log's), else the text (Kinesis's 56-digit sequence numbers).
fn id_json(id: &str) -> serde_json::Value {
    match id.parse::<u64>() {
        Ok(n) if n < (1 << 53) && n.to_string() == id => json!(n),
        _ => json!(id),
    }
}
