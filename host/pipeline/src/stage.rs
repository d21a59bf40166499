//! The stream stage: per shard, read a commit's records from the log, run them through
//! parser → enrichers →
//! windowed aggregator, route every output to its sinks, and checkpoint only after every
//! sink acknowledged. Delivery is at-least-once; sinks make replays harmless with
//! deterministic ids and object keys, and the log records each commit's range before it
//! is processed so a replay after a crash cuts exactly the same commit.
//!
//! Words: a **call** is one plugin invocation over a plugin batch of at most
//! `batch_size` records; a **commit** is the unit the sinks write and the checkpoint
//! covers (at most `commit_size` records, run in one or more calls).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weir_events::{Columns, Event};
use weir_log::{CommitRange, LogRecord, ReadFrom, ReadLimits, ShardId, ShardRead, StreamLog};
use weir_registry::CandidateMode;
use weir_runtime::aggregation::{self, CallGroups, GroupKey};
use weir_runtime::{CallError, Plugin, RawRecordRef, Window};
use weir_sinks::{
    CommitId, DeadLetter, DeliveryError, EventItem, Outages, RawItem, RetryPolicy, Sink, SinkCommit, SinkItem,
    SinkRecord,
};

use crate::metrics::Metrics;
use crate::slot::{Active, ActiveCandidate, PluginSlot, ShadowDiff};
use crate::windows::WindowState;
use weir_runtime::isolate::{ISOLATION_BUDGET, Piece, isolate};

/// The consumer name under which stream stages keep their checkpoints.
pub const CONSUMER: &str = "stream-stage";

/// How far after its arrival an event's time may be, µs (7 days).
pub const MAX_FUTURE_SKEW: i64 = 7 * 24 * 3600 * 1_000_000;

/// What happens to an event whose window has already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateEvents {
    /// Sent to the dead-letter sinks with the reason (the default).
    DeadLetter,
    /// Counted in `weir_late_events_total` and dropped.
    Drop,
}

/// The aggregator of a stream and its windowing.
#[derive(Debug, Clone)]
pub struct AggregatorSpec {
    pub slot: Arc<PluginSlot>,
    /// Tumbling window width, µs.
    pub window: i64,
    /// How far behind the largest event time seen an event may be and still count, µs.
    pub allowed_lateness: i64,
    pub late_events: LateEvents,
    /// Bytes of open groups' states a shard's stage may hold before events that would
    /// open a new group are dead-lettered.
    pub max_open_state: usize,
}

/// Which sinks get each output.
#[derive(Clone, Default)]
pub struct Routes {
    pub raw: Vec<Arc<dyn Sink>>,
    pub events: Vec<Arc<dyn Sink>>,
    pub aggregates: Vec<Arc<dyn Sink>>,
    pub dead_letters: Vec<Arc<dyn Sink>>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |sinks: &[Arc<dyn Sink>]| sinks.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>();
        f.debug_struct("Routes")
            .field("raw", &names(&self.raw))
            .field("events", &names(&self.events))
            .field("aggregates", &names(&self.aggregates))
            .field("dead_letters", &names(&self.dead_letters))
            .finish()
    }
}

/// Everything a stream's stages need.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub stream: String,
    /// Records per plugin call, at most.
    pub batch_size: usize,
    /// Payload bytes per plugin call, about (a single larger record goes alone).
    pub batch_bytes: usize,
    /// Records per commit (read, delivered and checkpointed together), at most.
    pub commit_size: usize,
    /// Payload bytes per commit, about.
    pub commit_bytes: usize,
    /// The least time from one commit's start to the next one's, unless a full commit
    /// (`full_commit_records`, or a read the log says more records follow) is waiting or
    /// the shard has ended: what arrives in between goes into one commit. Zero: each
    /// commit takes what is waiting at once.
    pub commit_interval: Duration,
    /// Records waiting that make a full commit for `commit_interval`: `commit_size`, or
    /// fewer when the stream's backpressure (`max_pending_records`, shared by its shards)
    /// would refuse ingest before a shard had that many, so a stage never waits while
    /// ingest is refused.
    pub full_commit_records: usize,
    /// Notified when ingest refuses records of this stream for backpressure: a stage
    /// waiting out `commit_interval` commits at once (a single large request can need
    /// more room than the waiting shards leave).
    pub ingest_refused: Arc<tokio::sync::Notify>,
    pub parser: Arc<PluginSlot>,
    pub enrichers: Vec<Arc<PluginSlot>>,
    pub aggregator: Option<AggregatorSpec>,
    pub routes: Routes,
    pub retry: RetryPolicy,
    /// Where deliveries report failing sinks (one for the whole pipeline).
    pub health: Arc<Outages>,
    /// Where the stage reports a live plugin that cannot start (by `name@version`), for
    /// `/healthz`; cleared when it runs again.
    pub plugin_health: Arc<Outages>,
    /// The distinct field names of the stream's events, bounded by `max_fields`.
    pub(crate) event_fields: Arc<crate::field_names::FieldNames>,
    /// The same for its aggregates.
    pub(crate) aggregate_fields: Arc<crate::field_names::FieldNames>,
}

/// Empty reads in a row after which a range being read again is taken to end there
/// (about 2 s of reads 100 ms apart).
const MAX_EMPTY_RANGE_READS: u32 = 20;

/// The longest wait between two tries of a commit held by a plugin that cannot start.
const MAX_START_RETRY: Duration = Duration::from_secs(30);

/// Why a shard's stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("stream {stream} shard {shard}: the log failed: {source}")]
    Log { stream: String, shard: ShardId, source: weir_log::LogError },
    #[error("stream {stream} shard {shard}: the checkpointed window state is unreadable: {reason}")]
    State { stream: String, shard: ShardId, reason: String },
}

/// One shard's stage.
#[derive(Debug)]
pub struct ShardStage {
    spec: Arc<StageSpec>,
    shard: ShardId,
    log: Arc<dyn StreamLog>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    /// Set by a call whose live plugin could not start a fresh instance: the commit is
    /// then held (not delivered, not dead-lettered) and retried.
    cannot_start: std::sync::Mutex<Option<CallError>>,
}

/// Where each output event came from: the index of its raw record in the commit.
type Origins = Vec<usize>;

/// Per event: the plugins it went through, `name@version` joined by `>`.
type Lineages = Vec<Arc<str>>;

/// Interned lineages: the events of a commit share a handful.
#[derive(Default)]
struct LineageNames {
    known: HashMap<(Option<Arc<str>>, String), Arc<str>>,
    /// The last answer, by upstream lineage and plugin (its address): consecutive events
    /// nearly always share both, so most events cost a pointer comparison, not a lookup
    /// with a freshly formatted key.
    last: Option<(Option<Arc<str>>, usize, Arc<str>)>,
}

