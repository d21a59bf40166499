//! The batch layer over HTTP: the configured jobs with their runs, and on-demand runs.
//!
//! - `GET /v1/jobs` (read role): every `[[jobs]]` entry with its schedule, the run in
//!   progress on this host and the latest completed runs (from their manifests).
//! - `GET /v1/jobs/{job}` (read role): one of them.
//! - `POST /v1/jobs/{job}/runs` (admin role), body `{"period": "2026-12-01"}` (optional:
//!   a time in the period to run; by default the newest period closed for the job's
//!   lateness): starts a run in the background and answers `202` with the run's id and
//!   period; `409 run_in_progress` while another on-demand run of this host is going.
//!   Audited as `run` on `JOB@RUN`.
//!
//! The API crate does not build the batch engine (DataFusion): the routes drive a
//! [`JobControl`] the host gives them, implemented by the `weir` binary over `weir-batch`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_config::Role;
use weir_log::BoxFuture;
use weir_pipeline::deployments::AdminError;

use crate::api_error::ApiError;
use crate::body::read_body;
use crate::state::Api;

/// What the jobs routes drive: this host's batch layer.
pub trait JobControl: Send + Sync + std::fmt::Debug {
    /// Every job as JSON: `name`, `stream`, `schedule`, `period`, `lateness`, `levels`,
    /// `running` (the run in progress, or null), `last_outcome` (how this host's last
    /// on-demand run ended), `last_failure` (the job's failure record when its newest run
    /// failed, whoever ran it, or null) and `runs` (the newest completed runs' manifests).
    fn jobs(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, AdminError>>;

    /// Starts a run of `job` for the period containing `period` (RFC 3339 or a date;
    /// `None`: the newest closed one), for `actor`. Returns `{job, run, from, to}` once
    /// the run is started (it goes on in the background).
    fn start_run<'a>(
        &'a self,
        job: &'a str,
        period: Option<&'a str>,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<serde_json::Value, AdminError>>;
}

/// Bodies of `POST /v1/jobs/{job}/runs` up to this size.
const MAX_RUN_BODY_BYTES: usize = 4 << 10;

pub(crate) fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new().routes(routes!(list_jobs)).routes(routes!(get_job)).routes(routes!(start_run))
}

fn control(p: &Api) -> Result<&Arc<dyn JobControl>, ApiError> {
    p.jobs().ok_or_else(|| {
        ApiError::not_found("this host runs no batch jobs: its configuration defines no [[jobs]] (docs/batch.md)")
    })
}

#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "admin",
    summary = "The batch jobs: schedule, the run in progress, the latest runs",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn list_jobs(State(p): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    p.admin().authorize(&headers, Role::Read)?;
    let jobs = control(&p)?.jobs().await?;
    Ok(axum::Json(json!({ "jobs": jobs })).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{job}",
    tag = "admin",
    summary = "One batch job: schedule, the run in progress, the latest runs",
    description = "Needs a token with the read role.",
    security(("bearer" = [])),
    params(("job" = String, Path, description = "the job's name in [[jobs]]")),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn get_job(State(p): State<Arc<Api>>, Path(job): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    p.admin().authorize(&headers, Role::Read)?;
    let jobs = control(&p)?.jobs().await?;
    let names: Vec<String> = jobs.iter().filter_map(|j| j["name"].as_str().map(str::to_owned)).collect();
    match jobs.into_iter().find(|j| j["name"] == job.as_str()) {
        Some(found) => Ok(axum::Json(found).into_response()),
        None => Err(ApiError::not_found(format!("no job {job:.64?}; the jobs are: {}", names.join(", ")))),
    }
}

#[utoipa::path(
    post,
    path = "/v1/jobs/{job}/runs",
    tag = "admin",
    summary = "Start a run of a job for one period, in the background",
    description = "Needs a token with the admin role. Body (optional): {\"period\": \"2026-12-01\"} — a time in the \
        period to run, RFC 3339 or a date; by default the newest period closed for the job's lateness. 202 with \
        {job, run, from, to}; follow it with GET /v1/jobs/{job}. 409 run_in_progress while another run started here \
        is going.",
    security(("bearer" = [])),
    params(("job" = String, Path, description = "the job's name in [[jobs]]")),
    request_body(content = Option<crate::schemas::RunRequest>, content_type = "application/json"),
    responses(
        (status = 202, description = "started", body = crate::schemas::JsonObject),
        crate::schemas::AdminRefusals,
    )
)]
async fn start_run(
    State(p): State<Arc<Api>>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let actor = p.admin().authorize(&headers, Role::Admin)?;
    let body = read_body(body, MAX_RUN_BODY_BYTES, p.limits().body_timeout).await.map_err(ApiError::from)?;
    let period = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body is not JSON ({e}); send {{\"period\": \"2026-12-01\"}} or nothing"))
        })?;
        match &value["period"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            _ => return Err(ApiError::bad_request("period must be text: RFC 3339 or a date, e.g. \"2026-12-01\"")),
        }
    };
    let started = control(&p)?.start_run(&job, period.as_deref(), &actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(started)).into_response())
}
