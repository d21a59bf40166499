//! weir's sinks: where the stages write.
//!
//! - [`Sink`]: the trait every destination implements. A stage hands it a [`SinkCommit`]
//!   (everything produced from one shard's log records, named by a [`CommitId`]) and gets
//!   back a [`WriteReport`] naming the records that failed, or a [`SinkError`] when the
//!   whole call failed.
//! - [`deliver`]: writes a commit, then retries only the failed records with exponential
//!   backoff ([`RetryPolicy`]) until all are acknowledged, attempts run out or shutdown
//!   fires. The stage checkpoints a commit only after `deliver` returned `Ok` for every
//!   sink: delivery is **at-least-once**, and sinks make the repeats harmless with
//!   idempotent writes (deterministic object keys, record ids).
//! - [`LakeSink`]: the data lake in an [`object_store::ObjectStore`] (the local
//!   filesystem by default, S3 through the same code later): the raw archive as NDJSON,
//!   events and aggregates as Parquet, one object per kind per commit, keyed by
//!   [`LakeObject::key`] so a replay overwrites.
//! - [`Warehouse`]: events and aggregates as Hive-partitioned Parquet tables (by event
//!   date) with a commit marker per commit, for DuckDB and the aggregates API.
//! - [`DeadLetterSink`]: records the plugins refused, with the plugin, the reason and
//!   the original bytes, as NDJSON next to the lake.
//!
//! # Parquet columns
//!
//! `_id` (utf8, the record id), `_key` (utf8, nullable), `_time` (timestamp µs UTC, the
//! event time), `_seq` (uint64, the log sequence number), `_lineage` (utf8, the plugin
//! chain), then one nullable column per event field in first-seen order, typed by the
//! kinds of value the field holds across the batch (nulls aside): bool → Boolean,
//! int → Int64, float (or int and float) → Float64, text → Utf8, bytes → Binary,
//! timestamp → Timestamp(µs, UTC), json → Utf8 (the JSON text), only nulls → Utf8; any
//! other mix → Utf8 holding each value's JSON form
//! ([`weir_events::json::value_to_json`]). A field named like a metadata column gets
//! one more leading `_` per clash (`_id` → `__id`).
//!
//! The layout, the NDJSON lines and the delivery semantics are described in
//! `host/sinks/README.md`.

mod commit_id;
mod dead_letter;
mod delivery;
mod error;
mod from_arrow;
mod health;
mod job_run;
mod lake;
mod lake_pages;
mod layout;
mod ndjson;
mod objects;
mod read_back;
pub mod rolling;
mod sink;
mod synced_store;
mod table;
mod warehouse;

pub use commit_id::{CommitId, JobPartition, LogRange, compare_positions};
pub use dead_letter::DeadLetterSink;
pub use delivery::{DeliveryStats, RetryPolicy, deliver, deliver_watched, remove_kept};
pub use error::{BoxError, DeliveryError, SinkError};
pub use from_arrow::{ArrowDecodeError, plugin_batch_from_arrow};
pub use health::{Outage, Outages};
pub use job_run::{KeptLedger, LevelManifest, RunFailure, RunManifest};
pub use lake::{LakeSink, local_store, push_raw_line};
pub use lake_pages::{
    MAX_CURSOR_BYTES, MAX_DEAD_LETTER_IDS, MAX_PAGE_BYTES, MAX_PAGE_ROWS, MAX_SCANNED_BYTES, Page, PageError,
    PageQuery, RowFilter, find_dead_letters, read_page,
};
pub use layout::{
    LakeObject, MULTIPART_PART_SIZE, MULTIPART_THRESHOLD, date_of, is_interrupted_write, remove_interrupted_writes,
};
pub use read_back::{AggregateRow, LakeContents, read_lake};
pub use rolling::RollPolicy;
pub use sink::{
    DeadLetter, EventItem, KeptRecord, PrepareFuture, RawItem, Sink, SinkCommit, SinkFuture, SinkItem, SinkRecord,
    WriteReport,
};
pub use table::event_record_batch;
pub use warehouse::{Commit, CommittedFile, Warehouse, WarehouseTable};
pub use weir_events::{Event, Value};
