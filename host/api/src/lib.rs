//! weir's HTTP API: ingest (`POST /v1/streams/{stream}/records`), `/metrics` and
//! `/healthz` ([`server`]), the read API over the serving store, search indexes and
//! warehouse ([`read_api`]), and the admin API for plugin versions and deployments
//! ([`admin_api`]); every route is described at `GET /v1/openapi.json`, a document
//! generated from the route definitions (`openapi`). Every route answers errors the
//! same way, `{"error", "code"}` ([`api_error`]); bearer tokens and their roles are
//! [`auth`]. `POST /` also answers the Kinesis `PutRecord`/`PutRecords` calls
//! (`kinesis`, signatures checked by `sigv4`), so Kinesis producers can send to weir.

pub mod admin_api;
mod api_error;
mod app;
pub mod auth;
mod body;
mod console;
pub mod jobs_api;
mod kinesis;
mod listener;
mod metrics_history;
mod openapi;
pub mod read_api;
mod schemas;
pub mod server;
mod sigv4;
mod state;

pub use app::{app, app_with_jobs};
pub use auth::AdminAccess;
pub use jobs_api::JobControl;
pub use listener::{ConnectionLimits, serve};
pub use server::MAX_RECORDS_PER_REQUEST;