impl LineageNames {
    /// `upstream>plugin`, or `plugin` for the first plugin.
    fn extend(&mut self, upstream: Option<&Arc<str>>, plugin: &Plugin) -> Arc<str> {
        let plugin_address = std::ptr::from_ref(plugin) as usize;
        if let Some((last_upstream, last_plugin, lineage)) = &self.last
            && *last_plugin == plugin_address
            && match (last_upstream, upstream) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        {
            return lineage.clone();
        }
        let id = plugin.id().to_string();
        let lineage = self
            .known
            .entry((upstream.cloned(), id))
            .or_insert_with_key(|(upstream, id)| match upstream {
                Some(up) => Arc::from(format!("{up}>{id}")),
                None => Arc::from(id.as_str()),
            })
            .clone();
        self.last = Some((upstream.cloned(), plugin_address, lineage.clone()));
        lineage
    }
}

/// One plugin step of a call.
struct Step<'a> {
    label: &'a str,
    stage: &'static str,
    slot: &'a PluginSlot,
    active: &'a Active,
    /// The call's log records, to name them in shadow differences.
    records: &'a [LogRecord],
}

type CallResult = Result<(weir_runtime::BatchOutput, weir_runtime::CallStats), weir_runtime::CallError>;

/// The plugin versions a commit runs: snapshots taken when it starts.
struct Versions {
    parser: Arc<Active>,
    enrichers: Vec<Arc<Active>>,
    aggregator: Option<Arc<Plugin>>,
}

impl Versions {
    /// The live chain as text, for aggregates of a call without events.
    fn live_chain(&self) -> String {
        let mut chain = self.parser.live.id().to_string();
        for active in &self.enrichers {
            chain = format!("{chain}>{}", active.live.id());
        }
        chain
    }
}

#[derive(Default)]
struct Produced {
    events: Vec<Event>,
    origins: Origins,
    /// Per event: the plugins it went through, `name@version` joined by `>`.
    lineage: Lineages,
    /// Aggregates with their ids and lineage.
    aggregates: Vec<(String, Event, Arc<str>)>,
    dead: Vec<Dead>,
}

impl Produced {
    /// Adds the outputs of a call over the commit's records from index `offset` on.
    fn append(&mut self, part: Produced, offset: usize) {
        self.events.extend(part.events);
        self.origins.extend(part.origins.into_iter().map(|o| o + offset));
        self.lineage.extend(part.lineage);
        self.aggregates.extend(part.aggregates);
        self.dead.extend(part.dead.into_iter().map(|d| Dead { origin: d.origin + offset, ..d }));
    }
}

/// Splits a commit's records into plugin calls: consecutive ranges of at most
/// `max_records` records and about `max_bytes` payload bytes (a record larger than that
/// goes alone). Deterministic, so a replayed commit makes the same calls.
fn call_ranges(records: &[LogRecord], max_records: usize, max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.data.len();
        if i > start && (i - start >= max_records.max(1) || bytes + size > max_bytes) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

/// Why a commit was not acknowledged by every sink.
enum Undelivered {
    Shutdown,
    Failed(String),
}

/// What the live version made of a step's inputs, for a shadow's comparison.
struct LiveOutputs<'a> {
    columns: &'a Columns,
    /// The input each output event came from.
    outputs: &'a [usize],
    /// The live version's record errors, by the origin of the record.
    errors: &'a HashMap<usize, &'a str>,
}

struct Dead {
    origin: usize,
    plugin: String,
    stage: &'static str,
    reason: String,
}

impl ShardStage {
    pub fn new(
        spec: Arc<StageSpec>,
        shard: ShardId,
        log: Arc<dyn StreamLog>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { spec, shard, log, metrics, shutdown, cannot_start: std::sync::Mutex::new(None) }
    }

    /// Holds the current commit: a live plugin could not start.
    fn hold(&self, err: CallError) {
        let mut slot = self.cannot_start.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(err);
    }

