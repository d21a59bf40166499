//! The admin API: the plugin registry, deployments and the audit log over HTTP, behind
//! bearer tokens. Described for machines at `GET /v1/openapi.json` (openapi.json).
//!
//! - Every route but the OpenAPI description needs `Authorization: Bearer <token>`:
//!   `401` without a known token, `403` when a read-only token asks for a change.
//! - Tokens are compared in constant time (SHA-256 of the presented token against each
//!   known token's, every byte, every token).
//! - Errors are `{"error": message, "code": code}` with a 4xx status a person can act on.
//! - With `server.require_token`, the same tokens guard the ingest route (role `ingest`)
//!   and the read API (role `read`); `admin` may do everything.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_registry::{CandidateMode, Fixtures};

use crate::api_error::ApiError;
use crate::body::{BodyError, read_body};
use crate::state::Api;
use weir_config::Role;
use weir_pipeline::deployments::{AdminError, CandidateRequest};

type ApiResult = Result<Response, ApiError>;

/// The admin routes, over a running pipeline.
pub(crate) fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(get_plugin))
        .routes(routes!(upload))
        .routes(routes!(get_version, delete_version))
        .routes(routes!(put_fixtures))
        .routes(routes!(put_config))
        .routes(routes!(list_deployments))
        .routes(routes!(get_deployment))
        .routes(routes!(activate))
        .routes(routes!(rollback))
        .routes(routes!(canary))
        .routes(routes!(shadow))
        .routes(routes!(promote))
        .routes(routes!(abort))
        .routes(routes!(audit))
        .routes(routes!(replay_dead_letters))
}

fn ok(status: StatusCode, body: serde_json::Value) -> ApiResult {
    Ok((status, axum::Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "admin",
    summary = "Uploaded plugins and their versions",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn list_plugins(State(p): State<Arc<Api>>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    let versions = p.deployments().versions(None).await?;
    let mut plugins: Vec<serde_json::Value> = Vec::new();
    for record in versions {
        match plugins.last_mut() {
            Some(last) if last["name"] == record.name.as_str() => {
                if let Some(versions) = last["versions"].as_array_mut() {
                    versions.push(json!(record.version));
                }
            }
            _ => plugins.push(json!({ "name": record.name, "world": record.world, "versions": [record.version] })),
        }
    }
    ok(StatusCode::OK, json!({ "plugins": plugins }))
}

#[utoipa::path(
    get,
    path = "/v1/plugins/{name}",
    tag = "admin",
    summary = "A plugin's versions and deployment",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn get_plugin(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    let versions = p.deployments().versions(Some(&name)).await?;
    if versions.is_empty() {
        return Err(AdminError {
            status: 404,
            code: "unknown_plugin",
            message: format!("no plugin {name:?} was uploaded"),
        }
        .into());
    }
    let deployment = p.deployments().status(Some(&name)).await.ok().and_then(|mut d| d.pop());
    ok(StatusCode::OK, json!({ "name": name, "versions": versions, "deployment": deployment }))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    version: Option<String>,
    #[serde(default)]
    description: String,
}

#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/versions",
    tag = "admin",
    summary = "Upload a component (validated: a component, known world and WIT version, allowed imports, compiles, accepts its configuration)",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(
        crate::schemas::PluginPath,
        ("version" = Option<String>, Query, pattern = r"^[A-Za-z0-9.+_-]{1,64}$", description = "version (default: the next integer)"),
        ("description" = Option<String>, Query, description = "what it does"),
    ),
    request_body(content = crate::schemas::Binary, content_type = "application/wasm"),
    responses(
        (status = 200, description = "the same bytes were already stored under this version"),
        (status = 201, description = "stored", body = crate::schemas::Version),
        crate::schemas::AdminRefusals,
    )
)]
async fn upload(
    State(p): State<Arc<Api>>,
    Path(name): Path<String>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let Query(query) = query?;
    let limit = p.admin().max_upload_bytes();
    let target = format!("{name}@{}", query.version.as_deref().unwrap_or("?"));
    let bytes: Bytes = match read_body(body, limit, p.limits().body_timeout).await {
        Ok(bytes) => bytes,
        Err(error @ (BodyError::TooSlow(_) | BodyError::Unreadable(_))) => return Err(error.into()),
        Err(BodyError::TooLarge) => {
            let error = AdminError {
                status: 413,
                code: "too_large",
                message: format!("the component is over the upload limit of {limit} bytes (admin.max_upload_bytes)"),
            };
            p.deployments().audit_refusal(&actor, "upload", &target, &error).await;
            return Err(error.into());
        }
    };
    if bytes.is_empty() {
        return Err(AdminError {
            status: 400,
            code: "empty",
            message: "the request has no body; send the component (.wasm) as the body".to_owned(),
        }
        .into());
    }
    let (record, created) =
        p.deployments().upload(&actor, &name, query.version.as_deref(), &query.description, &bytes).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut answer = serde_json::to_value(record).unwrap_or_default();
    if let Some(warning) = p.deployments().unused_name_warning(&name) {
        answer["warnings"] = json!([warning]);
    }
    ok(status, answer)
}

#[utoipa::path(
    get,
    path = "/v1/plugins/{name}/versions/{version}",
    tag = "admin",
    summary = "A version's metadata",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    params(crate::schemas::VersionPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn get_version(
    State(p): State<Arc<Api>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    let record = p.deployments().version(&name, &version).await?;
    ok(StatusCode::OK, serde_json::to_value(record).unwrap_or_default())
}

#[utoipa::path(
    delete,
    path = "/v1/plugins/{name}/versions/{version}",
    tag = "admin",
    summary = "Delete a version that is not live or a candidate",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::VersionPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        (status = 204, description = "deleted"),
        crate::schemas::AdminRefusals,
    )
)]
async fn delete_version(
    State(p): State<Arc<Api>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    p.deployments().delete(&actor, &name, &version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reads a JSON request body of at most `limit` bytes.
async fn small_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::from(AdminError {
            status: 413,
            code: "too_large",
            message: format!("the request body is over {limit} bytes"),
        })
    })
}

