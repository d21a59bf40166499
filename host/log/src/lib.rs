//! weir's stream log: the traits every stream log implements, the suite that holds an
//! implementation to them, and the embedded durable log that stands in for Kinesis when
//! weir runs on one machine.
//!
//! ## The traits
//!
//! A pipeline holds an `Arc<dyn` [`StreamLog`]`>`: a [`LogProducer`] (ingest appends), a
//! [`LogReader`] (a stream's shards, a shard's records from a position, lag) and a
//! [`CheckpointStore`] (a consumer's committed position, pending commit and state per
//! shard). Shard ids and positions are opaque ([`ShardId`], [`Position`]: ordered,
//! comparable, shown and stored as text, never added to), so that Kinesis's 128-bit,
//! gappy sequence numbers and shards that split and merge fit the same consumer code.
//! Children of an ended shard are read once its parents are finished
//! ([`readable_shards`]). The behaviour every implementation must have is one test suite,
//! [`conformance`], which the embedded log passes.
//!
//! ## The embedded log
//!
//! An [`EmbeddedLog`] is one file (a [redb](https://docs.rs/redb) database) holding named
//! streams. Each stream is split into [`LogConfig::shards_per_stream`] shards (ids `0`,
//! `1`, …, which never end); each shard is an append-only sequence of records numbered
//! from 0 (a record's [`Position`] is its number). Consumers keep a [`Checkpoint`] per
//! shard. The records a transaction appends to one shard are stored as one or more values,
//! segments of consecutive records (format 2; a format-1 file, one value per record, is
//! converted when opened).
//!
//! - **Durability.** [`EmbeddedLog::append`] writes all its records in one transaction
//!   committed with an fsync: an append that returned `Ok` survives `kill -9` and a power
//!   cut; one that failed appended nothing. Checkpoint updates are durable the same way.
//!   Concurrent appends share fsyncs (group commit): those that arrive while a transaction
//!   is being written go together into the next one.
//! - **Sequence numbers** are per (stream, shard), start at 0, increase by one per record and
//!   are never reused, even after retention removed the records ([`EmbeddedLog::next_seq`]).
//! - **Shards.** A record's shard is FNV-1a 64 of its partition key modulo the shard count, or
//!   of its data when it has no key, so a replayed request lands where it landed before
//!   ([`shard_for`]). The hash is written out in this crate and pinned by tests: it never
//!   changes. The shard count is fixed when the file is created.
//! - **Checkpoints.** A consumer records the commit it is about to process with
//!   [`EmbeddedLog::begin_batch`] before sending it to its sinks, and
//!   [`EmbeddedLog::commit_batch`] once they all acknowledged, which moves the checkpoint past
//!   it and stores the consumer's state (aggregator states...) in the same transaction.
//!   After a crash, `begin_batch` hands back the pending range, and the consumer processes
//!   exactly that range again: sinks derive their object keys from it, so the replay
//!   overwrites rather than duplicates.
//! - **Retention.** [`EmbeddedLog::apply_retention`] removes records older than
//!   [`LogConfig::retention_age`] and, beyond [`LogConfig::retention_bytes`] per stream, the
//!   oldest ones. Like Kinesis, it does not wait for consumers: records a consumer had not
//!   committed are lost to it, counted in the [`RetentionReport`] and logged as a warning.
//!
//! The embedded log's own methods block on disk I/O; its implementation of the traits
//! runs them on tokio's blocking pool. [`EmbeddedLog::subscribe`] lets consumers wait for
//! appends instead of polling.

mod checkpoint;
mod config;
pub mod conformance;
mod embedded;
mod embedded_traits;
mod error;
mod migrate;
mod position;
mod record;
mod retention;
mod segment;
mod shard;
mod shard_set;
mod stream_log;
mod tables;

pub use checkpoint::{BatchRange, Checkpoint};
pub use config::LogConfig;
pub use embedded::EmbeddedLog;
pub use error::LogError;
pub use position::{MAX_POSITION_DIGITS, MAX_SHARD_ID_BYTES, Position, ShardId};
pub use record::{Appended, NewRecord, StoredRecord};
pub use retention::RetentionReport;
pub use shard::{canary_bucket, fnv1a_64, shard_for};
pub use shard_set::{ShardInfo, readable_shards};
pub use stream_log::{
    BoxFuture, CheckpointStore, CommitRange, LeaseRound, LogProducer, LogReader, LogRecord, ReadFrom, ReadLimits,
    RecordPlace, ShardCheckpoint, ShardLeases, ShardRead, StreamLog,
};
