//! weir's event model, shared by the host and the guest SDKs.
//!
//! - [`Value`] and [`Event`]: the typed, owned per-event view plugin authors work with.
//! - [`Columns`]: the flattened batch encoding that crosses the Wasm boundary
//!   (`weir:plugin/types.event-batch`), with [`ColumnsBuilder`] to write it and
//!   [`Columns::decode`] / [`Columns::validate`] to read and check it.
//! - [`RawBatch`]: the raw records of a `parse` call as they cross the boundary
//!   (`weir:plugin/types.raw-batch`), written with [`RawBatchBuilder`].
//! - [`json`]: the NDJSON form of events used by the harness and the docs.
//! - [`time`]: RFC 3339 timestamps to and from microseconds since the Unix epoch.

mod columns;
mod event;
pub mod json;
mod raw_batch;
pub mod time;
mod window;

pub use columns::{
    BatchError, Columns, ColumnsBuilder, EventDecoder, MAX_EVENT_TIME, MAX_FIELD_NAME_BYTES, MAX_JSON_DEPTH,
    MIN_EVENT_TIME, pack_i64, pack_u32, unpack_i64, unpack_u32,
};
pub use event::{Event, Name, Value, ValueKind};
pub use raw_batch::{RawBatch, RawBatchBuilder, RawBatchError, RawRecordRef};
pub use window::{FinishedGroup, Window};
