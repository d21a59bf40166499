//! weir's serving store: the newest value per key, for lookups with fast response times.
//!
//! - [`ServingStore`]: an embedded key-value store (one [redb](https://docs.rs/redb)
//!   file) holding, per table and key, the newest document written for it, with a
//!   bounded in-memory cache (entries and time to live) in front of reads.
//! - [`ServingSink`]: the sink that upserts a stream's events or aggregates into one
//!   table, keyed by a field of the event or by its key.
//!
//! # The newest value wins
//!
//! Each stored document carries the version of the event that wrote it: its event time,
//! then its log sequence number. An upsert replaces the stored document only when its
//! version is not older (`(time, seq) >=` the stored one), so
//! - an out-of-order older event never overwrites a newer one;
//! - a replay of the same records after a crash (at-least-once delivery) writes the same
//!   documents again: a no-op, never a regression.
//!
//! Sequence numbers are per shard; two events for one key with the same event time from
//! two shards are ordered by their sequence numbers, which is deterministic but
//! arbitrary. Partition by the serving key to keep one key's events on one shard.
//!
//! # The cache
//!
//! Reads go through a cache of at most [`CacheSettings::max_entries`] entries (absent keys
//! included, so a storm of lookups for a missing key stays off the disk) that expire
//! [`CacheSettings::ttl`] after they were loaded. Writes of this process replace a cached
//! answer for their key after they commit and leave uncached keys uncached (whose reads go
//! to the store), so a reader in this process sees a write as soon as it is acknowledged;
//! a read from the store that raced a write does not cache its answer
//! ([`DocumentCache::insert_read`]), so it cannot serve the older value afterwards.

mod sink;
mod store;

pub use sink::{ServingDocuments, ServingSink};
pub use store::{
    CacheSettings, DocumentCache, Lookup, ServingError, ServingStore, StoredDocument, Upsert, UpsertOutcome, written_by,
};
