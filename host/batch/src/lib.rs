//! weir's batch layer: the jobs of `[[jobs]]`, each run over one closed period of a
//! stream's raw archive, through the same Wasm plugins as the stream, on DataFusion.
//!
//! A run ([`JobRunner::run`]):
//! 1. reads the raw archive of the period (records that arrived from its start to its end
//!    plus the job's lateness) from the lake with DataFusion, listing only the `date=`
//!    partitions the range touches;
//! 2. puts the records through the parser and the enrichers — the registry's live
//!    versions, or those a backfill pins — with one instance of each plugin per worker,
//!    the workers at once on the runtime's threads; a refused record is dead-lettered
//!    with its reason, a call that traps is split until the record at fault is alone;
//! 3. keeps the events whose time is in the period, and computes each level: SQL over the
//!    table `events` in DataFusion, or an aggregator plugin whose per-worker partial
//!    states are combined with its `merge`;
//! 4. writes each output to its sinks as one commit named by job, level and run (the
//!    period's start), so a rerun or a backfill of the period overwrites the same objects
//!    and ids;
//! 5. writes the run's manifest last ([`weir_sinks::RunManifest`]): readers that honour
//!    manifests see a period's batch results whole or not at all.
//!
//! The decisions and limits are in `docs/batch.md`.

mod chain;
mod chain_plan;
mod cluster;
mod cluster_tls;
mod error;
mod levels;
mod observer;
mod period;
mod plugins;
mod raw_archive;
mod run;
mod schedule;

pub use chain_plan::{ChainEnv, ChainSpec};
pub use cluster::{ExecutorOptions, WeirLogicalCodec, WeirPhysicalCodec, serve_executor, serve_scheduler};
pub use cluster_tls::{CLUSTER_TLS_NAME, ClusterRole, ClusterTls};
pub use error::BatchError;
pub use observer::{RunFinished, RunObserver, RunProgress};
pub use period::{Period, closed_period, now_micros, parse_time, periods_between};
pub use plugins::{PinnedPlugin, PluginSource};
pub use raw_archive::ArchivedRecord;
pub use run::{JobRunner, RunRequest, Trigger};
pub use schedule::run_schedules;
