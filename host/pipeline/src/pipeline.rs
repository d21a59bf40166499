//! A running pipeline: the stream log, the loaded plugins, the sinks, and one stage per
//! stream and shard; ingest appends to the log with backpressure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use weir_log::{EmbeddedLog, LogConfig, NewRecord, RecordPlace, ShardId, StreamLog};
use weir_runtime::{PluginOptions, Runtime, RuntimeConfig};
use weir_sinks::{Outage, Outages, RetryPolicy, Sink};

use crate::consumer::{ShardRun, consume_stream, supervise};
use crate::deployments::{Deployments, RollbackPolicy};
use crate::metrics::Metrics;
use crate::slot::PluginSlot;
use crate::stage::{AggregatorSpec, CONSUMER, LateEvents, Routes, ShardStage, StageError, StageSpec};
use weir_config::{LatePolicy, PipelineConfig};
use weir_connectors::stores::Stores;

/// Ingest limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_record_bytes: usize,
    pub max_request_bytes: usize,
    /// Unconsumed records of a stream beyond which ingest answers 503.
    pub max_pending_records: u64,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
}

/// Why records were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown stream {stream:?}; this pipeline has: {known}")]
    UnknownStream { stream: String, known: String },
    #[error("record {index} is {bytes} bytes, over the limit of {limit} bytes per record (server.max_record_bytes)")]
    RecordTooLarge { index: usize, bytes: usize, limit: usize },
    #[error("the request is over the limit of {limit} bytes (server.max_request_bytes); split it")]
    RequestTooLarge { limit: usize },
    #[error("the request holds {records} records, more than {limit} per request; split it")]
    TooManyRecords { records: usize, limit: usize },
    #[error(
        "stream {stream:?} has {pending} records waiting to be processed (limit {limit}): a sink is slow or failing; retry after {retry_after_secs} s"
    )]
    Backpressure { stream: String, pending: u64, limit: u64, retry_after_secs: u64 },
    #[error("the pipeline is shutting down; retry against another host or after restart")]
    ShuttingDown,
    #[error("the stream log failed: {0}")]
    Log(#[from] weir_log::LogError),
}

/// The running pipeline.
#[derive(Debug)]
pub struct Pipeline {
    log: Arc<dyn StreamLog>,
    streams: BTreeMap<String, Arc<StageSpec>>,
    limits: IngestLimits,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    shutting_down: AtomicBool,
    tasks: tokio::sync::Mutex<tokio::task::JoinSet<Result<(), StageError>>>,
    stores: Stores,
    deployments: Arc<Deployments>,
    sink_health: Arc<Outages>,
    plugin_health: Arc<Outages>,
    shutdown_timeout: Duration,
    data_dir: std::path::PathBuf,
    parts: PipelineParts,
}

/// What the pipeline built that the batch layer runs its jobs on: the same sinks, plugin
/// runtime, registry and reference tables as the streams.
#[derive(Clone)]
pub struct PipelineParts {
    /// The sinks, by name.
    pub sinks: weir_connectors::SinksByName,
    /// The plugin runtime (its compiled-code cache shared).
    pub runtime: Runtime,
    /// The plugin registry.
    pub registry: Arc<dyn weir_registry::RegistryStore>,
    /// The reference tables plugins look up.
    pub reference: Arc<dyn weir_runtime::ReferenceData>,
}