/// Fixtures bodies (input and expected output inline) up to this size.
const MAX_FIXTURES_BYTES: usize = 16 << 20;
/// Deployment action bodies up to this size.
const MAX_ACTION_BYTES: usize = 64 << 10;

#[utoipa::path(
    put,
    path = "/v1/plugins/{name}/versions/{version}/fixtures",
    tag = "admin",
    summary = "Run fixtures against a version now and attach them: they gate its activation, canary and shadow",
    description = "Needs a token with the admin role. The fixtures run at once with the version's configuration; \
        422 fixtures_failed (not attached, the report naming the files given in `files`) when they fail. Sending \
        fixtures again replaces them once the new ones pass.",
    security(("bearer" = [])),
    params(crate::schemas::VersionPath),
    request_body = crate::schemas::Fixtures,
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn put_fixtures(
    State(p): State<Arc<Api>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let body = small_body(body, MAX_FIXTURES_BYTES).await?;
    let fixtures: Fixtures = serde_json::from_slice(&body).map_err(|e| AdminError {
        status: 400,
        code: "invalid_fixtures",
        message: format!("the body is not fixtures JSON ({e}); send {{\"input\": \"…\", \"expected\": \"…\"}}"),
    })?;
    let record = p.deployments().set_fixtures(&actor, &name, &version, fixtures).await?;
    ok(StatusCode::OK, serde_json::to_value(record).unwrap_or_default())
}

#[utoipa::path(
    put,
    path = "/v1/plugins/{name}/versions/{version}/config",
    tag = "admin",
    summary = "Set the configuration a version runs with, in place of the plugin's",
    description = "Needs a token with the admin role. A JSON object of key → string, number or boolean; the plugin's configure checks it when the version is activated or tried. 409 in_use for a running version.",
    security(("bearer" = [])),
    params(crate::schemas::VersionPath),
    request_body = crate::schemas::VersionConfig,
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn put_config(
    State(p): State<Arc<Api>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let body = small_body(body, MAX_ACTION_BYTES).await?;
    let invalid = |message: String| AdminError { status: 400, code: "invalid_config", message };
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("the body is not JSON ({e}); send {{\"key\": \"value\", …}}")))?;
    let object = value.as_object().ok_or_else(|| invalid("send a JSON object of key → value".to_owned()))?;
    let mut config = std::collections::BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
            other => {
                return Err(invalid(format!(
                    "{key}: expected a string, number or boolean, found {other}; configuration values are flat"
                ))
                .into());
            }
        };
        config.insert(key.clone(), text);
    }
    let record = p.deployments().set_config(&actor, &name, &version, config).await?;
    ok(StatusCode::OK, serde_json::to_value(record).unwrap_or_default())
}

#[utoipa::path(
    get,
    path = "/v1/deployments",
    tag = "admin",
    summary = "Live version, previous versions and candidate (with counters) of every deployable plugin",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn list_deployments(State(p): State<Arc<Api>>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    let deployments = with_start_failures(&p, p.deployments().status(None).await?);
    ok(StatusCode::OK, json!({ "deployments": deployments }))
}

