//! One run of a job over one period: read the raw archive, put it through the plugins on
//! every worker, compute each level, deliver to the sinks, write the manifest last.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use tokio::sync::watch;
use weir_config::{JobConfig, LevelCompute, PipelineConfig};
use weir_events::Event;
use weir_events::time::format_rfc3339;
use weir_runtime::World;
use weir_sinks::{
    CommitId, DeadLetter, EventItem, KeptLedger, KeptRecord, LevelManifest, RetryPolicy, RunFailure, RunManifest, Sink,
    SinkCommit, SinkItem, SinkRecord, deliver, remove_kept,
};

use crate::chain::ChunkOutput;
use crate::chain_plan::{self, ChainEnv, ChainSpec, ChainTable};
use crate::error::BatchError;
use crate::levels::{RowFailure, accumulate_share, merge_and_finish, register_events, sql_rows};
use crate::period::{Period, now_micros};
use crate::plugins::{PluginSource, Worker};
use crate::raw_archive::{self, ArchivedRecord};

/// Why a run stops reading its period: the records it kept hold more than the job's
/// `max_input_bytes`. A run holds its period in memory, and a period too large for it
/// must fail with what to do, not take the host's memory.
fn input_too_large(job: &JobConfig, period: &Period, records: usize, bytes: u64) -> BatchError {
    BatchError::Invalid(format!(
        "job {} period {}: its records hold more than the job's max_input_bytes ({}; {bytes} bytes in the first \
         {records} records read); a run holds its period in memory, so give the job a shorter `period`, or raise \
         `max_input_bytes` on a machine with about 9 times that much memory. Nothing was delivered",
        job.name,
        period.describe(),
        job.max_input_bytes.bytes(),
    ))
}

/// The events of `records` (a run's events commit), each with its raw record's index.
fn record_events(records: &[SinkRecord]) -> Vec<(usize, &Event)> {
    records
        .iter()
        .filter_map(|r| match &r.item {
            SinkItem::Event(item) => Some((r.position.parse().unwrap_or(0), &item.event)),
            _ => None,
        })
        .collect()
}

/// How long a run's end waits to record its outcome ([`RunFailure`]) in the lake.
const OUTCOME_RECORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What asked for a run; recorded in its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The job's schedule.
    Schedule,
    /// `weir batch run`.
    OnDemand,
    /// `weir batch backfill`.
    Backfill,
}

impl Trigger {
    /// `schedule`, `on-demand` or `backfill`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::OnDemand => "on-demand",
            Self::Backfill => "backfill",
        }
    }
}

/// A run to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The job.
    pub job: String,
    /// The period.
    pub period: Period,
    /// Plugin versions to run instead of the live ones, by plugin name (a backfill's
    /// `--plugin orders-parser@3`).
    pub versions: BTreeMap<String, String>,
    /// What asked for it.
    pub trigger: Trigger,
}

/// Runs jobs of one configuration against its sinks.
pub struct JobRunner {
    config: Arc<PipelineConfig>,
    sinks: BTreeMap<String, Arc<dyn Sink>>,
    plugins: PluginSource,
    lakes: BTreeMap<String, Arc<dyn ObjectStore>>,
    workers: usize,
    retry: RetryPolicy,
    shutdown: watch::Receiver<bool>,
    cluster: Option<String>,
    cluster_tls: Option<crate::ClusterTls>,
    /// One run at a time: scheduled and on-demand runs of a host compete with its stream
    /// for the cores, and two runs of one period must not interleave their commits.
    one_at_a_time: tokio::sync::Mutex<()>,
    observer: Option<Arc<dyn crate::RunObserver>>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner").field("workers", &self.workers).finish_non_exhaustive()
    }
}