impl std::fmt::Debug for PipelineParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineParts").field("sinks", &self.sinks.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// What makes a full commit for `commit_interval` ([`StageSpec::full_commit_records`]):
/// `commit_size`, or half a shard's share of `max_pending_records` when that is less, so
/// that no shard waits out the interval while ingest is refused for backpressure.
fn full_commit_records(commit_size: usize, max_pending_records: u64, shards: u32) -> usize {
    let share = max_pending_records / (2 * u64::from(shards.max(1)));
    commit_size.min(usize::try_from(share).unwrap_or(usize::MAX)).max(1)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// How often a host with a shared registry reads its deployments, to run what another
/// host activated.
pub const FOLLOW_REGISTRY_INTERVAL: Duration = Duration::from_secs(2);

impl Pipeline {
    /// Opens the embedded log, loads every plugin and reference table, creates the sinks
    /// and starts one stage per stream and shard.
    ///
    /// # Errors
    /// What could not be opened or loaded, naming the file, plugin or sink; a
    /// configuration whose log is not the embedded one (see [`Pipeline::start_on`]).
    pub async fn start(config: &PipelineConfig) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            config.log.kinesis.is_none(),
            "[log] type = \"kinesis\" needs the Kinesis log opened by the caller (weir serve does)"
        );
        Self::start_on(config, None).await
    }

    /// As [`Pipeline::start`], on `log` when given (Kinesis: opened by the caller, which
    /// knows how to reach it), else on the embedded log in the data directory.
    ///
    /// # Errors
    /// As [`Pipeline::start`].
    pub async fn start_on(config: &PipelineConfig, log: Option<Arc<dyn StreamLog>>) -> anyhow::Result<Arc<Self>> {
        Self::start_shared(config, log, None).await
    }

    /// As [`Pipeline::start_on`], with `registry` when given (one a fleet shares: opened
    /// by the caller, `[registry] type = "aws"`), else the local registry in the data
    /// directory. With a shared registry the pipeline follows its deployments every
    /// [`FOLLOW_REGISTRY_INTERVAL`], so an activation through any host runs on all.
    ///
    /// # Errors
    /// As [`Pipeline::start`].
    pub async fn start_shared(
        config: &PipelineConfig,
        log: Option<Arc<dyn StreamLog>>,
        registry: Option<Arc<dyn weir_registry::RegistryStore>>,
    ) -> anyhow::Result<Arc<Self>> {
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
        // Compiled plugin code: `$WEIR_CACHE_DIR` when set (shared with `weir plugin
        // test`), else in the data directory.
        let code_cache = std::env::var_os("WEIR_CACHE_DIR")
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| data_dir.join("code-cache"), std::path::PathBuf::from);
        let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(code_cache.clone()), ..Default::default() })?;

        let reference = weir_connectors::build_references(config).await?;

        let (rollbacks, mut rollback_events) = tokio::sync::mpsc::unbounded_channel();
        let mut plugins: BTreeMap<String, Arc<PluginSlot>> = BTreeMap::new();
        let mut plugin_options: BTreeMap<String, PluginOptions> = BTreeMap::new();
        let mut configured: BTreeMap<String, crate::deployments::ConfiguredPlugin> = BTreeMap::new();
        for stream in &config.streams {
            for (name, world) in stream.plugins() {
                if plugins.contains_key(name) {
                    continue;
                }
                let p = config.plugins.get(name).with_context(|| format!("unknown plugin {name}"))?;
                let bytes = std::fs::read(&p.path).with_context(|| {
                    format!(
                        "cannot read plugin {name} from {} (build it with scripts/build-plugins.sh)",
                        p.path.display()
                    )
                })?;
                let options = PluginOptions {
                    expected_world: Some(world),
                    limits: p.limits.clone(),
                    config: p.config_pairs(),
                    reference: reference.clone(),
                    ..Default::default()
                };
                let plugin = runtime.load(p.id(), &bytes, options.clone()).await?;
                tracing::info!(plugin = %p.id(), world = %world, "plugin loaded");
                let slot = PluginSlot::new(name, world, Arc::new(plugin), Some(rollbacks.clone()));
                plugins.insert(name.to_owned(), Arc::new(slot));
                plugin_options.insert(name.to_owned(), options);
                configured.insert(
                    name.to_owned(),
                    crate::deployments::ConfiguredPlugin {
                        path: p.path.clone(),
                        bytes,
                        wins_over_registry: config.registry.precedence == weir_config::Precedence::File,
                    },
                );
            }
        }

        let shared_registry = registry.is_some();
        let registry: Arc<dyn weir_registry::RegistryStore> = match registry {
            Some(shared) => shared,
            None => Arc::new(weir_registry::LocalRegistry::open(&data_dir.join("registry"))?),
        };
        let policy = RollbackPolicy {
            max_error_rate: config.admin.auto_rollback_error_percent as f64 / 100.0,
            min_inputs: config.admin.auto_rollback_min_inputs,
        };
        let deployments = Deployments::restore(
            registry.clone(),
            runtime.clone(),
            plugins.clone(),
            plugin_options,
            configured,
            policy,
            Some(code_cache),
        )
        .await?;
        let deployments = Arc::new(deployments);

        let (sinks, stores) = weir_connectors::build_sinks(config)?;
        let parts = PipelineParts {
            sinks: sinks.clone(),
            runtime: runtime.clone(),
            registry: registry.clone(),
            reference: reference.clone(),
        };
        for sink in sinks.values() {
            sink.prepare().await?;
        }
        let sink_health = Arc::new(Outages::default());
        let plugin_health = Arc::new(Outages::default());
        let route = |names: &[String]| -> anyhow::Result<Vec<Arc<dyn Sink>>> {
            names.iter().map(|n| sinks.get(n).cloned().with_context(|| format!("unknown sink {n}"))).collect()
        };

        let log_config = LogConfig {
            shards_per_stream: config.log.shards,
            retention_age: config.log.retention.0,
            retention_bytes: config.log.retention_bytes.0,
        };
        let (log, embedded): (Arc<dyn StreamLog>, Option<EmbeddedLog>) = match log {
            Some(log) => (log, None),
            None => {
                let embedded = EmbeddedLog::open(&data_dir.join("log"), log_config)?;
                (Arc::new(embedded.clone()), Some(embedded))
            }
        };
        let metrics = Arc::new(Metrics::default());
        let (shutdown, _) = watch::channel(false);
        let mut streams = BTreeMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let plugin = |name: &str| plugins.get(name).cloned().with_context(|| format!("plugin {name} was not loaded"));
        for s in &config.streams {
            let aggregator = match &s.aggregator {
                None => None,
                Some(a) => Some(AggregatorSpec {
                    slot: plugin(&a.plugin)?,
                    window: micros(a.window.0).max(1),
                    allowed_lateness: micros(a.allowed_lateness.0),
                    late_events: match a.late_events {
                        LatePolicy::DeadLetter => LateEvents::DeadLetter,
                        LatePolicy::Drop => LateEvents::Drop,
                    },
                    max_open_state: a.max_open_state.bytes_usize(),
                }),
            };
            let spec = Arc::new(StageSpec {
                stream: s.name.clone(),
                batch_size: s.batch_size,
                batch_bytes: 8 << 20,
                commit_size: s.commit_size,
                commit_bytes: 64 << 20,
                commit_interval: s.commit_interval.0,
                full_commit_records: full_commit_records(
                    s.commit_size,
                    config.server.max_pending_records,
                    config.log.shards,
                ),
                ingest_refused: Arc::new(tokio::sync::Notify::new()),
                parser: plugin(&s.parser)?,
                enrichers: s.enrichers.iter().map(|e| plugin(e)).collect::<anyhow::Result<_>>()?,
                aggregator,
                routes: Routes {
                    raw: route(&s.routes.raw)?,
                    events: route(&s.routes.events)?,
                    aggregates: route(&s.routes.aggregates)?,
                    dead_letters: route(&s.routes.dead_letters)?,
                },
                retry: RetryPolicy::default(),
                health: sink_health.clone(),
                plugin_health: plugin_health.clone(),
                event_fields: Arc::new(crate::field_names::FieldNames::new("events", s.max_fields)),
                aggregate_fields: Arc::new(crate::field_names::FieldNames::new("aggregates", s.max_fields)),
            });
            let (stage_log, stage_metrics, stage_stop) = (log.clone(), metrics.clone(), shutdown.subscribe());
            let stage_spec = spec.clone();
            let run_shard = move |shard: ShardId| -> ShardRun {
                let stage = ShardStage::new(
                    stage_spec.clone(),
                    shard,
                    stage_log.clone(),
                    stage_metrics.clone(),
                    stage_stop.clone(),
                );
                Box::pin(supervise(stage, stage_metrics.clone(), stage_stop.clone()))
            };
            tasks.spawn(consume_stream(
                s.name.clone(),
                log.clone(),
                metrics.clone(),
                shutdown.subscribe(),
                run_shard,
                config.server.stages_yield_to_ingest,
            ));
            streams.insert(s.name.clone(), spec);
        }
        let recorder = deployments.clone();
        let mut recorder_stop = shutdown.subscribe();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = recorder_stop.changed() => return Ok(()),
                    event = rollback_events.recv() => match event {
                        Some(event) => recorder.record_rollback(event).await,
                        None => return Ok(()),
                    },
                }
            }
        });
        if shared_registry {
            let follower = deployments.clone();
            let mut follow_stop = shutdown.subscribe();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = follow_stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(FOLLOW_REGISTRY_INTERVAL) => {}
                    }
                    if let Err(error) = follower.follow_registry().await {
                        tracing::warn!("cannot read the shared registry's deployments, trying again: {error}");
                    }
                }
            });
        }
        // Retention is the embedded log's own business (Kinesis applies its own).
        if let Some(retention_log) = embedded {
            let mut retention_stop = shutdown.subscribe();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = retention_stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    }
                    let log = retention_log.clone();
                    match tokio::task::spawn_blocking(move || log.apply_retention(crate::now_micros())).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::warn!("retention failed: {e}"),
                        Err(e) => tracing::warn!("retention did not complete: {e}"),
                    }
                }
            });
        }
        let limits = IngestLimits {
            max_record_bytes: config.server.max_record_bytes.bytes_usize(),
            max_request_bytes: config.server.max_request_bytes.bytes_usize(),
            max_pending_records: config.server.max_pending_records,
            body_timeout: config.server.body_timeout.0,
        };
        Ok(Arc::new(Self {
            log,
            streams,
            limits,
            metrics,
            shutdown,
            shutting_down: AtomicBool::new(false),
            tasks: tokio::sync::Mutex::new(tasks),
            stores,
            deployments,
            sink_health,
            plugin_health,
            shutdown_timeout: config.server.shutdown_timeout.0,
            data_dir: data_dir.clone(),
            parts,
        }))
    }

    /// The sinks, runtime, registry and reference tables, for the batch layer's jobs.
    pub fn parts(&self) -> &PipelineParts {
        &self.parts
    }

    /// A receiver that turns true when the pipeline shuts down.
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ingest limits.
    pub fn limits(&self) -> IngestLimits {
        self.limits
    }

    /// The serving store, search indexes and warehouses the read API answers from.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// Plugin versions, deployments and the audit log.
    pub fn deployments(&self) -> &Arc<Deployments> {
        &self.deployments
    }

    /// Which sinks have been failing for at least `at_least`, since when and why, with
    /// the data directory in their reasons written `<data_dir>`: `/healthz` is open to
    /// anyone who can reach the host, who need not learn its file layout.
    pub fn failing_sinks(&self, at_least: Duration) -> Vec<(String, Outage)> {
        self.redacted(self.sink_health.failing_for(at_least))
    }

    /// The live plugins that cannot start a fresh instance (their shards are held), by
    /// `name@version`, reasons redacted as for [`Pipeline::failing_sinks`].
    pub fn failing_plugins(&self) -> Vec<(String, Outage)> {
        self.redacted(self.plugin_health.failing_for(Duration::ZERO))
    }

    fn redacted(&self, mut outages: Vec<(String, Outage)>) -> Vec<(String, Outage)> {
        let data_dir = self.data_dir.display().to_string();
        if data_dir.len() > 1 {
            for (_, outage) in &mut outages {
                outage.last_error = outage.last_error.replace(&data_dir, "<data_dir>");
            }
        }
        outages
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What runs: each stream's plugin chain (by plugin name; the versions are the
    /// deployments'), its aggregator and which sinks take each of its outputs.
    pub fn topology(&self) -> serde_json::Value {
        let streams: Vec<serde_json::Value> = self
            .streams
            .values()
            .map(|spec| {
                let names =
                    |sinks: &[Arc<dyn weir_sinks::Sink>]| sinks.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>();
                serde_json::json!({
                    "name": spec.stream,
                    "parser": spec.parser.name(),
                    "enrichers": spec.enrichers.iter().map(|e| e.name()).collect::<Vec<_>>(),
                    "aggregator": spec.aggregator.as_ref().map(|a| serde_json::json!({
                        "plugin": a.slot.name(),
                        "window_seconds": a.window / 1_000_000,
                    })),
                    "routes": {
                        "raw": names(&spec.routes.raw),
                        "events": names(&spec.routes.events),
                        "aggregates": names(&spec.routes.aggregates),
                        "dead_letters": names(&spec.routes.dead_letters),
                    },
                })
            })
            .collect();
        let sinks: Vec<&String> = self.parts.sinks.keys().collect();
        serde_json::json!({ "streams": streams, "sinks": sinks })
    }

    /// The configured streams.
    pub fn stream_names(&self) -> Vec<String> {
        self.streams.keys().cloned().collect()
    }

    /// Records of `stream` appended but not yet checkpointed by its stages, when the log
    /// can tell.
    ///
    /// # Errors
    /// The log failed.
    pub async fn pending(&self, stream: &str) -> Result<Option<u64>, weir_log::LogError> {
        self.log.backlog(CONSUMER, stream).await
    }

    /// Whether every stage has checkpointed everything appended so far.
    pub async fn caught_up(&self) -> bool {
        for stream in self.streams.keys() {
            if !matches!(self.pending(stream).await, Ok(Some(0))) {
                return false;
            }
        }
        true
    }

    /// Appends records durably (fsync) and returns their shards and sequence numbers.
    ///
    /// # Errors
    /// An unknown stream, a record or request over the limits, backpressure (too many
    /// records waiting because a sink is slow or failing), shutdown, or a log failure.
    pub async fn ingest(&self, stream: &str, records: Vec<NewRecord>) -> Result<Vec<RecordPlace>, IngestError> {
        if !self.streams.contains_key(stream) {
            return Err(IngestError::UnknownStream {
                stream: stream.to_owned(),
                known: self.stream_names().join(", "),
            });
        }
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(IngestError::ShuttingDown);
        }
        let limit = self.limits.max_record_bytes;
        if let Some((index, r)) = records.iter().enumerate().find(|(_, r)| r.data.len() > limit) {
            return Err(IngestError::RecordTooLarge { index, bytes: r.data.len(), limit });
        }
        if records.len() as u64 > self.limits.max_pending_records {
            return Err(IngestError::TooManyRecords {
                records: records.len(),
                limit: self.limits.max_pending_records as usize,
            });
        }
        // A log that cannot count its backlog is not held back here: it has its own
        // limits (Kinesis throttles).
        let pending = self.pending(stream).await?.unwrap_or(0);
        if pending + records.len() as u64 > self.limits.max_pending_records {
            self.metrics.add("weir_ingest_rejected_total", &[("stream", stream), ("reason", "backpressure")], 1);
            // Stages waiting out their commit interval make room at once.
            if let Some(spec) = self.streams.get(stream) {
                spec.ingest_refused.notify_waiters();
            }
            return Err(IngestError::Backpressure {
                stream: stream.to_owned(),
                pending,
                limit: self.limits.max_pending_records,
                retry_after_secs: 1,
            });
        }
        let n = records.len() as u64;
        let appended = self.log.append(stream, records).await?;
        self.metrics.add("weir_ingested_records_total", &[("stream", stream)], n);
        Ok(appended)
    }

    /// Stops accepting records, lets each stage finish or abandon its batch (an
    /// unacknowledged batch is redone after restart), and waits for them — at most
    /// `server.shutdown_timeout`: a stage still busy then (a plugin call near its CPU
    /// limit, a sink write) is abandoned, so a signal always stops the host in bounded
    /// time. Returns whether every stage stopped on its own.
    pub async fn shutdown(&self) -> bool {
        self.shutting_down.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        let mut tasks = self.tasks.lock().await;
        let joined_all = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("stage stopped with an error: {e}"),
                    Err(e) => tracing::error!("stage task failed: {e}"),
                }
            }
        };
        let joined = tokio::time::timeout(self.shutdown_timeout, joined_all).await.is_ok();
        if !joined {
            tracing::warn!(
                "stages still busy {} s after shutdown began (server.shutdown_timeout) were abandoned; what they \
                 had not committed is read again at the next start",
                self.shutdown_timeout.as_secs_f64()
            );
            tasks.abort_all();
        }
        // What the sinks acknowledged becomes visible (a lake rolls what it staged); a
        // sink that cannot is taken over at the next start.
        for (name, sink) in &self.parts.sinks {
            if let Err(e) = sink.flush().await {
                tracing::warn!(sink = %name, "cannot flush at shutdown ({e}); the next start takes it over");
            }
        }
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::full_commit_records;

    #[test]
    fn a_full_commit_is_commit_size_unless_backpressure_would_refuse_ingest_first() {
        assert_eq!(full_commit_records(16_384, 100_000, 2), 16_384);
        assert_eq!(full_commit_records(16_384, 10_000, 2), 2_500, "half of each shard's share");
        assert_eq!(full_commit_records(16_384, 1, 4), 1);
        assert_eq!(full_commit_records(100, u64::MAX, 0), 100);
    }
}
