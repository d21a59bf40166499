//! The commit handed to sinks and the [`Sink`] trait every destination implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use weir_events::Event;

use crate::commit_id::CommitId;
use crate::error::SinkError;

/// What a stage (or a batch job) hands to sinks in one commit: everything produced from
/// the log records of [`id`](Self::id) (or from one partition of a job run).
///
/// The id identifies the commit: a replay after a crash hands the same id again, and
/// sinks derive their object keys / document ids from it so the replay overwrites instead
/// of duplicating.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkCommit {
    /// What the records come from: a log range or a job partition.
    pub id: CommitId,
    /// Arrival time of the commit's first log record (for a job: the run's scheduled
    /// time), microseconds since the Unix epoch. The lake partitions by its date
    /// (`date=YYYY-MM-DD`): it comes from the source, so a replay lands in the same
    /// partition whatever the plugins produce.
    pub arrival_time: i64,
    /// What to write: on a retry, only the records that failed before.
    pub records: Vec<SinkRecord>,
}

impl SinkCommit {
    /// A commit with the same id and arrival time holding only the records at `indices`
    /// (in that order; indices out of range are skipped). This is what
    /// [`deliver`](crate::deliver) sends on a retry.
    pub fn subset(&self, indices: &[usize]) -> SinkCommit {
        SinkCommit {
            id: self.id.clone(),
            arrival_time: self.arrival_time,
            records: indices.iter().filter_map(|&i| self.records.get(i).cloned()).collect(),
        }
    }

    /// `orders/0003 [42..=57]`: how messages name the commit.
    pub fn describe(&self) -> String {
        self.id.to_string()
    }
}

/// One record of a [`SinkCommit`].
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// Deterministic id, the same on every replay: see [`CommitId::record_id`]. Sinks with
    /// per-item keys (DynamoDB, Elasticsearch) use it as the item / document id; the lake
    /// writes it in the `_id` column.
    pub id: String,
    /// The position of the log record this came from (decimal digits; for a job, the
    /// row in its partition). The lake writes it in the `_seq` column.
    pub position: String,
    /// What to write.
    pub item: SinkItem,
}

/// The kinds of things a stage writes. Each sink writes the kinds it handles and reports
/// the others as written.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkItem {
    /// The raw archive: the record exactly as ingested.
    Raw(RawItem),
    /// An event out of the plugin chain. Shared, not copied, between the sinks of a
    /// route: a route to four sinks used to clone every event three times (about 4 % of
    /// the demo pipeline's CPU, BENCHMARKS.md).
    Event(Arc<EventItem>),
    /// An aggregate emitted by an aggregator's `finish`; shared like an event.
    Aggregate(Arc<EventItem>),
    /// A record a plugin refused or failed on.
    DeadLetter(DeadLetter),
}

impl SinkItem {
    /// `raw`, `event`, `aggregate` or `dead-letter`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Raw(_) => "raw",
            Self::Event(_) => "event",
            Self::Aggregate(_) => "aggregate",
            Self::DeadLetter(_) => "dead-letter",
        }
    }
}

/// A log record exactly as ingested.
#[derive(Debug, Clone, PartialEq)]
pub struct RawItem {
    /// The partition key the producer gave, if any.
    pub partition_key: Option<String>,
    /// The content type the producer declared, e.g. `application/json`.
    pub content_type: String,
    /// When the log accepted the record, microseconds since the Unix epoch.
    pub arrival_time: i64,
    /// The payload.
    pub data: Vec<u8>,
}

/// An event (or aggregate) with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItem {
    /// The event.
    pub event: Event,
    /// The plugins it went through, `name@version` joined by `>`:
    /// `orders-parser@1.0.0>restaurant-enricher@2.1.0`.
    pub lineage: String,
}