impl JobRunner {
    /// A runner over `sinks` (by name, as the pipeline built them), reading raw archives
    /// from `lakes` (the object store of each lake sink jobs read, by sink name), with
    /// `workers` instances of each plugin working at once (at least 1). A run stops
    /// with [`BatchError::Stopped`] when `shutdown` turns true.
    pub fn new(
        config: Arc<PipelineConfig>,
        sinks: BTreeMap<String, Arc<dyn Sink>>,
        plugins: PluginSource,
        lakes: BTreeMap<String, Arc<dyn ObjectStore>>,
        workers: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config,
            sinks,
            plugins,
            lakes,
            workers: workers.max(1),
            retry: RetryPolicy::default(),
            shutdown,
            cluster: None,
            cluster_tls: None,
            one_at_a_time: tokio::sync::Mutex::new(()),
            observer: None,
        }
    }

    /// Runs the plugin step on the Ballista cluster whose scheduler is at `url`
    /// (`df://HOST:PORT`) instead of in this process, in `workers` partitions.
    pub fn with_cluster(mut self, url: impl Into<String>) -> Self {
        self.cluster = Some(url.into());
        self
    }

    /// Talks to the cluster over mutual TLS with `tls` (see [`crate::ClusterTls`]).
    pub fn with_cluster_tls(mut self, tls: crate::ClusterTls) -> Self {
        self.cluster_tls = Some(tls);
        self
    }

    /// Tells `observer` of every run's progress and end.
    pub fn with_observer(mut self, observer: Arc<dyn crate::RunObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// With `retry` for deliveries instead of the default (which retries until shutdown).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The configuration's job `name`.
    ///
    /// # Errors
    /// No such job, naming the defined ones.
    pub fn job(&self, name: &str) -> Result<&JobConfig, BatchError> {
        self.config.job(name).ok_or_else(|| {
            let names: Vec<&str> = self.config.jobs.iter().map(|j| j.name.as_str()).collect();
            BatchError::Invalid(if names.is_empty() {
                format!("unknown job {name:?}: the configuration defines no [[jobs]]")
            } else {
                format!("unknown job {name:?}; defined jobs are: {}", names.join(", "))
            })
        })
    }

    /// The configuration the runner runs.
    pub fn config(&self) -> &Arc<PipelineConfig> {
        &self.config
    }

    /// The lake job `name` reads and writes its manifests to.
    ///
    /// # Errors
    /// An unknown job, or a lake the runner was not given.
    pub fn lake_of(&self, name: &str) -> Result<Arc<dyn ObjectStore>, BatchError> {
        let job = self.job(name)?;
        self.lakes.get(&job.input).cloned().ok_or_else(|| {
            BatchError::Invalid(format!("job {name}: the lake sink {} it reads was not opened", job.input))
        })
    }

    /// Runs `request` to completion: its manifest once every sink acknowledged. Runs of
    /// one runner go one at a time (a second waits for the first).
    ///
    /// # Errors
    /// The job, a pinned version or a level is wrong; the raw archive cannot be read; a
    /// sink failed for good or shutdown came first. Nothing of a failed run counts (its
    /// period has no manifest); a rerun of the period completes it. A failed run of a
    /// configured job leaves a [`RunFailure`] in its lake saying why, which the next run
    /// that completes removes.
    pub async fn run(&self, request: RunRequest) -> Result<RunManifest, BatchError> {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let started = std::time::Instant::now();
        let started_at = format_rfc3339(now_micros());
        let (job, trigger, period) = (request.job.clone(), request.trigger, request.period);
        let result = self.run_one(request, started, &started_at).await;
        self.record_outcome(&job, &period, trigger, started_at, result.as_ref()).await;
        if let Some(observer) = &self.observer {
            let outcome = result.as_ref();
            observer.finished(&crate::RunFinished { job: &job, trigger, outcome, elapsed: started.elapsed() });
        }
        result
    }

    /// Writes why a run failed beside the job's manifests, or removes the record of an
    /// earlier failure once a run completed. Best effort, for at most
    /// [`OUTCOME_RECORD_TIMEOUT`]: a record that cannot be written or removed (the lake
    /// may be why the run failed) is logged, and the run's own outcome stands.
    async fn record_outcome(
        &self,
        job: &str,
        period: &Period,
        trigger: Trigger,
        started: String,
        outcome: Result<&RunManifest, &BatchError>,
    ) {
        // An unknown job has no lake to record in; its error goes back to whoever asked.
        let Ok(lake) = self.lake_of(job) else { return };
        let run = period.run_id();
        let record = async {
            match outcome {
                Ok(_) => RunFailure::remove(lake.as_ref(), job).await,
                Err(error) => {
                    let failure = RunFailure {
                        job: job.to_owned(),
                        run: run.clone(),
                        status: error.run_status().to_owned(),
                        from: period.from,
                        to: period.to,
                        started,
                        finished: format_rfc3339(now_micros()),
                        trigger: trigger.as_str().to_owned(),
                        error: error.to_string(),
                    };
                    failure.write(lake.as_ref()).await
                }
            }
        };
        let why = match tokio::time::timeout(OUTCOME_RECORD_TIMEOUT, record).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer from the lake within {OUTCOME_RECORD_TIMEOUT:?}"),
        };
        tracing::warn!(job, run = %run, "cannot record the run's outcome in the lake ({why}); `weir batch list` may show an older run");
    }

    /// One run, which `run` began at `began`, `started` in RFC 3339.
    async fn run_one(
        &self,
        request: RunRequest,
        began: std::time::Instant,
        started: &str,
    ) -> Result<RunManifest, BatchError> {
        let job = self.job(&request.job)?.clone();
        let period = request.period;
        let run = period.run_id();
        let used: BTreeSet<&str> = job.plugins().map(|(name, _)| name).collect();
        if let Some(unused) = request.versions.keys().find(|name| !used.contains(name.as_str())) {
            return Err(BatchError::Invalid(format!(
                "job {} does not run plugin {unused}; it runs {}",
                job.name,
                used.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let pinned = |name: &str| request.versions.get(name).map(String::as_str);
        let mut steps = vec![self.plugins.pin(&job.parser, World::Parser, pinned(&job.parser)).await?];
        for name in &job.enrichers {
            steps.push(self.plugins.pin(name, World::Enricher, pinned(name)).await?);
        }
        let workers = Arc::new(self.load_workers(&job, &request.versions).await?);
        let lake = self.lake_of(&job.name)?;
        // Records that arrived in the period or within its lateness after it.
        let (from, to) = (period.from, period.to.saturating_add(job.lateness.micros()));
        let files = chain_plan::archive_files(lake.as_ref(), &job.stream, from, to).await?;
        let (file_count, file_bytes) = (files.len(), files.iter().map(|(_, size)| size).sum::<u64>());
        let earlier = KeptLedger::read(lake.as_ref(), &job.name, &run)
            .await
            .map_err(|e| BatchError::Sink(format!("cannot read the kept-records ledger of {run}: {e}")))?;
        let mut kept = RunKept::new(lake.clone(), &job.name, &run, earlier);
        RunManifest::remove(lake.as_ref(), &job.name, &run)
            .await
            .map_err(|e| BatchError::Sink(format!("cannot remove the earlier manifest of {run}: {e}")))?;
        tracing::info!(job = %job.name, run = %run, period = %period.describe(), trigger = request.trigger.as_str(), cluster = ?self.cluster, "job run started");

        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(self.workers));
        raw_archive::register_lake(&ctx, lake.clone())?;
        raw_archive::register_tables(&ctx, &job.tables, &self.config.reference).await?;
        let spec = ChainSpec {
            job: job.name.clone(),
            run: run.clone(),
            lake: job.input.clone(),
            from,
            to,
            partitions: chain_plan::partition_files(files, self.workers),
            plugins: steps.clone(),
            batch_size: job.batch_size.max(1),
        };
        // Progress at most every 200 ms; the ETA at the rate since the first records.
        let mut last_told = None::<std::time::Instant>;
        let mut first_read = None::<(std::time::Instant, u64)>;
        let told = |records: usize, read_bytes: u64| {
            let Some(observer) = &self.observer else { return };
            let (first_at, first_bytes) = *first_read.get_or_insert_with(|| (std::time::Instant::now(), read_bytes));
            if last_told.is_some_and(|at| at.elapsed() < std::time::Duration::from_millis(200)) {
                return;
            }
            last_told = Some(std::time::Instant::now());
            let left = file_bytes.saturating_sub(read_bytes);
            let eta = crate::observer::eta(first_at.elapsed(), read_bytes.saturating_sub(first_bytes), left);
            let (files, elapsed) = (file_count, began.elapsed());
            observer.progress(&crate::RunProgress {
                job: &job.name,
                run: &run,
                files,
                file_bytes,
                records,
                read_bytes,
                elapsed,
                eta,
            });
        };
        let (archived, chain) = self
            .run_plugin_step(
                spec,
                job.max_input_bytes.bytes(),
                |records, bytes| input_too_large(&job, &period, records, bytes),
                told,
            )
            .await?;
        let lineage = steps.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(">");

        // The period's events, each named by its raw record, so a rerun writes the same ids.
        let events_id = CommitId::job_partition(&job.name, &run, 0);
        let mut event_records = Vec::new();
        for (record, n, event) in chain.events.into_iter().filter(|(_, _, e)| period.contains(e.time)) {
            event_records.push(SinkRecord {
                id: format!("{}-{}-{}-{n}", job.name, run, archived[record].id),
                position: record.to_string(),
                item: SinkItem::Event(Arc::new(EventItem { event, lineage: lineage.clone() })),
            });
        }
        let mut dead = DeadLetters::new(&job.name, &run, &archived);
        for refusal in chain.refused {
            dead.record(refusal.record, &refusal.plugin, refusal.stage, &refusal.reason);
        }
        // Shared with the aggregator levels' workers, which read their shares in place.
        let events_commit = Arc::new(SinkCommit { id: events_id, arrival_time: period.from, records: event_records });
        for sink in &job.events {
            self.deliver_to(sink, &events_commit, &mut dead, &mut kept).await?;
        }

        let mut levels = BTreeMap::new();
        let events = record_events(&events_commit.records);
        let sql_needed = job.levels.iter().any(|l| matches!(l.compute, LevelCompute::Sql(_)));
        if sql_needed && !events.is_empty() {
            let rows: Vec<(&SinkRecord, &EventItem)> = events_commit
                .records
                .iter()
                .filter_map(|r| match &r.item {
                    SinkItem::Event(item) => Some((r, item.as_ref())),
                    _ => None,
                })
                .collect();
            let batch = weir_sinks::event_record_batch(&rows).map_err(BatchError::Engine)?;
            register_events(&ctx, batch, self.workers)?;
        }
        for level in &job.levels {
            let (mut rows, failures, level_lineage) = match &level.compute {
                LevelCompute::Sql(sql) => {
                    let rows = if events.is_empty() {
                        Vec::new()
                    } else {
                        sql_rows(&ctx, &level.name, sql, period.from).await?
                    };
                    (rows, Vec::new(), format!("{lineage}>sql:{}.{}", job.name, level.name))
                }
                LevelCompute::Aggregator { plugin, window, key_field } => {
                    let window = window.micros().max(1);
                    let (rows, failures) = self
                        .aggregate(
                            &workers,
                            plugin,
                            &format!("job {} run {run} level {}", job.name, level.name),
                            &events_commit,
                            window,
                            key_field.as_deref(),
                            job.batch_size,
                        )
                        .await;
                    let id = workers[0].get(plugin).map(|p| p.id().to_string()).unwrap_or_default();
                    (rows, failures, format!("{lineage}>{id}"))
                }
            };
            for failure in failures {
                dead.row(&failure, &level.name);
            }
            // Rows in (key, time) order, so a rerun that computes the same groups gives
            // each the same position and id.
            rows.sort_by(|a, b| (&a.key, a.time).cmp(&(&b.key, b.time)));
            let source = level.source(&job.name);
            let id = CommitId::job_partition(&source, &run, 0);
            let records = rows
                .into_iter()
                .enumerate()
                .map(|(position, event)| SinkRecord {
                    id: id.record_id(&position.to_string(), 0),
                    position: position.to_string(),
                    item: SinkItem::Aggregate(Arc::new(EventItem { event, lineage: level_lineage.clone() })),
                })
                .collect::<Vec<_>>();
            let commit = SinkCommit { id, arrival_time: period.from, records };
            for sink in &level.sinks {
                self.deliver_to(sink, &commit, &mut dead, &mut kept).await?;
            }
            levels.insert(
                level.name.clone(),
                LevelManifest {
                    source,
                    rows: commit.records.len() as u64,
                    sinks: level.sinks.clone(),
                    replaces_stream_aggregates: level.replaces_stream_aggregates,
                },
            );
        }

        let dead_count = dead.records.len() as u64;
        let dead_commit = SinkCommit {
            id: CommitId::job_partition(&job.name, &run, 0),
            arrival_time: period.from,
            records: dead.records,
        };
        for sink in &job.dead_letters {
            let mut nowhere = DeadLetters::new(&job.name, &run, &archived);
            self.deliver_to(sink, &dead_commit, &mut nowhere, &mut kept).await?;
        }
        self.remove_sources_left_out(&mut kept).await?;
        let manifest = RunManifest {
            job: job.name.clone(),
            run: run.clone(),
            stream: job.stream.clone(),
            from: period.from,
            to: period.to,
            started: started.to_owned(),
            finished: format_rfc3339(now_micros()),
            trigger: request.trigger.as_str().to_owned(),
            plugins: steps
                .iter()
                .map(|p| p.id.clone())
                .chain(workers[0].values().map(|p| p.id().to_string()))
                .collect(),
            records: archived.len() as u64,
            events: events.len() as u64,
            dead_letters: dead_count,
            levels,
        };
        if *self.shutdown.borrow() {
            return Err(BatchError::Stopped);
        }
        manifest
            .write(lake.as_ref())
            .await
            .map_err(|e| BatchError::Sink(format!("cannot write the manifest of {run}: {e}")))?;
        tracing::info!(job = %job.name, run = %run, records = manifest.records, events = manifest.events, dead_letters = dead_count, "job run completed");
        Ok(manifest)
    }

    /// One instance of each of the job's aggregators per worker.
    async fn load_workers(
        &self,
        job: &JobConfig,
        versions: &BTreeMap<String, String>,
    ) -> Result<Vec<Worker>, BatchError> {
        let pinned = |name: &str| versions.get(name).map(String::as_str);
        let mut workers = Vec::with_capacity(self.workers);
        for _ in 0..self.workers {
            let mut aggregators = Worker::new();
            for level in &job.levels {
                if let LevelCompute::Aggregator { plugin, .. } = &level.compute
                    && !aggregators.contains_key(plugin)
                {
                    aggregators
                        .insert(plugin.clone(), self.plugins.load(plugin, World::Aggregator, pinned(plugin)).await?);
                }
            }
            workers.push(aggregators);
        }
        Ok(workers)
    }

    /// The plugin step (the raw archive through the parser and enrichers) in this
    /// process, one partition per worker at once, or on the cluster; its records in id
    /// order with their events and refusals. The partitions' output is read as it comes
    /// and stopped with `too_large(records, bytes)` once the records' data passes
    /// `max_bytes`, so a period larger than the run may hold fails before it is held.
    async fn run_plugin_step(
        &self,
        spec: ChainSpec,
        max_bytes: u64,
        too_large: impl Fn(usize, u64) -> BatchError,
        mut progress: impl FnMut(usize, u64),
    ) -> Result<(Vec<ArchivedRecord>, ChunkOutput), BatchError> {
        use futures_util::StreamExt as _;
        let what = match &self.cluster {
            // A failure there is often the cluster's: down, or TLS that does not match.
            Some(url) => format!("the plugin step of job {} run {} on cluster {url}", spec.job, spec.run),
            None => format!("the plugin step of job {} run {}", spec.job, spec.run),
        };
        let failed = |e: datafusion::error::DataFusionError| BatchError::Engine(format!("{what}: {e}"));
        let spec = Arc::new(spec);
        let (ctx, env) = match &self.cluster {
            Some(url) => {
                let tls = self.cluster_tls.as_ref();
                (crate::cluster::remote_context(url, spec.partitions.len(), tls).await?, None)
            }
            None => {
                let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(self.workers));
                (ctx, Some(Arc::new(ChainEnv::new(self.lakes.clone(), self.plugins.clone()))))
            }
        };
        let table = ChainTable { spec: spec.clone(), env };
        let mut stream = ctx.read_table(Arc::new(table)).map_err(failed)?.execute_stream().await.map_err(failed)?;
        // Each batch decoded as it arrives, while the partitions still run, and dropped.
        let (mut rows, mut records, mut bytes, mut read) = (Vec::new(), 0, 0, 0);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(failed)?;
            records += batch.num_rows();
            bytes += chain_plan::data_bytes(&batch);
            if bytes > max_bytes {
                return Err(too_large(records, bytes));
            }
            chain_plan::decode_rows(&batch, &mut rows)?;
            read += chain_plan::archive_line_bytes(&batch);
            progress(records, read);
        }
        Ok(chain_plan::in_id_order(rows))
    }

    /// An aggregator level: each worker folds a contiguous share of the period's events
    /// (as a partition of the input would be), read in place from `events`, into partial
    /// states; the shares are merged.
    #[allow(clippy::too_many_arguments)]
    async fn aggregate(
        &self,
        workers: &Arc<Vec<Worker>>,
        plugin: &str,
        label: &str,
        events: &Arc<SinkCommit>,
        window: i64,
        key_field: Option<&str>,
        batch_size: usize,
    ) -> (Vec<Event>, Vec<RowFailure>) {
        let count = events.records.len();
        let share = count.div_ceil(workers.len()).max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for (w, start) in (0..count).step_by(share).enumerate() {
            let part = start..(start + share).min(count);
            let (workers, events, plugin, label, key_field) =
                (workers.clone(), events.clone(), plugin.to_owned(), label.to_owned(), key_field.map(str::to_owned));
            tasks.spawn(async move {
                let Some(aggregator) = workers[w].get(&plugin) else {
                    return (w, Default::default(), Vec::new());
                };
                let refs = record_events(&events.records[part]);
                let (states, failures) =
                    accumulate_share(aggregator, &label, &refs, window, key_field.as_deref(), batch_size).await;
                (w, states, failures)
            });
        }
        let mut shares = Vec::new();
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((w, states, share_failures)) => {
                    shares.push((w, states));
                    failures.extend(share_failures);
                }
                Err(e) => failures.push(RowFailure {
                    what: "a share of the events".into(),
                    record: None,
                    plugin: plugin.to_owned(),
                    reason: format!("the worker failed: {e}"),
                }),
            }
        }
        shares.sort_by_key(|(w, _)| *w);
        let Some(aggregator) = workers[0].get(plugin) else { return (Vec::new(), failures) };
        let (rows, finish_failures) =
            merge_and_finish(aggregator, label, shares.into_iter().map(|(_, s)| s).collect(), batch_size).await;
        failures.extend(finish_failures);
        (rows, failures)
    }

    /// Delivers `commit` to sink `name`; records it refuses for good become dead letters.
    /// What the run this one replaces kept in the sink for the commit's source and this
    /// commit does not write again is removed first (see [`KeptLedger`]).
    async fn deliver_to(
        &self,
        name: &str,
        commit: &SinkCommit,
        dead: &mut DeadLetters<'_>,
        kept: &mut RunKept,
    ) -> Result<(), BatchError> {
        let sink = self.sinks.get(name).ok_or_else(|| BatchError::Invalid(format!("unknown sink {name}")))?;
        let source = commit.id.source();
        let writes: BTreeSet<KeptRecord> = commit
            .records
            .iter()
            .filter_map(|r| sink.kept_key(r).map(|key| KeptRecord { key, record: r.id.clone() }))
            .collect();
        kept.note_on_disk(name, source, &writes).await?;
        // Against everything this run writes of the source to the sink, should a sink get
        // two commits of one source (a job's events and its dead letters share its name).
        let mut written = kept.written.kept(name, source).cloned().unwrap_or_default();
        written.extend(writes.iter().cloned());
        let gone = kept.earlier.left_out(name, source, &written);
        self.remove_from(name, sink.as_ref(), &kept.what, gone).await?;
        if !writes.is_empty() || kept.earlier.kept(name, source).is_some() {
            kept.written.add(name, source, writes);
        }
        match deliver(sink.as_ref(), commit.clone(), &self.retry, &self.shutdown).await {
            Ok(stats) => {
                for (record, reason) in stats.rejected {
                    dead.rejected(&record, name, &reason);
                }
                Ok(())
            }
            Err(weir_sinks::DeliveryError::Shutdown { .. }) => Err(BatchError::Stopped),
            Err(e) => Err(BatchError::Sink(e.to_string())),
        }
    }
}

