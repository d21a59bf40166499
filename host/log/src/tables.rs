//! The redb tables of a log file, and the errors met while using them.

use redb::TableDefinition;

use crate::LogError;

/// `(stream, shard, first_seq)` → a segment: the records `first_seq..first_seq + count` of
/// the shard, as one group commit appended them ([`crate::segment`]).
pub(crate) const SEGMENTS: TableDefinition<(&str, u32, u64), &[u8]> = TableDefinition::new("segments");

/// Log format 1's table, `(stream, shard, seq)` → one encoded record ([`crate::record`]);
/// only read, once, to move a format-1 file's records into segments ([`crate::migrate`]).
pub(crate) const RECORDS_V1: TableDefinition<(&str, u32, u64), &[u8]> = TableDefinition::new("records");

/// `(stream, shard)` → `(next_seq, stored_bytes)`: the next sequence number to assign (never
/// lowered, so sequence numbers are not reused after retention) and the bytes of the records
/// still stored.
pub(crate) const SHARDS: TableDefinition<(&str, u32), (u64, u64)> = TableDefinition::new("shards");

/// `(consumer, stream, shard)` → an encoded position ([`crate::checkpoint`]).
pub(crate) const CHECKPOINTS: TableDefinition<(&str, &str, u32), &[u8]> = TableDefinition::new("checkpoints");

/// `(consumer, stream, shard)` → the consumer's opaque state, as given to `commit_batch`.
pub(crate) const STATES: TableDefinition<(&str, &str, u32), &[u8]> = TableDefinition::new("consumer_states");

/// Settings fixed when the file is created: [`FORMAT_VERSION_KEY`], [`SHARDS_KEY`]; and
/// [`MOVING_FORMAT_1_KEY`] while a format-1 file is being moved.
pub(crate) const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("settings");

/// The layout of the tables above: 2 since segments (2026-12-04). A format-1 file is
/// migrated when opened; a file with another version is refused.
pub(crate) const FORMAT_VERSION: u64 = 2;
pub(crate) const FORMAT_VERSION_BEFORE_SEGMENTS: u64 = 1;
pub(crate) const FORMAT_VERSION_KEY: &str = "format_version";
pub(crate) const SHARDS_KEY: &str = "shards_per_stream";
/// Set while a format-1 file is being moved into segments ([`crate::migrate`]); the file
/// already says format 2 then, so that an older weir refuses it.
pub(crate) const MOVING_FORMAT_1_KEY: &str = "moving_format_1";

/// An error inside an operation, before it is given its context (path, operation, stream).
#[derive(Debug)]
pub(crate) enum Failure {
    Storage(redb::Error),
    Log(LogError),
}

impl From<LogError> for Failure {
    fn from(error: LogError) -> Self {
        Self::Log(error)
    }
}

macro_rules! storage_failures {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(error: $error) -> Self {
                Self::Storage(error.into())
            }
        }
    )*};
}

storage_failures!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);
