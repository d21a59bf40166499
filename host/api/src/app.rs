//! The whole router: the route groups of `server` (ingest, `/metrics`, `/healthz`),
//! `read_api`, `admin_api` and `openapi`, the token middleware of the data routes, and
//! the JSON answers for unknown routes and methods.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use weir_config::Role;
use weir_pipeline::Pipeline;

use crate::api_error::ApiError;
use crate::auth::AdminAccess;
use crate::jobs_api::JobControl;
use crate::server::{ingest_routes, open_routes};
use crate::state::Api;

/// The router, over a running pipeline, with `access` deciding who may call what.
pub fn app(pipeline: Arc<Pipeline>, access: AdminAccess) -> Router {
    app_with_jobs(pipeline, access, None)
}

/// [`app`] with the jobs routes driving `jobs`, the host's batch layer.
pub fn app_with_jobs(pipeline: Arc<Pipeline>, access: AdminAccess, jobs: Option<Arc<dyn JobControl>>) -> Router {
    let pipeline = Arc::new(Api::new(pipeline, access, jobs));
    // The ingest handler reads bodies itself, up to the configured limit, so that an
    // oversized request gets the same JSON 413 as every other refusal.
    let (ingest_routes, _) = ingest_routes().split_for_parts();
    let ingest_routes = ingest_routes.route_layer(from_fn_with_state(pipeline.clone(), require_ingest_token));
    let (read_routes, _) = crate::read_api::routes().split_for_parts();
    let read_routes = read_routes.route_layer(from_fn_with_state(pipeline.clone(), require_read_token));
    let (open_routes, _) = open_routes().split_for_parts();
    let (admin_routes, _) = crate::admin_api::routes().split_for_parts();
    let (job_routes, _) = crate::jobs_api::routes().split_for_parts();
    let (openapi_routes, _) = crate::openapi::routes().split_for_parts();
    let (console_routes, _) = crate::console::routes().split_for_parts();
    Router::new()
        .merge(ingest_routes)
        .merge(open_routes)
        .merge(read_routes)
        .merge(admin_routes)
        .merge(job_routes)
        .merge(openapi_routes)
        .merge(console_routes)
        .merge(crate::console::pages())
        // The Kinesis-compatible endpoint (not in the OpenAPI document: it is Kinesis' API).
        .route("/", axum::routing::post(crate::kinesis::endpoint))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .with_state(pipeline)
}

/// Every path no route serves: the same JSON error shape as every other refusal.
async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route serves {}; the routes are listed at GET /v1/openapi.json", uri.path()))
}

/// A known path asked with a method it does not take.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}; the routes are listed at GET /v1/openapi.json", uri.path()),
    )
}

/// Middleware of the ingest route: with `server.require_token`, a token with the ingest
/// (or admin) role, checked before the body is read.
async fn require_ingest_token(State(p): State<Arc<Api>>, request: Request, next: Next) -> Response {
    data_route(&p, Role::Ingest, request, next).await
}

/// Middleware of the read API: with `server.require_token`, a token with the read (or
/// admin) role.
async fn require_read_token(State(p): State<Arc<Api>>, request: Request, next: Next) -> Response {
    data_route(&p, Role::Read, request, next).await
}

async fn data_route(p: &Api, needed: Role, request: Request, next: Next) -> Response {
    if p.admin().requires_data_tokens()
        && let Err(refused) = p.admin().authorize(request.headers(), needed)
    {
        return refused.into_response();
    }
    next.run(request).await
}