    fn take_start_failure(&self) -> Option<CallError> {
        self.cannot_start.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// The stream this stage consumes.
    pub fn stream(&self) -> &str {
        &self.spec.stream
    }

    fn log_error(&self, source: weir_log::LogError) -> StageError {
        StageError::Log { stream: self.spec.stream.clone(), shard: self.shard.clone(), source }
    }

    /// Runs until shutdown, or until its shard has ended and every record of it is
    /// committed (its children are then read by their own stages). A commit whose sinks
    /// did not all acknowledge is not checkpointed: it is redone, over the same range, by
    /// the next run.
    ///
    /// # Errors
    /// When the log itself fails or the checkpointed state cannot be read.
    pub async fn run(&mut self) -> Result<(), StageError> {
        let stream = self.spec.stream.clone();
        let log = self.log.clone();
        let shard = self.shard.clone();
        let mut appended = log.subscribe(&stream);
        let checkpoint = log.checkpoint(CONSUMER, &stream, &shard).await.map_err(|e| self.log_error(e))?;
        let (mut committed, mut pending, state) = match checkpoint {
            Some(cp) => (cp.committed, cp.pending, cp.state),
            None => (None, None, Vec::new()),
        };
        let mut windows = WindowState::decode(&state).map_err(|reason| StageError::State {
            stream: stream.clone(),
            shard: shard.clone(),
            reason,
        })?;
        let limits = ReadLimits { records: self.spec.commit_size, bytes: self.spec.commit_bytes };
        // When the last commit began: `commit_interval` runs from it.
        let mut last_begun: Option<Instant> = None;
        // A live plugin that cannot start: which one, and how many tries in a row.
        let mut held_by: Option<String> = None;
        let mut unavailable_for = 0u32;
        loop {
            if *self.shutdown.borrow() {
                return Ok(());
            }
            let (range, read) = match pending.take() {
                Some(range) => {
                    self.report_lag(committed.as_ref()).await;
                    (range, None)
                }
                None => {
                    // The lag is read beside the records, not before them: one wait, not two.
                    let from = ReadFrom::after(committed.as_ref());
                    let (read, ()) =
                        tokio::join!(log.read(&stream, &shard, from, limits), self.report_lag(committed.as_ref()));
                    let read = read.map_err(|e| self.log_error(e))?;
                    let (Some(first), Some(last)) = (read.records.first(), read.records.last()) else {
                        if read.end_of_shard {
                            tracing::info!(%stream, %shard, "the shard has ended and every record of it is committed");
                            return Ok(());
                        }
                        // Nothing to do: wait for an append (or shutdown; or a second, so a
                        // missed wake-up, or an append by another host, costs at most that).
                        tokio::select! {
                            _ = appended.changed() => {}
                            _ = self.shutdown.changed() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        continue;
                    };
                    // Under a steady trickle every append would wake a commit of its
                    // own, and a commit's fixed cost (a search index segment, a serving
                    // store fsync, a file per warehouse table) would be paid per append:
                    // wait out the interval and take everything that came meanwhile.
                    if let Some(wait) = self.linger(last_begun, &read) {
                        let refused = tokio::select! {
                            _ = self.shutdown.changed() => false,
                            _ = self.spec.ingest_refused.notified() => true,
                            _ = tokio::time::sleep(wait) => false,
                        };
                        if !refused {
                            continue;
                        }
                        // Ingest is refusing records until these are processed: commit
                        // what was read, now (reading again would wait again).
                    }
                    let range = CommitRange { first: first.position.clone(), last: last.position.clone() };
                    let begun = log.begin_commit(CONSUMER, &stream, &shard, range.clone()).await;
                    let begun = begun.map_err(|e| self.log_error(e))?;
                    // The records just read are the commit's, unless the log handed back
                    // another pending range.
                    let records = (begun == range).then_some(read.records);
                    (begun, records)
                }
            };
            // A commit begins, fresh or redone: `commit_interval` runs from here.
            last_begun = Some(Instant::now());
            let records = match read {
                Some(records) => records,
                None => self.read_range(&range).await?,
            };
            if records.is_empty() {
                // Retention removed the whole range before it was processed.
                let state = windows.encode();
                let finished = log.finish_commit(CONSUMER, &stream, &shard, range.clone(), state).await;
                finished.map_err(|e| self.log_error(e))?;
                committed = Some(range.last);
                continue;
            }
            let started = Instant::now();
            let mut next_windows = windows.clone();
            let Some(produced) = self.process_in_calls(&records, &mut next_windows).await else {
                // Shut down between two calls: the range stays pending and is redone.
                return Ok(());
            };
            if let Some(err) = self.take_start_failure() {
                // A live plugin cannot start: no record ran, so none is dead-lettered.
                // The commit is held and redone, over the same range, once the plugin
                // starts again (the cause cleared, or a working version was activated).
                unavailable_for += 1;
                let wait = Duration::from_secs(1 << unavailable_for.min(5)).min(MAX_START_RETRY);
                tracing::error!(
                    %stream, %shard,
                    "commit {range} held: {err}; no record is dead-lettered, retrying in {} s (activate a working version, or fix its configuration)",
                    wait.as_secs()
                );
                self.metrics.add("weir_plugin_start_failures_total", &[("plugin", &err.plugin)], 1);
                self.spec.plugin_health.failed(&err.plugin, &format!("{stream}/{shard}"), &err.reason());
                held_by = Some(err.plugin);
                pending = Some(range);
                tokio::select! {
                    _ = self.shutdown.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            if let Some(plugin) = held_by.take() {
                unavailable_for = 0;
                self.spec.plugin_health.succeeded(&plugin, &format!("{stream}/{shard}"));
                tracing::info!(%stream, %shard, "plugin {plugin} runs again; commit {range} proceeds");
            }
            match self.deliver(&records, &range, produced).await {
                Ok(()) => {
                    let state = next_windows.encode();
                    let finished = log.finish_commit(CONSUMER, &stream, &shard, range.clone(), state).await;
                    finished.map_err(|e| self.log_error(e))?;
                    windows = next_windows;
                    committed = Some(range.last);
                    self.metrics.observe_commit(&stream, started.elapsed());
                }
                Err(Undelivered::Shutdown) => return Ok(()),
                Err(Undelivered::Failed(err)) => {
                    // A sink refused for good (a configuration or encoding problem): the
                    // commit stays pending and is retried later, nothing is lost.
                    tracing::error!(%stream, %shard, "commit {range} not delivered, will retry: {err}");
                    self.metrics.add("weir_delivery_failures_total", &[("stream", &stream)], 1);
                    pending = Some(range);
                    tokio::select! {
                        _ = self.shutdown.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    }

    /// How long to wait before committing what `read` found, if at all: what is left of
    /// `commit_interval` since the last commit began, unless a full commit is waiting
    /// (`full_commit_records`, or the log knows of more: a commit that large costs little
    /// per record already, and a backlog is not held back) or the shard has ended (its
    /// children wait for this commit).
    fn linger(&self, last_begun: Option<Instant>, read: &ShardRead) -> Option<Duration> {
        let left = self.spec.commit_interval.checked_sub(last_begun?.elapsed())?;
        let full = read.more_waiting || read.records.len() >= self.spec.full_commit_records;
        (!full && !read.end_of_shard && !left.is_zero()).then_some(left)
    }

    /// The records of a pending `range`, read again (after a restart, or when the log
    /// handed back a range begun earlier). Records retention removed are skipped.
    async fn read_range(&self, range: &CommitRange) -> Result<Vec<LogRecord>, StageError> {
        let (stream, shard) = (self.spec.stream.as_str(), &self.shard);
        let limits = ReadLimits { records: self.spec.commit_size.max(1), bytes: usize::MAX };
        let mut records: Vec<LogRecord> = Vec::new();
        let mut from = ReadFrom::At(range.first.clone());
        let mut empty_reads = 0;
        loop {
            let read = self.log.read(stream, shard, from.clone(), limits).await.map_err(|e| self.log_error(e))?;
            let Some(last) = read.records.last() else {
                // An empty read may only mean "not now" (Kinesis answers empty pages, and
                // a throttled read is empty): read again a few times before taking it as
                // the end of what the log still holds of the range (retention removed
                // the rest).
                if read.end_of_shard || empty_reads >= MAX_EMPTY_RANGE_READS {
                    return Ok(records);
                }
                empty_reads += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            empty_reads = 0;
            from = ReadFrom::After(last.position.clone());
            let reached_the_end = last.position >= range.last || read.end_of_shard;
            records.extend(read.records.into_iter().filter(|r| r.position <= range.last));
            if reached_the_end {
                return Ok(records);
            }
        }
    }

    async fn report_lag(&self, committed: Option<&weir_log::Position>) {
        if let Ok(Some(lag)) = self.log.lag(&self.spec.stream, &self.shard, committed).await {
            let shard = self.shard.to_string();
            let lag = i64::try_from(lag).unwrap_or(i64::MAX);
            self.metrics.set("weir_shard_lag_records", &[("stream", &self.spec.stream), ("shard", &shard)], lag);
        }
    }

    /// Runs the plugin chain over a commit's records in calls of at most `batch_size`
    /// records and `batch_bytes` bytes, one after the other (window state carries from
    /// call to call), and joins their outputs. The plugins' limits bound each call; the
    /// sinks and the checkpoint see the commit once. Every call of a commit runs the
    /// versions live when the commit started, so a swap takes effect between commits.
    /// `None` when the host shuts down between two calls.
    async fn process_in_calls(&self, records: &[LogRecord], windows: &mut WindowState) -> Option<Produced> {
        let spec = &self.spec;
        let versions = Versions {
            parser: spec.parser.snapshot(),
            enrichers: spec.enrichers.iter().map(|slot| slot.snapshot()).collect(),
            aggregator: spec.aggregator.as_ref().map(|agg| agg.slot.snapshot().live.clone()),
        };
        let mut all = Produced::default();
        for calls in call_ranges(records, spec.batch_size, spec.batch_bytes) {
            if *self.shutdown.borrow() {
                return None;
            }
            let offset = calls.start;
            let part = self.process(&records[calls], &versions, windows).await;
            all.append(part, offset);
        }
        Some(all)
    }

    /// Runs the plugin chain over one call's records. Never fails as a whole: what a plugin
    /// refuses, or a call that traps, becomes dead letters naming the plugin.
    async fn process(&self, records: &[LogRecord], versions: &Versions, windows: &mut WindowState) -> Produced {
        let spec = &self.spec;
        let label = format!(
            "stream {} shard {} records {}..={} ({} records)",
            spec.stream,
            self.shard,
            records[0].position,
            records[records.len() - 1].position,
            records.len()
        );
        let stream = spec.stream.as_str();
        let mut dead = Vec::new();
        self.metrics.add("weir_records_in_total", &[("stream", stream)], records.len() as u64);

        let (parser, enrichers) = (&versions.parser, &versions.enrichers);
        let mut lineages = LineageNames::default();
        let label_ref = label.as_str();

        fn to_raw(r: &LogRecord) -> RawRecordRef<'_> {
            RawRecordRef {
                data: &r.data,
                key: r.partition_key.as_deref(),
                content_type: &r.content_type,
                arrival_time: r.arrival_time,
            }
        }
        let keys: Vec<Option<String>> = records.iter().map(|r| r.partition_key.clone()).collect();
        let all_origins: Origins = (0..records.len()).collect();
        let step = Step { label: &label, stage: "parse", slot: &spec.parser, active: parser, records };
        let (mut columns, mut origins, mut lineage) = self
            .run_step(step, &keys, &all_origins, None, &mut lineages, &mut dead, |plugin, inputs| {
                let raw = inputs.into_iter().map(move |i| to_raw(&records[i]));
                async move { plugin.parse_records(label_ref, raw).await }
            })
            .await;

        for (slot, active) in spec.enrichers.iter().zip(enrichers) {
            if columns.is_empty() {
                continue;
            }
            let input = std::mem::take(&mut columns);
            let input_origins = std::mem::take(&mut origins);
            let input_lineage = std::mem::take(&mut lineage);
            // Decoded only when the batch must be split (a failed call, a canary). The
            // runtime validated it, so decoding cannot fail; if it ever did, every input
            // of the step is dead-lettered with the reason rather than lost.
            let decoded: std::sync::OnceLock<Result<Vec<Event>, String>> = std::sync::OnceLock::new();
            let decode = || decoded.get_or_init(|| input.decode().map_err(|e| e.to_string())).as_ref();
            let undecodable = |reason: &str, dead: &mut Vec<Dead>| {
                dead.extend(input_origins.iter().zip(&input_lineage).map(|(&origin, lineage)| Dead {
                    origin,
                    plugin: lineage.to_string(),
                    stage: "decode",
                    reason: format!("the events could not be decoded for {}: {reason}", slot.name()),
                }));
            };
            let keys: Vec<Option<String>> = match &active.candidate {
                Some(c) if matches!(c.mode, CandidateMode::Canary { .. }) => match decode() {
                    Ok(events) => events.iter().map(|e| e.key.clone()).collect(),
                    Err(reason) => {
                        undecodable(reason, &mut dead);
                        continue;
                    }
                },
                _ => vec![None; input.len()],
            };
            let step = Step { label: &label, stage: "enrich", slot, active, records };
            let dead_before = dead.len();
            (columns, origins, lineage) = self
                .run_step(
                    step,
                    &keys,
                    &input_origins,
                    Some(&input_lineage),
                    &mut lineages,
                    &mut dead,
                    |plugin, inputs| {
                        let batch = if inputs.len() == input.len() {
                            input.clone()
                        } else {
                            // An undecodable input is handled after the step.
                            let events = decode().map(Vec::as_slice).unwrap_or_default();
                            Columns::encode(inputs.iter().filter_map(|&i| events.get(i)))
                        };
                        async move { plugin.enrich(label_ref, batch).await }
                    },
                )
                .await;
            if let Some(Err(reason)) = decoded.get() {
                // A split call could not be built: what the step produced is incomplete.
                // One dead letter per input, whatever the step said of it.
                (columns, origins, lineage) = Default::default();
                dead.truncate(dead_before);
                undecodable(reason, &mut dead);
            }
        }

        let events = decode_or_dead_letter(
            &columns,
            origins.iter().zip(&lineage).map(|(&origin, l)| (origin, l.to_string())),
            "decode",
            &mut dead,
        );
        if events.is_none() {
            origins.clear();
            lineage.clear();
        }
        let events = events.unwrap_or_default();
        // The stream's field names are bounded (streams.max_fields): checked per batch,
        // and per event only when the batch's names do not all fit.
        let names_fit = spec.event_fields.admit_all(columns.names.iter().map(String::as_str));
        // An event time far ahead of its arrival (a typo, a unit error) would drag the
        // watermark forward and close every open window early: such events are refused.
        let mut kept = Vec::with_capacity(events.len());
        let mut kept_origins = Vec::with_capacity(events.len());
        let mut kept_lineage = Vec::with_capacity(events.len());
        for ((event, origin), event_lineage) in events.into_iter().zip(origins).zip(lineage) {
            if !names_fit
                && let Err(reason) = spec.event_fields.admit(&spec.stream, event.fields.iter().map(|(n, _)| &**n))
            {
                dead.push(Dead { origin, plugin: event_lineage.to_string(), stage: "validate", reason });
                continue;
            }
            let arrival = records[origin].arrival_time;
            if event.time <= arrival.saturating_add(MAX_FUTURE_SKEW) {
                kept.push(event);
                kept_origins.push(origin);
                kept_lineage.push(event_lineage);
                continue;
            }
            let reason = format!(
                "event time {} is more than 7 days after the record arrived ({}); check the timestamp's unit and time zone",
                weir_events::time::format_rfc3339(event.time),
                weir_events::time::format_rfc3339(arrival)
            );
            dead.push(Dead { origin, plugin: event_lineage.to_string(), stage: "validate", reason });
        }
        let (events, origins, lineage) = (kept, kept_origins, kept_lineage);
        let aggregates = match (&spec.aggregator, &versions.aggregator) {
            (Some(agg), Some(plugin)) => {
                // The aggregator's live version at the start of the commit folds and
                // finishes it; open groups carry their states over a swap.
                let aggregates = self.aggregate(agg, plugin, &label, &events, &origins, windows, &mut dead).await;
                let upstream = lineage.first().map_or_else(|| versions.live_chain(), |l| l.to_string());
                let aggregate_lineage: Arc<str> = format!("{upstream}>{}", plugin.id()).into();
                aggregates.into_iter().map(|(id, event)| (id, event, aggregate_lineage.clone())).collect()
            }
            _ => Vec::new(),
        };
        Produced { events, origins, lineage, aggregates, dead }
    }

    /// Joins the pieces of a (possibly split) plugin call back into one batch of events
    /// with their origins; per-record errors and the inputs of failed pieces become dead
    /// letters. `origin_of` maps an input index to its raw record.
    fn assemble(
        &self,
        pieces: Vec<Piece<(weir_runtime::BatchOutput, weir_runtime::CallStats)>>,
        origin_of: &dyn Fn(usize) -> usize,
        plugin: &str,
        stage: &'static str,
        dead: &mut Vec<Dead>,
    ) -> (Columns, Vec<usize>) {
        let whole = pieces.len() == 1;
        let mut events = Vec::new();
        let mut inputs = Vec::new();
        for piece in pieces {
            let start = piece.inputs.start;
            match piece.result {
                Ok((out, _)) => {
                    for e in &out.errors {
                        let origin = origin_of(start + e.index as usize);
                        dead.push(Dead { origin, plugin: plugin.to_owned(), stage, reason: e.message.clone() });
                    }
                    let piece_inputs: Vec<usize> =
                        out.ranges().enumerate().flat_map(|(i, r)| std::iter::repeat_n(start + i, r.len())).collect();
                    if whole {
                        // The usual case: the batch goes on as the plugin returned it.
                        return (out.events, piece_inputs);
                    }
                    let outputs = piece_inputs.iter().map(|&input| (origin_of(input), plugin.to_owned()));
                    if let Some(decoded) = decode_or_dead_letter(&out.events, outputs, stage, dead) {
                        events.extend(decoded);
                        inputs.extend(piece_inputs);
                    }
                }
                Err(err) => {
                    self.plugin_failed(plugin, &err);
                    let reason = weir_runtime::isolate::reason(&err, piece.inputs.len());
                    dead.extend(piece.inputs.map(|i| Dead {
                        origin: origin_of(i),
                        plugin: plugin.to_owned(),
                        stage,
                        reason: reason.clone(),
                    }));
                }
            }
        }
        (Columns::encode(&events), inputs)
    }

    /// Runs one plugin step over `keys.len()` inputs: the live version on all of them,
    /// or, with a canary, the candidate on the inputs whose key falls in its buckets and
    /// the live version on the rest; with a shadow, the candidate also runs on every
    /// input and its outputs are compared with the live ones, then discarded. Returns the
    /// outputs in input order with their origins and lineages.
    #[allow(clippy::too_many_arguments)]
    async fn run_step<F, Fut>(
        &self,
        step: Step<'_>,
        keys: &[Option<String>],
        input_origins: &[usize],
        input_lineage: Option<&[Arc<str>]>,
        names: &mut LineageNames,
        dead: &mut Vec<Dead>,
        call: F,
    ) -> (Columns, Origins, Lineages)
    where
        F: Fn(Arc<Plugin>, Vec<usize>) -> Fut,
        Fut: std::future::Future<Output = CallResult>,
    {
        let n = keys.len();
        let live = &step.active.live;
        let candidate = step.active.candidate.as_ref();
        let canary = candidate.filter(|c| matches!(c.mode, CandidateMode::Canary { .. }));
        let (live_inputs, canary_inputs): (Vec<usize>, Vec<usize>) = match canary {
            // A record without a partition key is split by its log position (stable
            // across replays), so a canary on a keyless stream takes its share instead of
            // all records or none.
            Some(c) => (0..n).partition(|&i| {
                let position =
                    || step.records.get(input_origins[i]).map(|r| r.position.to_string()).unwrap_or_default();
                !c.takes(keys[i].as_deref().filter(|k| !k.is_empty()).map_or_else(position, str::to_owned).as_str())
            }),
            None => ((0..n).collect(), Vec::new()),
        };
        let dead_before = dead.len();
        let (live_columns, live_outputs) = self.call_part(&step, live, &live_inputs, input_origins, dead, &call).await;
        if let Some(shadow) = candidate.filter(|c| c.mode == CandidateMode::Shadow) {
            // What the live version refused, by record, so a sample shows its reason.
            let live_errors: HashMap<usize, &str> =
                dead[dead_before..].iter().map(|d| (d.origin, d.reason.as_str())).collect();
            let result = call(shadow.plugin.clone(), (0..n).collect()).await;
            let live = LiveOutputs { columns: &live_columns, outputs: &live_outputs, errors: &live_errors };
            self.compare_shadow(&step, shadow, &live, result, input_origins, n);
            step.slot.judge(shadow);
        }
        let lineage_of = |names: &mut LineageNames, input: usize, plugin: &Plugin| {
            names.extend(input_lineage.map(|l| &l[input]), plugin)
        };
        let (Some(canary), false) = (canary, canary_inputs.is_empty()) else {
            let origins = live_outputs.iter().map(|&i| input_origins[i]).collect();
            let lineage = live_outputs.iter().map(|&i| lineage_of(names, i, live)).collect();
            return (live_columns, origins, lineage);
        };
        let before = dead.len();
        let (canary_columns, canary_outputs) =
            self.call_part(&step, &canary.plugin, &canary_inputs, input_origins, dead, &call).await;
        canary.stats.record(canary_inputs.len() as u64, (dead.len() - before) as u64);
        step.slot.judge(canary);
        // Merge both parts back into input order (each part is in input order).
        let mut parts = [(live_columns, live_outputs, live), (canary_columns, canary_outputs, &canary.plugin)].map(
            |(columns, outputs, plugin)| {
                let id = plugin.id().to_string();
                let each = outputs.iter().map(|&i| (input_origins[i], id.clone()));
                let events = decode_or_dead_letter(&columns, each, step.stage, dead).unwrap_or_default();
                events.into_iter().zip(outputs).map(move |(event, input)| (input, event, plugin)).peekable()
            },
        );
        let mut events = Vec::with_capacity(n);
        let mut origins = Vec::with_capacity(n);
        let mut lineage = Vec::with_capacity(n);
        loop {
            let [first, second] = &mut parts;
            let next = match (first.peek(), second.peek()) {
                (Some(a), Some(b)) => usize::from(b.0 < a.0),
                (Some(_), None) => 0,
                (None, Some(_)) => 1,
                (None, None) => break,
            };
            let Some((input, event, plugin)) = parts[next].next() else { break };
            events.push(event);
            origins.push(input_origins[input]);
            lineage.push(lineage_of(names, input, plugin));
        }
        (Columns::encode(&events), origins, lineage)
    }

    /// Calls `plugin` on `inputs` (indices into the step's inputs), splitting a failed
    /// call to isolate the input that fails it. Returns the outputs and, per output, its
    /// input index.
    async fn call_part<F, Fut>(
        &self,
        step: &Step<'_>,
        plugin: &Arc<Plugin>,
        inputs: &[usize],
        input_origins: &[usize],
        dead: &mut Vec<Dead>,
        call: &F,
    ) -> (Columns, Vec<usize>)
    where
        F: Fn(Arc<Plugin>, Vec<usize>) -> Fut,
        Fut: std::future::Future<Output = CallResult>,
    {
        if inputs.is_empty() {
            return (Columns::default(), Vec::new());
        }
        let _ = step.label;
        let id = plugin.id().to_string();
        let pieces =
            isolate(inputs.len(), ISOLATION_BUDGET, |range| call(plugin.clone(), inputs[range].to_vec())).await;
        // The live version cannot start: its inputs are held with the whole commit. (A
        // canary that cannot start fails its records, and its error rate rolls it back.)
        if Arc::ptr_eq(plugin, &step.active.live)
            && let Some(err) = pieces.iter().find_map(|p| p.result.as_ref().err().filter(|e| e.is_start_failure()))
        {
            self.hold(err.clone());
            return (Columns::default(), Vec::new());
        }
        let (columns, local) = self.assemble(pieces, &|j| input_origins[inputs[j]], &id, step.stage, dead);
        self.count_out(&id, columns.len());
        (columns, local.into_iter().map(|j| inputs[j]).collect())
    }

    /// Compares a shadow call's outputs with the live ones, input by input, and counts
    /// its failures. Nothing of the shadow is delivered.
    fn compare_shadow(
        &self,
        step: &Step<'_>,
        shadow: &ActiveCandidate,
        live: &LiveOutputs<'_>,
        result: CallResult,
        input_origins: &[usize],
        n: usize,
    ) {
        let describe = |input: usize| {
            let origin = input_origins[input];
            let position = step.records.get(origin).map_or_else(String::new, |r| r.position.to_string());
            format!("{}/{}/{position}", self.spec.stream, self.shard)
        };
        let events_json = |events: &[&Event]| {
            serde_json::Value::Array(events.iter().map(|e| weir_events::json::event_to_json(e)).collect())
        };
        let live_events = live.columns.decode().unwrap_or_default();
        let mut live_by_input: Vec<Vec<&Event>> = vec![Vec::new(); n];
        for (event, &input) in live_events.iter().zip(live.outputs) {
            live_by_input[input].push(event);
        }
        let live_json = |input: usize| match live.errors.get(&input_origins[input]) {
            Some(reason) => serde_json::json!({ "error": reason }),
            None => events_json(&live_by_input[input]),
        };
        let (out, _) = match result {
            Ok(ok) => ok,
            Err(err) => {
                self.plugin_failed(&shadow.plugin.id().to_string(), &err);
                shadow.stats.record(n as u64, n as u64);
                for input in 0..n {
                    let candidate = serde_json::json!({ "error": err.reason() });
                    shadow.stats.compare(Some(ShadowDiff::new(describe(input), live_json(input), candidate)));
                }
                return;
            }
        };
        shadow.stats.record(n as u64, out.errors.len() as u64);
        let shadow_events = out.events.decode().unwrap_or_default();
        let errors: HashMap<usize, &str> = out.errors.iter().map(|e| (e.index as usize, e.message.as_str())).collect();
        for (input, range) in out.ranges().enumerate().take(n) {
            let candidate: Vec<&Event> = shadow_events.get(range).map(|s| s.iter().collect()).unwrap_or_default();
            let same = match (errors.get(&input), live.errors.get(&input_origins[input])) {
                (None, None) => candidate == live_by_input[input],
                // Both refused the record: the same outcome, whatever the words.
                (Some(_), Some(_)) => true,
                _ => false,
            };
            let diff = (!same).then(|| {
                let candidate = match errors.get(&input) {
                    Some(message) => serde_json::json!({ "error": message }),
                    None => events_json(&candidate),
                };
                ShadowDiff::new(describe(input), live_json(input), candidate)
            });
            shadow.stats.compare(diff);
        }
    }

    fn plugin_failed(&self, plugin: &str, err: &weir_runtime::CallError) {
        tracing::warn!(stream = %self.spec.stream, shard = %self.shard, "{err}");
        let kind = match &err.kind {
            weir_runtime::CallErrorKind::Limit(_) => "limit",
            weir_runtime::CallErrorKind::Trap(_) => "trap",
            weir_runtime::CallErrorKind::Contract(_) => "contract",
            weir_runtime::CallErrorKind::Lookup(_) => "lookup",
            weir_runtime::CallErrorKind::Start(_) => "start",
        };
        self.metrics.add("weir_plugin_failures_total", &[("plugin", plugin), ("kind", kind)], 1);
    }

    fn count_out(&self, plugin: &str, n: usize) {
        self.metrics.add(
            "weir_plugin_events_out_total",
            &[("stream", &self.spec.stream), ("plugin", plugin)],
            n as u64,
        );
    }

    /// Folds the call's events into their (window, key) groups, then finishes the
    /// windows the watermark has passed.
    #[allow(clippy::too_many_arguments)]
    async fn aggregate(
        &self,
        agg: &AggregatorSpec,
        plugin: &Plugin,
        label: &str,
        events: &[Event],
        origins: &[usize],
        windows: &mut WindowState,
        dead: &mut Vec<Dead>,
    ) -> Vec<(String, Event)> {
        let id = plugin.id().to_string();
        let watermark = windows.watermark(agg.allowed_lateness);
        let mut call = CallGroups::default();
        let mut on_time = Vec::new();
        let mut on_time_origins = Vec::new();
        // The open groups' states are bounded per stage: once they hold max_open_state,
        // only events of groups already open count. One call can pass the bound by at
        // most its output bytes.
        let open_state: usize = windows.groups.values().map(Vec::len).sum();
        let full = open_state >= agg.max_open_state;
        for (event, &origin) in events.iter().zip(origins) {
            let window = Window::of(event.time, agg.window);
            if full
                && window.end > watermark
                && !windows.groups.contains_key(&(window, event.key.clone().unwrap_or_default()))
            {
                let reason = format!(
                    "the aggregation's open groups hold {open_state} bytes of state, at its limit of {} \
                     (streams.aggregator.max_open_state), so this event cannot open group {}..{} key {:?}; \
                     raise the limit or shorten the window",
                    agg.max_open_state,
                    weir_events::time::format_rfc3339(window.start),
                    weir_events::time::format_rfc3339(window.end),
                    event.key.as_deref().unwrap_or("")
                );
                dead.push(Dead { origin, plugin: id.clone(), stage: "aggregate", reason });
                continue;
            }
            if window.end <= watermark {
                self.metrics.add("weir_late_events_total", &[("stream", &self.spec.stream)], 1);
                if agg.late_events == LateEvents::DeadLetter {
                    let reason = format!(
                        "late event: its window {}..{} closed at watermark {} (allowed lateness {} ms)",
                        weir_events::time::format_rfc3339(window.start),
                        weir_events::time::format_rfc3339(window.end),
                        weir_events::time::format_rfc3339(watermark),
                        agg.allowed_lateness / 1000
                    );
                    dead.push(Dead { origin, plugin: id.clone(), stage: "aggregate", reason });
                }
                continue;
            }
            call.add(window, event.key.as_deref());
            on_time.push(event);
            on_time_origins.push(origin);
        }
        if !call.is_empty() {
            match aggregation::accumulate(plugin, label, call, on_time.iter().copied(), &mut windows.groups).await {
                Ok((out, _)) => {
                    for e in &out.errors {
                        dead.push(Dead {
                            origin: on_time_origins[e.index as usize],
                            plugin: id.clone(),
                            stage: "aggregate",
                            reason: e.message.clone(),
                        });
                    }
                    if let Some(max) = on_time.iter().map(|e| e.time).max() {
                        windows.max_event_time = windows.max_event_time.max(max);
                    }
                }
                Err(err) if err.is_start_failure() => self.hold(err),
                Err(err) => {
                    self.plugin_failed(&id, &err);
                    dead.extend(on_time_origins.iter().map(|&o| Dead {
                        origin: o,
                        plugin: id.clone(),
                        stage: "aggregate",
                        reason: err.reason(),
                    }));
                }
            }
        }
        let watermark = windows.watermark(agg.allowed_lateness);
        let closed: Vec<GroupKey> = windows.groups.keys().filter(|(w, _)| w.end <= watermark).cloned().collect();
        if closed.is_empty() {
            return Vec::new();
        }
        let finished = aggregation::finished_groups(&closed, &windows.groups);
        match plugin.finish(label, finished).await {
            Ok((out, _)) => {
                for e in &out.errors {
                    tracing::warn!(plugin = %id, "finishing group {:?} failed: {}", closed[e.index as usize], e.message);
                    self.metrics.add("weir_aggregate_failures_total", &[("plugin", &id)], 1);
                }
                let mut aggregates = Vec::new();
                let names_fit = self.spec.aggregate_fields.admit_all(out.events.names.iter().map(String::as_str));
                match out.events.decode() {
                    Ok(events) => {
                        let mut events = events.into_iter();
                        for (group, range) in closed.iter().zip(out.ranges()) {
                            for n in 0..range.len() {
                                if let Some(event) = events.next() {
                                    // Aggregates have no record to dead-letter: one past the
                                    // stream's field names is dropped, logged and counted.
                                    if !names_fit
                                        && let Err(reason) = self
                                            .spec
                                            .aggregate_fields
                                            .admit(&self.spec.stream, event.fields.iter().map(|(n, _)| &**n))
                                    {
                                        tracing::warn!(plugin = %id, "an aggregate of group {group:?} was dropped: {reason}");
                                        self.metrics.add("weir_aggregate_failures_total", &[("plugin", &id)], 1);
                                        continue;
                                    }
                                    // One id per (shard, window, key, output): stable across
                                    // replays whatever time or key the plugin gives the event.
                                    let id = format!(
                                        "{}-{:0>4}-agg-{}-{}-{n}",
                                        self.spec.stream, self.shard, group.0.start, group.1
                                    );
                                    aggregates.push((id, event));
                                }
                            }
                        }
                    }
                    Err(err) => tracing::error!(plugin = %id, "finish returned an unreadable batch: {err}"),
                }
                for k in &closed {
                    windows.groups.remove(k);
                }
                self.count_out(&id, aggregates.len());
                aggregates
            }
            Err(err) => {
                // The groups stay open and are finished again after the next call: a
                // plugin that cannot finish holds them (and says so) rather than lose them.
                self.plugin_failed(&id, &err);
                self.metrics.add("weir_aggregate_failures_total", &[("plugin", &id)], closed.len() as u64);
                Vec::new()
            }
        }
    }

    /// Hands each sink its part of the commit and waits for every acknowledgement.
    async fn deliver(&self, records: &[LogRecord], range: &CommitRange, produced: Produced) -> Result<(), Undelivered> {
        let spec = &self.spec;
        let stream = spec.stream.as_str();
        let commit_id = CommitId::log_range(stream, self.shard.as_str(), range.first.as_str(), range.last.as_str());
        let id = |position: &str, n: usize| commit_id.record_id(position, n);
        let position = |origin: usize| records[origin].position.as_str().to_owned();
        let mut per_origin = vec![0usize; records.len()];
        let mut raw = Vec::new();
        if !spec.routes.raw.is_empty() {
            for r in records {
                let item = RawItem {
                    partition_key: r.partition_key.clone(),
                    content_type: r.content_type.clone(),
                    arrival_time: r.arrival_time,
                    data: r.data.clone(),
                };
                let position = r.position.as_str();
                raw.push(SinkRecord { id: id(position, 0), position: position.to_owned(), item: SinkItem::Raw(item) });
            }
        }
        let mut events = Vec::new();
        for ((event, &origin), lineage) in produced.events.into_iter().zip(&produced.origins).zip(&produced.lineage) {
            let n = per_origin[origin];
            per_origin[origin] += 1;
            let item = Arc::new(EventItem { event, lineage: lineage.to_string() });
            let position = position(origin);
            events.push(SinkRecord { id: id(&position, n), position, item: SinkItem::Event(item) });
        }
        let mut aggregates = Vec::new();
        for (agg_id, event, lineage) in produced.aggregates {
            let item = Arc::new(EventItem { event, lineage: lineage.to_string() });
            aggregates.push(SinkRecord {
                id: agg_id,
                position: range.last.as_str().to_owned(),
                item: SinkItem::Aggregate(item),
            });
        }
        let mut dead = Vec::new();
        // Numbered per record, like events: a dead letter's id does not depend on how
        // the commit was split into calls or on what happened to other records.
        let mut dead_per_origin = vec![0usize; records.len()];
        for d in produced.dead {
            let n = dead_per_origin[d.origin];
            dead_per_origin[d.origin] += 1;
            let r = &records[d.origin];
            let position = position(d.origin);
            self.metrics.add("weir_dead_letters_total", &[("stream", stream), ("stage", d.stage)], 1);
            let item = DeadLetter {
                plugin: d.plugin,
                stage: d.stage.to_owned(),
                reason: d.reason,
                original: r.data.clone(),
                content_type: r.content_type.clone(),
                arrival_time: r.arrival_time,
            };
            let dead_id = format!("{}-dead-{n}", id(&position, 0));
            dead.push(SinkRecord { id: dead_id, position, item: SinkItem::DeadLetter(item) });
        }
        self.metrics.add("weir_events_out_total", &[("stream", stream)], events.len() as u64);
        self.metrics.add("weir_aggregates_out_total", &[("stream", stream)], aggregates.len() as u64);

        // A dead-letter object is keyed by the commit, so a second pass for records sinks
        // reject must write this commit's own dead letters again beside them.
        let own_dead_letters = if dead.is_empty() { Vec::new() } else { dead.clone() };
        // Each sink gets one commit with everything routed to it.
        let mut per_sink: Vec<(Arc<dyn Sink>, Vec<SinkRecord>)> = Vec::new();
        let routes = [
            (&spec.routes.raw, raw),
            (&spec.routes.events, events),
            (&spec.routes.aggregates, aggregates),
            (&spec.routes.dead_letters, dead),
        ];
        for (sinks, mut items) in routes {
            for (i, sink) in sinks.iter().enumerate() {
                // The last sink of a route takes the items; only a route to several
                // sinks pays for copies.
                let items = if i + 1 == sinks.len() { std::mem::take(&mut items) } else { items.clone() };
                match per_sink.iter_mut().find(|(s, _)| Arc::ptr_eq(s, sink)) {
                    Some((_, all)) => all.extend(items),
                    None => per_sink.push((sink.clone(), items)),
                }
            }
        }
        let arrival_time = records[0].arrival_time;
        let rejected = self.deliver_to(per_sink, &commit_id, arrival_time).await?;
        if rejected.is_empty() {
            return Ok(());
        }
        // Records a sink refused for good go to the dead-letter sinks, with the sink's
        // reason, in the same commit: it is checkpointed only once they are written.
        let by_position: std::collections::HashMap<&str, usize> =
            records.iter().enumerate().map(|(i, r)| (r.position.as_str(), i)).collect();
        let mut dead_letters: Vec<(Arc<dyn Sink>, Vec<SinkRecord>)> = Vec::new();
        for (sink_name, record, reason) in rejected {
            self.metrics.add("weir_sink_rejections_total", &[("stream", stream), ("sink", &sink_name)], 1);
            let origin = match (&record.item, by_position.get(record.position.as_str())) {
                // An aggregate has no one record it came from to replay; a dead letter
                // refused by a dead-letter sink has nowhere else to go.
                (SinkItem::DeadLetter(_) | SinkItem::Aggregate(_), _) | (_, None) => {
                    tracing::error!(
                        %stream, sink = %sink_name, record = %record.id,
                        "sink refused a {} for good and it cannot be dead-lettered: {reason}", record.item.kind()
                    );
                    continue;
                }
                (_, Some(&i)) => &records[i],
            };
            let item = DeadLetter {
                plugin: format!("sink:{sink_name}"),
                stage: "sink".to_owned(),
                reason: format!("sink {sink_name} refused the {} {}: {reason}", record.item.kind(), record.id),
                original: origin.data.clone(),
                content_type: origin.content_type.clone(),
                arrival_time: origin.arrival_time,
            };
            let dead = SinkRecord {
                id: format!("{}-rejected-by-{sink_name}", record.id),
                position: record.position.clone(),
                item: SinkItem::DeadLetter(item),
            };
            self.metrics.add("weir_dead_letters_total", &[("stream", stream), ("stage", "sink")], 1);
            // Never back to the sink that refused it.
            for sink in spec.routes.dead_letters.iter().filter(|sink| sink.name() != sink_name) {
                match dead_letters.iter_mut().find(|(s, _)| Arc::ptr_eq(s, sink)) {
                    Some((_, all)) => all.push(dead.clone()),
                    None => dead_letters.push((sink.clone(), vec![dead.clone()])),
                }
            }
        }
        for (_, items) in &mut dead_letters {
            items.extend(own_dead_letters.iter().cloned());
        }
        let refused_again = self.deliver_to(dead_letters, &commit_id, arrival_time).await?;
        for (sink_name, record, reason) in refused_again {
            tracing::error!(%stream, sink = %sink_name, record = %record.id, "dead-letter sink refused a dead letter for good: {reason}");
        }
        Ok(())
    }

    /// Delivers each sink its records of the commit `commit_id` concurrently and waits
    /// for every acknowledgement; returns the records the sinks refused for good, with
    /// the refusing sink's name and reason.
    async fn deliver_to(
        &self,
        per_sink: Vec<(Arc<dyn Sink>, Vec<SinkRecord>)>,
        commit_id: &CommitId,
        arrival_time: i64,
    ) -> Result<Vec<(String, SinkRecord, String)>, Undelivered> {
        let spec = &self.spec;
        let mut tasks = tokio::task::JoinSet::new();
        for (sink, items) in per_sink {
            let batch = SinkCommit { id: commit_id.clone(), arrival_time, records: items };
            let policy = spec.retry.clone();
            let shutdown = self.shutdown.clone();
            let health = spec.health.clone();
            let metrics = self.metrics.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let delivered =
                    weir_sinks::deliver_watched(sink.as_ref(), batch, &policy, &shutdown, Some(&health)).await;
                if delivered.is_ok() {
                    metrics.observe_sink_write(sink.name(), started.elapsed());
                }
                (sink.name().to_owned(), delivered)
            });
        }
        let mut outcome = Ok(Vec::new());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, Ok(stats))) => {
                    if let Ok(rejected) = &mut outcome {
                        rejected.extend(stats.rejected.into_iter().map(|(record, why)| (name.clone(), record, why)));
                    }
                }
                Ok((_, Err(DeliveryError::Shutdown { .. }))) => outcome = Err(Undelivered::Shutdown),
                Ok((_, Err(err))) => {
                    if !matches!(outcome, Err(Undelivered::Shutdown)) {
                        outcome = Err(Undelivered::Failed(err.to_string()));
                    }
                }
                Err(panic) => {
                    if !matches!(outcome, Err(Undelivered::Shutdown)) {
                        outcome = Err(Undelivered::Failed(format!("a sink task panicked: {panic}")));
                    }
                }
            }
        }
        outcome
    }
}

/// Decodes a plugin's output. The runtime validated it, so decoding cannot fail; if it
/// ever did, the record of every event (`outputs`: per event its origin and the plugin
/// or lineage to name) is dead-lettered with the reason instead of being lost.
fn decode_or_dead_letter(
    columns: &Columns,
    outputs: impl IntoIterator<Item = (usize, String)>,
    stage: &'static str,
    dead: &mut Vec<Dead>,
) -> Option<Vec<Event>> {
    match columns.decode() {
        Ok(events) => Some(events),
        Err(err) => {
            let reason = err.to_string();
            dead.extend(outputs.into_iter().map(|(origin, plugin)| Dead {
                origin,
                plugin,
                stage,
                reason: reason.clone(),
            }));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(sizes: &[usize]) -> Vec<LogRecord> {
        sizes
            .iter()
            .enumerate()
            .map(|(seq, &size)| LogRecord {
                position: (seq as u64).into(),
                partition_key: None,
                data: vec![b'x'; size],
                content_type: "application/json".to_owned(),
                arrival_time: 0,
            })
            .collect()
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn a_commit_is_split_into_calls_of_at_most_batch_size_records() {
        assert_eq!(call_ranges(&records(&[1; 10]), 4, 1 << 20), [0..4, 4..8, 8..10]);
        assert_eq!(call_ranges(&records(&[1; 3]), 512, 1 << 20), vec![0..3]);
        assert_eq!(call_ranges(&records(&[]), 4, 1 << 20), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn a_call_ends_before_its_bytes_exceed_the_limit_and_a_large_record_goes_alone() {
        assert_eq!(call_ranges(&records(&[40, 40, 40, 40]), 100, 100), [0..2, 2..4]);
        assert_eq!(call_ranges(&records(&[10, 500, 10]), 100, 100), [0..1, 1..2, 2..3]);
    }
}