#[utoipa::path(
    get,
    path = "/v1/deployments/{name}",
    tag = "admin",
    summary = "One plugin's deployment",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn get_deployment(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    let mut status = with_start_failures(&p, p.deployments().status(Some(&name)).await?);
    ok(StatusCode::OK, status.pop().unwrap_or_default())
}

/// Adds `cannot_start` to each deployment whose live or candidate version cannot start a
/// fresh instance (its shards are held): since when, attempts and the last reason, as
/// `/healthz` reports it; `null` when it starts.
fn with_start_failures(p: &Api, mut deployments: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let failing = p.failing_plugins();
    for deployment in &mut deployments {
        let plugin = deployment["plugin"].as_str().unwrap_or_default().to_owned();
        let versions = [deployment["live"].as_str(), deployment["candidate"]["version"].as_str()];
        let ids: Vec<String> = versions.into_iter().flatten().map(|v| format!("{plugin}@{v}")).collect();
        let cannot_start: serde_json::Map<String, serde_json::Value> = failing
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, outage)| {
                let reason = json!({
                    "failing_for_seconds": outage.since.elapsed().as_secs(),
                    "failed_attempts": outage.attempts,
                    "last_error": outage.last_error,
                });
                (id.clone(), reason)
            })
            .collect();
        if let Some(object) = deployment.as_object_mut() {
            let value = if cannot_start.is_empty() { serde_json::Value::Null } else { cannot_start.into() };
            object.insert("cannot_start".into(), value);
        }
    }
    deployments
}

/// The JSON body of a deployment action.
#[derive(Debug, Default, Deserialize)]
struct ActionBody {
    version: Option<String>,
    percent: Option<u8>,
    max_error_rate: Option<f64>,
    min_inputs: Option<u64>,
}

fn action_body(body: &Bytes) -> Result<ActionBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::from(AdminError {
            status: 400,
            code: "invalid_body",
            message: format!("the body is not the JSON this action takes ({e}); see /v1/openapi.json"),
        })
    })
}

fn required_version(body: &ActionBody) -> Result<String, ApiError> {
    body.version.clone().ok_or_else(|| {
        ApiError::from(AdminError {
            status: 400,
            code: "missing_version",
            message: "give the version in the body: {\"version\": \"2\"}".to_owned(),
        })
    })
}

