use std::path::PathBuf;

use crate::BatchRange;

/// Why a [`EmbeddedLog`](crate::EmbeddedLog) operation failed. Each message names the log file and
/// the stream, shard or consumer concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The file or its directory could not be created or opened (another process holding the
    /// file, no permission, not a log file...).
    #[error("cannot open the stream log at {}: {source}", path.display())]
    Open {
        /// The log file.
        path: PathBuf,
        /// What the file system or the storage engine said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The configuration cannot be used.
    #[error("invalid stream log configuration for {}: {reason}", path.display())]
    InvalidConfig {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was created with another shard count; resharding is not supported.
    #[error(
        "the stream log at {} has {stored} shards per stream but the configuration asks for {configured}; resharding an existing log is not supported: configure {stored} shards again, or start a new log file",
        path.display()
    )]
    ShardCountMismatch {
        /// The log file.
        path: PathBuf,
        /// The shard count the file was created with.
        stored: u32,
        /// The shard count asked for.
        configured: u32,
    },
    /// The file was written by an incompatible version of weir.
    #[error(
        "the stream log at {} has format version {found}; this build of weir reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The log file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },
    /// The storage engine failed (I/O error, full disk, corrupt file).
    #[error("stream log {}: {operation} on stream `{stream}`{} failed: {source}", path.display(), shard_suffix(*.shard))]
    Storage {
        /// The log file.
        path: PathBuf,
        /// What was being done: `append`, `read`, `commit_batch`...
        operation: &'static str,
        /// The stream concerned (`*` for an operation on all of them).
        stream: String,
        /// The shard concerned, if one.
        shard: Option<u32>,
        /// What the storage engine said.
        #[source]
        source: Box<redb::Error>,
    },
    /// A stored value could not be decoded.
    #[error("stream log {}: the stored {what} of stream `{stream}`{} is corrupt: {detail}", path.display(), shard_suffix(*.shard))]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// What was being decoded: `record 12`, `checkpoint of consumer "archive"`...
        what: String,
        /// The stream concerned.
        stream: String,
        /// The shard concerned, if one.
        shard: Option<u32>,
        /// What is wrong with it.
        detail: String,
    },
    /// The shard number is not below the stream's shard count.
    #[error("stream `{stream}` has shards 0..{shards}; there is no shard {shard}")]
    NoSuchShard {
        /// The stream.
        stream: String,
        /// The shard asked for.
        shard: u32,
        /// The number of shards per stream.
        shards: u32,
    },
    /// A shard id this log does not have (the embedded log's shards are `0`, `1`, …).
    #[error("stream `{stream}` has no shard {shard:?}; the log lists its shards")]
    UnknownShard {
        /// The stream.
        stream: String,
        /// The shard id asked for.
        shard: String,
    },
    /// A position this log cannot have given (from another log, or out of its range).
    #[error("stream `{stream}` shard {shard}: {position:?} is not a position of this log: {reason}")]
    ForeignPosition {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// The position given.
        position: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A blocking log operation did not complete: its thread panicked, or the runtime is
    /// shutting down.
    #[error("the stream log's {operation} did not complete: {reason}")]
    Interrupted {
        /// What was being done.
        operation: &'static str,
        /// What happened to it.
        reason: String,
    },
    /// A stream or consumer name is empty.
    #[error("the {kind} name is empty; give every {kind} a name")]
    EmptyName {
        /// `stream` or `consumer`.
        kind: &'static str,
    },
    /// [`EmbeddedLog::begin_batch`](crate::EmbeddedLog::begin_batch) or
    /// [`EmbeddedLog::commit_batch`](crate::EmbeddedLog::commit_batch) was called with a range that
    /// does not fit the consumer's checkpoint or the shard.
    #[error(
        "consumer `{consumer}` on stream `{stream}` shard {shard}: batch {}..={} refused: {reason}",
        range.first, range.last
    )]
    InvalidBatch {
        /// The consumer.
        consumer: String,
        /// The stream.
        stream: String,
        /// The shard.
        shard: u32,
        /// The range given.
        range: BatchRange,
        /// Why it does not fit.
        reason: String,
    },
    /// A commit range refused by a log whose shards and positions are text (Kinesis):
    /// as [`LogError::InvalidBatch`].
    #[error("consumer `{consumer}` on stream `{stream}` shard {shard}: commit {range} refused: {reason}")]
    InvalidCommit {
        /// The consumer.
        consumer: String,
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// The range given, `first..=last`.
        range: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A remote service behind the log (Kinesis, DynamoDB) failed a call, after the
    /// retries its client makes.
    #[error("{service} {operation} for stream `{stream}` failed: {reason}")]
    Service {
        /// `Kinesis`, `DynamoDB`.
        service: &'static str,
        /// The call: `PutRecords`, `GetRecords`, `UpdateItem`…
        operation: &'static str,
        /// The stream concerned.
        stream: String,
        /// What the service or the connection said.
        reason: String,
    },
}

fn shard_suffix(shard: Option<u32>) -> String {
    shard.map(|shard| format!(" shard {shard}")).unwrap_or_default()
}
