//! weir's pipeline host: the streaming layer on top of the plugin runtime.
//!
//! - [`config`]: the pipeline's TOML file as typed settings, every problem reported at
//!   once with its line and key path ([`PipelineConfig`], [`ConfigErrors`]).
//! - [`pipeline`]: a running [`Pipeline`] — the stream log, the loaded plugins, the
//!   sinks, one [`stage::ShardStage`] per stream and shard; ingest with backpressure.
//! - [`stage`]: parse → enrich → windowed aggregate → route, checkpoint after every sink
//!   acknowledged.
//! - [`server`]: the HTTP API (ingest, `/metrics`, `/healthz`) and [`read_api`] (serving
//!   lookups, search, warehouse aggregates) over the [`stores`] the sinks write.
//! - [`deployments`], [`slot`], [`admin_api`]: the plugin registry, hot swap (canary,
//!   shadow, rollback) and the admin API.
//! - [`demo`]: `weir demo`.

pub mod admin_api;
mod api_error;
pub mod auth;
pub mod demo;
pub mod deployments;
mod fixtures;
pub mod metrics;
pub mod pipeline;
pub mod read_api;
pub mod server;
pub mod slot;
pub mod stage;
pub mod windows;

pub use pipeline::{IngestError, IngestLimits, Pipeline};

/// Now, in microseconds since the Unix epoch.
pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