impl JobRunner {
    /// Removes `gone` from sink `name` (retrying like a delivery).
    async fn remove_from(
        &self,
        name: &str,
        sink: &dyn Sink,
        what: &str,
        gone: Vec<KeptRecord>,
    ) -> Result<(), BatchError> {
        if gone.is_empty() {
            return Ok(());
        }
        let count = gone.len();
        match remove_kept(sink, what, gone, &self.retry, &self.shutdown).await {
            Ok(()) => {
                tracing::info!(
                    sink = name,
                    removed = count,
                    "{what}: removed what the run it replaces wrote and it does not"
                );
                Ok(())
            }
            Err(weir_sinks::DeliveryError::Shutdown { .. }) => Err(BatchError::Stopped),
            Err(e) => Err(BatchError::Sink(e.to_string())),
        }
    }

    /// After every delivery: removes what the run this one replaces kept for sources this
    /// run no longer writes to a sink (a level dropped or routed elsewhere), then writes
    /// this run's ledger. A sink no longer configured cannot be cleaned: its records stay
    /// in the ledger, logged, for a later run that has the sink again.
    async fn remove_sources_left_out(&self, kept: &mut RunKept) -> Result<(), BatchError> {
        for (name, gone) in kept.earlier.sources_left_out(&kept.written) {
            match self.sinks.get(&name) {
                Some(sink) => self.remove_from(&name, sink.as_ref(), &kept.what, gone).await?,
                None => {
                    tracing::warn!(sink = %name, records = gone.len(), "{}: the run it replaces wrote records to sink {name}, which the configuration no longer has; they stay there", kept.what);
                    for record in gone {
                        // Their source is unknown here; filed under the sink's own name.
                        kept.written.add(&name, &name, [record]);
                    }
                }
            }
        }
        kept.written
            .write(kept.lake.as_ref(), &kept.job, &kept.run)
            .await
            .map_err(|e| BatchError::Sink(format!("cannot write the kept-records ledger of {}: {e}", kept.run)))
    }
}

