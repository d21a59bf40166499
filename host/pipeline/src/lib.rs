//! weir's streaming engine and control plane, on top of the plugin runtime.
//!
//! - [`pipeline`]: a running [`Pipeline`] — the stream log, the loaded plugins, the
//!   sinks their connectors built (`weir-connectors`), one [`stage::ShardStage`] per
//!   stream and shard under a supervisor; ingest with backpressure.
//! - [`stage`]: parse → enrich → windowed aggregate → route, checkpoint after every sink
//!   acknowledged; [`windows`] and [`metrics`] beside it.
//! - [`deployments`], [`slot`]: plugin versions from the registry, hot swap (canary,
//!   shadow, rollback) and the fixtures gate.
//!
//! The configuration is `weir-config`, the HTTP routes `weir-api`, the demo and the
//! wiring the `weir` binary (`host/cli`).

mod consumer;
pub mod deployments;
mod field_names;
mod fixtures;
pub mod metrics;
pub mod pipeline;
pub mod slot;
pub mod stage;
pub mod stage_threads;
pub mod windows;

pub use pipeline::{IngestError, IngestLimits, Pipeline, PipelineParts};
pub use weir_sinks::Outage;

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