fn deployment_response(deployment: &weir_registry::Deployment) -> ApiResult {
    ok(StatusCode::OK, serde_json::to_value(deployment).unwrap_or_default())
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/activate",
    tag = "admin",
    summary = "Make a version live after its fixtures pass; atomic between batches",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    request_body = crate::schemas::ActivateRequest,
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn activate(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let body = small_body(body, MAX_ACTION_BYTES).await?;
    let version = required_version(&action_body(&body)?)?;
    deployment_response(&p.deployments().activate(&actor, &name, &version).await?)
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/rollback",
    tag = "admin",
    summary = "Make the previous version live again",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn rollback(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    deployment_response(&p.deployments().rollback(&actor, &name).await?)
}

async fn candidate(p: &Api, name: &str, headers: &HeaderMap, body: Body, shadow: bool) -> ApiResult {
    let actor = p.admin().authorize(headers, Role::Admin)?;
    let body = action_body(&small_body(body, MAX_ACTION_BYTES).await?)?;
    let version = required_version(&body)?;
    let mode = if shadow {
        CandidateMode::Shadow
    } else {
        let percent = body.percent.ok_or_else(|| {
            ApiError::from(AdminError {
                status: 400,
                code: "missing_percent",
                message: "give the share of partition keys for the canary: {\"version\": \"2\", \"percent\": 10}"
                    .into(),
            })
        })?;
        CandidateMode::Canary { percent }
    };
    let request = CandidateRequest { version, mode, max_error_rate: body.max_error_rate, min_inputs: body.min_inputs };
    deployment_response(&p.deployments().start_candidate(&actor, name, request).await?)
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/canary",
    tag = "admin",
    summary = "Route a percentage of partition keys to a version",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    request_body = crate::schemas::CanaryRequest,
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn canary(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> ApiResult {
    candidate(&p, &name, &headers, body, false).await
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/shadow",
    tag = "admin",
    summary = "Run a version on a copy of the traffic and compare its outputs",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    request_body = crate::schemas::ShadowRequest,
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn shadow(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> ApiResult {
    candidate(&p, &name, &headers, body, true).await
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/promote",
    tag = "admin",
    summary = "Make the candidate live",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn promote(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    deployment_response(&p.deployments().promote(&actor, &name).await?)
}

#[utoipa::path(
    post,
    path = "/v1/deployments/{name}/abort",
    tag = "admin",
    summary = "Stop the candidate",
    description = "Needs a token with the admin role.",
    security(("bearer" = [])),
    params(crate::schemas::PluginPath),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn abort(State(p): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    deployment_response(&p.deployments().abort(&actor, &name).await?)
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "admin",
    summary = "The audit log: who did what, when, with what result",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    params(
        ("after" = Option<u64>, Query, description = "entries after this sequence number"),
        ("limit" = Option<u64>, Query, description = "at most this many (100)"),
    ),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn audit(
    State(p): State<Arc<Api>>,
    query: Result<Query<AuditQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    // Who asks is checked before what they ask is read.
    p.admin().authorize(&headers, Role::Read)?;
    let Query(query) = query?;
    let entries = p.deployments().audit_log(query.after, query.limit.unwrap_or(100).clamp(1, 1000)).await?;
    ok(StatusCode::OK, json!({ "entries": entries }))
}

/// Bodies of `POST /v1/streams/{stream}/dead-letters/replay` up to this size.
const MAX_REPLAY_BODY_BYTES: usize = 64 << 10;

#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/dead-letters/replay",
    tag = "admin",
    summary = "Send dead letters back into their stream, as new records, after a fix",
    description = "Needs a token with the admin role. Body: {\"ids\": [\"orders-0003-00000000000000000042-0\", …]} \
        (at most 100; the ids of GET /v1/lake/{stream}/dead-letters). Each dead letter's original bytes and content \
        type are appended to the stream as a new record (without the partition key it had) and go through today's \
        plugins; the dead letter stays where it is. Answers {replayed: [{id, shard, sequence}], not_found: [ids]}. \
        Audited as `replay`.",
    security(("bearer" = [])),
    params(("stream" = String, Path, description = "the stream")),
    request_body(content = crate::schemas::ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn replay_dead_letters(
    State(p): State<Arc<Api>>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let body = small_body(body, MAX_REPLAY_BODY_BYTES).await?;
    let invalid = |message: String| ApiError::bad_request(message);
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("the body is not JSON ({e}); send {{\"ids\": [\"…\"]}}")))?;
    let ids: Vec<String> = value["ids"]
        .as_array()
        .ok_or_else(|| invalid("send {\"ids\": [\"…\"]}: the ids of GET /v1/lake/{stream}/dead-letters".to_owned()))?
        .iter()
        .map(|id| id.as_str().map(str::to_owned).ok_or_else(|| invalid("every id is text".to_owned())))
        .collect::<Result<_, _>>()?;
    let stores = p.stores();
    let Some(route) = stores.lake.get(&(stream.clone(), weir_config::OutputKind::DeadLetters)) else {
        return Err(ApiError::not_found(format!(
            "no dead-letter sink of stream {stream:.64?} can be read back; only a dead-letters sink's can be replayed"
        )));
    };
    let (letters, not_found) = weir_sinks::find_dead_letters(route.store.as_ref(), &stream, &ids)
        .await
        .map_err(|e| crate::read_api::lake_error(&route.sink, e))?;
    let arrival_time = weir_pipeline::now_micros();
    let mut records = Vec::with_capacity(letters.len());
    let mut replayed_ids = Vec::with_capacity(letters.len());
    for letter in &letters {
        let data = match (letter["original"].as_str(), letter["original_base64"].as_str()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| ApiError::internal(format!("dead letter {}: bad base64: {e}", letter["id"])))?
            }
            (None, None) => continue,
        };
        records.push(weir_log::NewRecord {
            partition_key: None,
            data: data.into(),
            content_type: letter["content_type"].as_str().unwrap_or("application/octet-stream").to_owned().into(),
            arrival_time,
        });
        replayed_ids.push(letter["id"].as_str().unwrap_or_default().to_owned());
    }
    let places =
        if records.is_empty() { Vec::new() } else { p.ingest(&stream, records).await.map_err(ApiError::from)? };
    let replayed: Vec<serde_json::Value> = replayed_ids
        .iter()
        .zip(&places)
        .map(
            |(id, place)| json!({ "id": id, "shard": place.shard.to_string(), "sequence": place.position.to_string() }),
        )
        .collect();
    let result = format!("ok: {} replayed, {} not found", replayed.len(), not_found.len());
    p.deployments().record_action(&actor, "replay", &format!("stream {stream}"), result).await;
    ok(StatusCode::OK, json!({ "stream": stream, "replayed": replayed, "not_found": not_found }))
}
