//! The stream log as producers and consumers see it, whatever implements it: the
//! embedded [`EmbeddedLog`](crate::EmbeddedLog) on one machine, Kinesis in production.
//!
//! - [`LogProducer`]: append records durably.
//! - [`LogReader`]: a stream's shards and how they change, a shard's records from a
//!   position, a wake-up on append, and lag.
//! - [`CheckpointStore`]: a consumer's place per shard and the commit it is working on.
//! - [`StreamLog`]: all three, which is what a pipeline holds.
//!
//! Positions and shard ids are opaque ([`Position`], [`ShardId`]): consumers compare and
//! store them, and ask for what comes after one; they never add to them. The behaviour
//! every implementation must have is written once, as the suite in
//! [`conformance`](crate::conformance).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use crate::{LogError, NewRecord, Position, ShardId, ShardInfo};

/// A boxed future, so that the traits can be used as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where [`LogProducer::append`] put one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlace {
    /// The shard the record landed on.
    pub shard: ShardId,
    /// Its position in that shard.
    pub position: Position,
}

/// A record read back by [`LogReader::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its position in the shard read.
    pub position: Position,
    /// As appended.
    pub partition_key: Option<String>,
    /// As appended.
    pub data: Vec<u8>,
    /// As appended.
    pub content_type: String,
    /// When the log accepted it, microseconds since the Unix epoch.
    pub arrival_time: i64,
}

/// Where [`LogReader::read`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest record the shard still holds.
    Oldest,
    /// The record at this position, or the first after it if retention removed it.
    At(Position),
    /// The first record after this position.
    After(Position),
}

impl ReadFrom {
    /// After `committed`, or from the oldest record when nothing was committed yet.
    pub fn after(committed: Option<&Position>) -> Self {
        committed.map_or(Self::Oldest, |position| Self::After(position.clone()))
    }
}

/// How much one [`LogReader::read`] returns at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Records, at most; a read with 0 returns none.
    pub records: usize,
    /// Payload bytes, at most — except that the first record is always returned, however
    /// large, so that a consumer never stalls on a big record.
    pub bytes: usize,
}

/// What [`LogReader::read`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardRead {
    /// The records, in the shard's order. An implementation may return fewer than the
    /// limits allow, even none while more records exist (Kinesis does): read again after
    /// the last one.
    pub records: Vec<LogRecord>,
    /// The shard has ended and these are its last records: after them there is nothing
    /// more to read, and its children may be read once this consumer committed them.
    pub end_of_shard: bool,
    /// The log knows more records are waiting after these: the read stopped at one of
    /// its limits, or Kinesis answered that the reader is behind the shard's tip. A stage
    /// does not wait out its `commit_interval` for more when they are already there.
    pub more_waiting: bool,
}

/// An inclusive range of positions of one shard, `first..=last`, processed and committed
/// as one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRange {
    /// The first record's position.
    pub first: Position,
    /// The last record's position (included).
    pub last: Position,
}

impl fmt::Display for CommitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}

/// A consumer's place in one shard, read by [`CheckpointStore::checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardCheckpoint {
    /// The last position committed: every record up to it went through the consumer and
    /// was acknowledged by its sinks. `None` before the first commit.
    pub committed: Option<Position>,
    /// The commit begun with [`CheckpointStore::begin_commit`] and not finished. After a
    /// crash the consumer must process exactly this range again first.
    pub pending: Option<CommitRange>,
    /// The consumer's opaque state as of `committed` (aggregator states…), stored by the
    /// last [`CheckpointStore::finish_commit`]. Empty before the first one.
    pub state: Vec<u8>,
}

/// Appends records to a stream.
pub trait LogProducer: Send + Sync + fmt::Debug {
    /// Appends `records` to `stream` and returns, per record in the order given, where it
    /// landed. Records with the same partition key land on the same shard, in the order
    /// appended. When this returns `Ok` every record is durable; when it returns an error,
    /// none is (the embedded log) or the caller must treat the whole request as failed and
    /// may retry it (duplicates are then possible, as with Kinesis).
    fn append<'a>(
        &'a self,
        stream: &'a str,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<Vec<RecordPlace>, LogError>>;
}

/// Reads a stream's shards.
pub trait LogReader: Send + Sync + fmt::Debug {
    /// The shards of `stream`: the open ones and the ended ones that still hold records,
    /// each with its parents. Read them in the order [`readable_shards`](crate::readable_shards)
    /// allows.
    fn shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, LogError>>;

