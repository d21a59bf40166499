//! The web console (`/console`) and the routes only it needs besides the admin and read
//! APIs: who the token is (`/v1/whoami`), what runs (`/v1/pipeline`) and the last hour
//! of metrics (`/v1/metrics/history`).
//!
//! The console is three files compiled into the binary (`host/api/console/`): plain
//! HTML, CSS and one JavaScript module, no framework and no build step, so it works
//! offline and is served from wherever `weir serve` runs. The pages are public; every
//! call they make carries the token the user logs in with (kept in the tab's
//! `sessionStorage`), and the host authorizes it as for curl.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_config::Role;

use crate::api_error::ApiError;
use crate::state::Api;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");

/// The console's JSON routes (in the OpenAPI document).
pub(crate) fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new().routes(routes!(whoami)).routes(routes!(pipeline)).routes(routes!(metrics_history))
}

/// The console's pages (not API routes: not in the OpenAPI document).
pub(crate) fn pages() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/console/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/console/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Nothing but the host itself: no inline script, no third party.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

type ApiResult = Result<Response, ApiError>;

#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "admin",
    summary = "The token's name and role (read, ingest or admin)",
    description = "Needs a token of any role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn whoami(State(p): State<Arc<Api>>, headers: HeaderMap) -> ApiResult {
    let (name, role) = p.admin().identify(&headers)?;
    let body = json!({ "token": name, "role": role.as_str(), "can_act": role.allows(Role::Admin) });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/pipeline",
    tag = "admin",
    summary = "What runs: each stream's plugin chain, aggregator and the sinks of each output",
    description = "Needs a token with the read role. The versions, canaries and shadows are in /v1/deployments.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn pipeline(State(p): State<Arc<Api>>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    Ok((StatusCode::OK, axum::Json(p.topology())).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/metrics/history",
    tag = "admin",
    summary = "The last hour of the host's metrics, one sample every 10 s and one now",
    description = "Needs a token with the read role. `series` maps each Prometheus series (`name{labels}`) to its value at each of `times` (seconds since the epoch), null where it did not exist yet.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn metrics_history(State(p): State<Arc<Api>>, headers: HeaderMap) -> ApiResult {
    p.admin().authorize(&headers, Role::Read)?;
    Ok((StatusCode::OK, axum::Json(p.history().answer(&p))).into_response())
}
