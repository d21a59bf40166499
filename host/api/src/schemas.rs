//! The shapes the OpenAPI document describes: the error body, the request bodies and
//! the shared refusals of each route group. Types that exist for the description (the
//! handlers read and write JSON), checked against the server by the end-to-end tests.

use std::collections::BTreeMap;

use utoipa::{IntoParams, ToSchema};

/// Every refusal: `{"error": message, "code": code}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Error {
    error: String,
    /// stable code, e.g. bad_request, not_found, unknown_stream, too_large, backpressure,
    /// shutting_down, internal, not_wasm, truncated, core_module, wrong_world,
    /// unsupported_wit_version, forbidden_import, mistyped_import, mistyped_export,
    /// limit_too_high, config_rejected, start_failed, version_exists, in_use,
    /// fixtures_failed, unauthorized, forbidden
    code: String,
}

/// A JSON object (its members are described in docs/).
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct JsonObject(#[allow(dead_code)] serde_json::Value);

/// Raw bytes: a component, or a record of any content type.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(crate) struct Binary(#[allow(dead_code)] Vec<u8>);

/// A stored plugin version.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Version {
    name: String,
    version: String,
    sha256: String,
    world: String,
    wit_version: String,
    size: u64,
    description: String,
    uploaded_by: String,
    uploaded_at: String,
    imports: Vec<String>,
    fixtures: Option<Fixtures>,
    /// On an upload: what the host noticed but did not refuse (a name no stream uses).
    warnings: Option<Vec<String>>,
}

/// Fixtures that gate a version's activation: the input and the expected output.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Fixtures {
    input: String,
    expected: String,
    content_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    lookup: Option<serde_json::Value>,
    config: Option<BTreeMap<String, String>>,
    window: Option<String>,
    /// The uploader's file names, for messages: `{"input", "expected", "lookup"}`.
    #[schema(value_type = Option<Object>)]
    files: Option<serde_json::Value>,
}

/// `POST /v1/streams/{stream}/dead-letters/replay`: the dead letters to send back.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ReplayRequest {
    /// Dead letter ids, as `GET /v1/lake/{stream}/dead-letters` gives them; at most 100.
    ids: Vec<String>,
}

/// `POST /v1/jobs/{job}/runs`: the period to run (a time in it), by default the newest
/// closed one.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RunRequest {
    /// RFC 3339 or a date, e.g. `2026-12-01`.
    period: Option<String>,
}

/// A plugin's deployment: the live version, the previous ones, the candidate.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Deployment {
    plugin: String,
    live: String,
    previous: Vec<String>,
    #[schema(value_type = Option<Object>)]
    candidate: Option<serde_json::Value>,
    /// How the last candidate ended: version, mode, outcome (promoted, aborted,
    /// rolled_back, replaced), at, actor, reason, inputs, failed, compared, differing.
    #[schema(value_type = Option<Object>)]
    last_candidate: Option<serde_json::Value>,
}

/// The configuration a version runs with: key → string, number or boolean.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct VersionConfig(BTreeMap<String, ConfigValue>);

/// One configuration value.
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
#[serde(untagged)]
pub(crate) enum ConfigValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// `POST /v1/deployments/{name}/activate`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ActivateRequest {
    #[schema(pattern = r"^[A-Za-z0-9.+_-]{1,64}$")]
    version: String,
}

/// `POST /v1/deployments/{name}/canary`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CanaryRequest {
    #[schema(pattern = r"^[A-Za-z0-9.+_-]{1,64}$")]
    version: String,
    #[schema(minimum = 0, maximum = 100)]
    percent: u8,
    #[schema(minimum = 0, maximum = 1)]
    max_error_rate: Option<f64>,
    min_inputs: Option<u64>,
}

/// `POST /v1/deployments/{name}/shadow`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ShadowRequest {
    #[schema(pattern = r"^[A-Za-z0-9.+_-]{1,64}$")]
    version: String,
    #[schema(minimum = 0, maximum = 1)]
    max_error_rate: Option<f64>,
    min_inputs: Option<u64>,
}

/// The refusals of the admin routes, each `{"error", "code"}`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum AdminRefusals {
    #[response(status = 400, description = "malformed request")]
    BadRequest(Error),
    #[response(status = 401, description = "no valid token")]
    Unauthorized(Error),
    #[response(status = 403, description = "the token's role does not allow this")]
    Forbidden(Error),
    #[response(status = 404, description = "no such plugin, version or deployment")]
    NotFound(Error),
    #[response(status = 409, description = "conflicts with the registry's state (version exists, in use)")]
    Conflict(Error),
    #[response(status = 413, description = "body too large")]
    TooLarge(Error),
    #[response(status = 422, description = "refused: not a runnable component, or its fixtures fail")]
    Unprocessable(Error),
}

/// The refusals of the read routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReadRefusals {
    #[response(status = 400, description = "malformed query")]
    BadRequest(Error),
    #[response(status = 401, description = "no valid token (with require_token)")]
    Unauthorized(Error),
    #[response(status = 403, description = "the token's role does not allow reading")]
    Forbidden(Error),
    #[response(status = 404, description = "no such table, index, stream or key")]
    NotFound(Error),
}

/// The refusals of the ingest route.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum IngestRefusals {
    #[response(status = 400, description = "malformed body or query")]
    BadRequest(Error),
    #[response(status = 401, description = "no valid token (with require_token)")]
    Unauthorized(Error),
    #[response(status = 403, description = "the token's role does not allow ingest")]
    Forbidden(Error),
    #[response(status = 404, description = "no such stream")]
    NotFound(Error),
    #[response(status = 413, description = "body or record too large, or too many records")]
    TooLarge(Error),
    #[response(status = 503, description = "backpressure or shutting down: retry later")]
    Unavailable(Error),
}

/// The path of the routes about one plugin.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct PluginPath {
    /// plugin name, e.g. restaurant-enricher
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    name: String,
}

/// The path of the routes about one version of a plugin.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct VersionPath {
    /// plugin name, e.g. restaurant-enricher
    #[param(pattern = r"^[a-z0-9_-]{1,64}$")]
    name: String,
    /// version, e.g. 2.1.0
    #[param(pattern = r"^[A-Za-z0-9.+_-]{1,64}$")]
    version: String,
}