    /// Records of `shard` from `from` on, within `limits`, in order.
    fn read<'a>(
        &'a self,
        stream: &'a str,
        shard: &'a ShardId,
        from: ReadFrom,
        limits: ReadLimits,
    ) -> BoxFuture<'a, Result<ShardRead, LogError>>;

    /// How many records of `shard` come after `committed` (all of them for `None`), when
    /// the log can tell; `None` when it cannot.
    fn lag<'a>(
        &'a self,
        stream: &'a str,
        shard: &'a ShardId,
        committed: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Option<u64>, LogError>>;

    /// A receiver that changes when records are appended to `stream` through this
    /// process, so a consumer can wait instead of polling. A wake-up signal only: a log
    /// written by other processes (Kinesis) may never signal, and consumers poll anyway.
    fn subscribe(&self, stream: &str) -> watch::Receiver<u64>;

    /// The shard leases of a log several hosts consume together (Kinesis), or `None` when
    /// one process reads every shard (the embedded log).
    fn leases(&self) -> Option<&dyn ShardLeases> {
        None
    }
}

/// What [`ShardLeases::balance`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRound {
    /// The shards this host holds a lease on after the round, among those asked about:
    /// only these may be consumed, and a checkpoint of any other is refused.
    pub held: Vec<ShardId>,
    /// The shards, among those asked about, whose consumer (on any host) read them to the
    /// end and committed them: their children may be read.
    pub ended: Vec<ShardId>,
}

/// Leases on shards, so that the hosts consuming a stream share its shards and never
/// consume one twice, as the Kinesis Client Library does: one lease per (consumer,
/// stream, shard) with an owner, renewed by a heartbeat; a lease not renewed within the
/// lease time expires and is taken over; checkpoints are fenced by the lease, so a host
/// that lost one can no longer checkpoint that shard.
pub trait ShardLeases: Send + Sync + fmt::Debug {
    /// One balancing round of this host for `consumer` on `stream`, among `shards`:
    /// renews the leases it holds, then takes at most one more — an expired or unowned
    /// one, else one from the host holding the most — while it holds fewer than its fair
    /// share (the shards not ended divided among the hosts holding live leases).
    fn balance<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<LeaseRound, LogError>>;

    /// Records that this host's consumer read `shard` to its end and committed it (its
    /// children may start, on any host), and gives the lease up.
    fn shard_ended<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), LogError>>;

    /// Gives the lease on `shard` up (at shutdown), so another host takes it at once
    /// instead of after the lease time.
    fn release<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), LogError>>;
}

/// Keeps each consumer's checkpoint per (stream, shard).
///
/// A consumer records the range it is about to process with [`begin_commit`](Self::begin_commit)
/// before it sends anything to its sinks, and [`finish_commit`](Self::finish_commit) once
/// they all acknowledged. After a crash `begin_commit` hands the pending range back, the
/// consumer processes exactly that range again, and sinks that derive their keys from it
/// overwrite instead of duplicating.
pub trait CheckpointStore: Send + Sync + fmt::Debug {
    /// `consumer`'s checkpoint in (stream, shard), or `None` if it never began a commit
    /// there.
    fn checkpoint<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<Option<ShardCheckpoint>, LogError>>;

    /// Records durably that `consumer` is about to process `range`, and returns it; if a
    /// commit is already pending, records nothing and returns that one instead.
    ///
    /// # Errors
    /// A range that ends before it starts, starts at or before the committed position, or
    /// ends after the shard's last record.
    fn begin_commit<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
        range: CommitRange,
    ) -> BoxFuture<'a, Result<CommitRange, LogError>>;

    /// Completes the pending `range` in one durable step: the committed position becomes
    /// `range.last`, `state` is stored, nothing is pending any more.
    ///
    /// # Errors
    /// `range` is not the pending commit.
    fn finish_commit<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
        range: CommitRange,
        state: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), LogError>>;

    /// How many records of `stream`, all shards together, `consumer` has not committed
    /// yet, when the log can tell (ingest answers 503 beyond a limit); `None` when it
    /// cannot.
    fn backlog<'a>(&'a self, consumer: &'a str, stream: &'a str) -> BoxFuture<'a, Result<Option<u64>, LogError>>;
}

/// A whole stream log: what a pipeline holds.
pub trait StreamLog: LogProducer + LogReader + CheckpointStore {}

impl<T: LogProducer + LogReader + CheckpointStore> StreamLog for T {}