/// The kept-records ledgers of a run: the one of the run it replaces, what this run
/// wrote so far, and what the lake holds (their union while the run is going).
struct RunKept {
    lake: Arc<dyn ObjectStore>,
    job: String,
    run: String,
    what: String,
    earlier: KeptLedger,
    written: KeptLedger,
    on_disk: KeptLedger,
}

impl RunKept {
    fn new(lake: Arc<dyn ObjectStore>, job: &str, run: &str, earlier: KeptLedger) -> Self {
        Self {
            lake,
            job: job.to_owned(),
            run: run.to_owned(),
            what: format!("job {job} run {run}"),
            on_disk: earlier.clone(),
            earlier,
            written: KeptLedger::default(),
        }
    }

    /// Makes the lake's ledger name `writes` too before they are written, so a run
    /// killed after writing them still leaves them named for its rerun.
    async fn note_on_disk(
        &mut self,
        sink: &str,
        source: &str,
        writes: &BTreeSet<KeptRecord>,
    ) -> Result<(), BatchError> {
        let known = self.on_disk.kept(sink, source);
        if writes.iter().all(|w| known.is_some_and(|k| k.contains(w))) {
            return Ok(());
        }
        self.on_disk.add(sink, source, writes.iter().cloned());
        self.on_disk
            .write(self.lake.as_ref(), &self.job, &self.run)
            .await
            .map_err(|e| BatchError::Sink(format!("cannot write the kept-records ledger of {}: {e}", self.run)))
    }
}