/// A record a plugin refused or failed on, with the original bytes so it can be replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The plugin, `name@version`.
    pub plugin: String,
    /// `parse`, `enrich` or `aggregate`.
    pub stage: String,
    /// Why: the plugin's error or the host's (limit, trap).
    pub reason: String,
    /// The original raw bytes of the log record.
    pub original: Vec<u8>,
    /// The content type of the original record.
    pub content_type: String,
    /// When the log accepted the original record, microseconds since the Unix epoch.
    pub arrival_time: i64,
}

/// The outcome of one [`Sink::write`] call that reached the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Indices into the written commit's `records` that failed, each with why: retried.
    /// Empty: all written.
    pub failed: Vec<(usize, String)>,
    /// Indices the destination refused for good, each with why: a record over the
    /// destination's size limit, a document its mapping refuses. Not retried (it would
    /// fail again); the stage dead-letters them with the reason, naming the sink.
    pub rejected: Vec<(usize, String)>,
}

impl WriteReport {
    /// Everything was written.
    pub fn all_written() -> Self {
        Self::default()
    }

    /// Whether every record was written.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.rejected.is_empty()
    }
}

/// What [`Sink::write`] returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<WriteReport, SinkError>> + Send + 'a>>;

/// A destination.
///
/// Writes are batched and report an outcome per record: Kinesis, Firehose, DynamoDB and
/// Elasticsearch all accept a batch and fail part of it; an object store writes a batch
/// as one object, all or nothing, and reports every record of a failed object.
///
/// Delivery is at-least-once ([`deliver`](crate::deliver) retries until acknowledged,
/// and a crash replays the range from the last checkpoint), so `write` must be
/// idempotent: writing the same ids / the same commit range again must overwrite, not
/// duplicate.
pub trait Sink: Send + Sync + 'static {
    /// The name used in logs and errors, e.g. `lake`.
    fn name(&self) -> &str;

    /// Writes `commit.records` (a subset of the original commit on retries, with the same
    /// stream, shard and range).
    ///
    /// Returns `Ok` with the indices that failed when the destination answered, or `Err`
    /// when the whole call failed; [`SinkError::is_retryable`] tells whether to try again.
    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a>;

    /// Gets the destination ready before the pipeline starts (creates a table that is
    /// missing, checks the key schema of one that exists), so a destination that cannot
    /// work stops the start with its reason instead of failing every write. By default
    /// nothing to do.
    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Makes everything acknowledged so far visible to readers, at shutdown (a lake
    /// rolls the commits it staged). By default nothing to do.
    fn flush(&self) -> PrepareFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The key under which this sink keeps `record` once written, for sinks that keep
    /// records one by one under a key (a serving table's key, a document id) and so
    /// keep a record a rerun no longer writes. `None` (the default): the sink does not
    /// keep `record`, or it replaces a commit's objects whole (the lake, the warehouse),
    /// so a rerun leaves nothing of the run it replaces.
    ///
    /// A batch job records these keys per run and [removes](Self::remove) those of the
    /// run it replaces that its rerun did not write again (docs/batch.md).
    fn kept_key(&self, record: &SinkRecord) -> Option<String> {
        let _ = record;
        None
    }

    /// Removes what this sink keeps under each of `kept`'s keys **if it still holds
    /// what the record `kept[i].record` wrote there**: a newer write under the key (from
    /// a stream, another job or the rerun itself) stays. A key that holds nothing is
    /// already removed. Returns the indices into `kept` that failed, to retry (see
    /// [`remove_kept`](crate::remove_kept)); idempotent like [`write`](Self::write).
    /// By default nothing is kept, so nothing to remove.
    fn remove<'a>(&'a self, kept: &'a [KeptRecord]) -> SinkFuture<'a> {
        let _ = kept;
        Box::pin(std::future::ready(Ok(WriteReport::all_written())))
    }
}

/// A record a sink keeps under a key of its own ([`Sink::kept_key`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeptRecord {
    /// The sink's key: a serving key, a document id.
    pub key: String,
    /// The id of the record written there ([`SinkRecord::id`]).
    pub record: String,
}

/// What [`Sink::prepare`] returns.
pub type PrepareFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;
