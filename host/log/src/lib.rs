//! weir's embedded durable stream log: the stand-in for Kinesis when weir runs on one machine.
//!
//! A [`StreamLog`] is one file (a [redb](https://docs.rs/redb) database) holding named
//! streams. Each stream is split into [`LogConfig::shards_per_stream`] shards; each shard is an
//! append-only sequence of records numbered from 0. Consumers keep a [`Checkpoint`] per
//! shard.
//!
//! - **Durability.** [`StreamLog::append`] writes all its records in one transaction
//!   committed with an fsync: an append that returned `Ok` survives `kill -9` and a power
//!   cut; one that failed appended nothing. Checkpoint updates are durable the same way.
//!   Concurrent appends share fsyncs (group commit): those that arrive while a transaction
//!   is being written go together into the next one.
//! - **Sequence numbers** are per (stream, shard), start at 0, increase by one per record and
//!   are never reused, even after retention removed the records ([`StreamLog::next_seq`]).
//! - **Shards.** A record's shard is FNV-1a 64 of its partition key modulo the shard count, or
//!   of its data when it has no key, so a replayed request lands where it landed before
//!   ([`shard_for`]). The hash is written out in this crate and pinned by tests: it never
//!   changes. The shard count is fixed when the file is created.
//! - **Checkpoints.** A consumer records the batch it is about to process with
//!   [`StreamLog::begin_batch`] before sending it to its sinks, and
//!   [`StreamLog::commit_batch`] once they all acknowledged, which moves the checkpoint past
//!   it and stores the consumer's state (aggregator states...) in the same transaction.
//!   After a crash, `begin_batch` hands back the pending range, and the consumer processes
//!   exactly that range again: sinks derive their object keys from it, so the replay
//!   overwrites rather than duplicates.
//! - **Retention.** [`StreamLog::apply_retention`] removes records older than
//!   [`LogConfig::retention_age`] and, beyond [`LogConfig::retention_bytes`] per stream, the
//!   oldest ones. Like Kinesis, it does not wait for consumers: records a consumer had not
//!   committed are lost to it, counted in the [`RetentionReport`] and logged as a warning.
//!
//! Every method blocks on disk I/O; async callers use `spawn_blocking`.
//! [`StreamLog::subscribe`] lets consumers wait for appends instead of polling.

mod checkpoint;
mod config;
mod error;
mod log;
mod record;
mod retention;
mod shard;
mod tables;

pub use checkpoint::{BatchRange, Checkpoint};
pub use config::LogConfig;
pub use error::LogError;
pub use log::StreamLog;
pub use record::{Appended, NewRecord, StoredRecord};
pub use retention::RetentionReport;
pub use shard::{fnv1a_64, shard_for};