/// The run's dead letters, as records of its dead-letter commit.
struct DeadLetters<'a> {
    job: String,
    run: String,
    archived: &'a [ArchivedRecord],
    records: Vec<SinkRecord>,
}

impl<'a> DeadLetters<'a> {
    fn new(job: &str, run: &str, archived: &'a [ArchivedRecord]) -> Self {
        Self { job: job.to_owned(), run: run.to_owned(), archived, records: Vec::new() }
    }

    fn push(&mut self, id: String, letter: DeadLetter) {
        let position = self.records.len().to_string();
        self.records.push(SinkRecord { id, position, item: SinkItem::DeadLetter(letter) });
    }

    /// Raw record `index` refused by `plugin` at `stage`.
    fn record(&mut self, index: usize, plugin: &str, stage: &str, reason: &str) {
        let Some(archived) = self.archived.get(index) else { return };
        let letter = DeadLetter {
            plugin: plugin.to_owned(),
            stage: stage.to_owned(),
            reason: reason.to_owned(),
            original: archived.record.data.clone(),
            content_type: archived.record.content_type.clone(),
            arrival_time: archived.record.arrival_time,
        };
        self.push(format!("{}-{}-{}-{stage}", self.job, self.run, archived.id), letter);
    }

    /// A level row that could not be produced.
    fn row(&mut self, failure: &RowFailure, level: &str) {
        match failure.record {
            Some(index) => {
                self.record(index, &failure.plugin, "aggregate", &format!("level {level}: {}", failure.reason))
            }
            None => {
                let letter = DeadLetter {
                    plugin: failure.plugin.clone(),
                    stage: "aggregate".into(),
                    reason: format!("level {level}: {}: {}", failure.what, failure.reason),
                    original: failure.what.clone().into_bytes(),
                    content_type: "text/plain".into(),
                    arrival_time: now_micros(),
                };
                let id = format!("{}-{}-{level}-{}", self.job, self.run, self.records.len());
                self.push(id, letter);
            }
        }
    }

    /// A record sink `sink` refused for good.
    fn rejected(&mut self, record: &SinkRecord, sink: &str, reason: &str) {
        let body = match &record.item {
            SinkItem::Event(item) | SinkItem::Aggregate(item) => {
                weir_events::json::event_to_json(&item.event).to_string()
            }
            _ => String::new(),
        };
        let letter = DeadLetter {
            plugin: format!("sink {sink}"),
            stage: "sink".into(),
            reason: reason.to_owned(),
            original: body.into_bytes(),
            content_type: "application/json".into(),
            arrival_time: now_micros(),
        };
        self.push(format!("{}-{sink}", record.id), letter);
    }
}
