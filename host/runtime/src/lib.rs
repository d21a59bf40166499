//! weir's sandboxed plugin runtime.
//!
//! One [`Runtime`] owns the wasmtime `Engine` (component model, async, pooling allocator
//! with copy-on-write memory, epoch interruption driven by a ticker thread) and the
//! on-disk cache of compiled code. [`Runtime::load`] checks a component against the
//! `weir:plugin@0.3.0` contract and returns a [`Plugin`] whose calls
//! ([`Plugin::parse`], [`Plugin::enrich`], the aggregator calls) are each bounded by the
//! plugin's [`Limits`]. A trap or an exceeded limit discards that instance, never the
//! host, and comes back as a [`CallError`] naming the plugin, its version, the limit or
//! trap and the batch; per-record errors reported by the plugin stay in the
//! [`BatchOutput`].
//!
//! This crate knows nothing of AWS, HTTP or Arrow: the harness and the host both use it.

pub mod aggregation;
mod batch;
mod bindings;
mod cache;
mod capabilities;
mod error;
mod inspect;
pub mod isolate;
mod limits;
mod plugin;
mod plugin_id;
mod runtime;

pub use batch::{
    AccumulateOutput, BatchOutput, FinishedGroup, MAX_ERROR_MESSAGE_BYTES, RawRecord, RecordError, Window,
};
pub use capabilities::{
    LOOKUP_TIMEOUT, LogLevel, LookupFuture, MAX_COUNTER_NAME_BYTES, MAX_COUNTERS, PluginLog, REFUSED_COUNTER,
    ReferenceData, StaticReferenceData, TracingLog,
};
pub use error::{CallError, CallErrorKind, LimitKind, LoadError};
pub use inspect::{PluginInfo, SUPPORTED_WIT_VERSION, World, supports_wit_version};
pub use limits::{Limits, default_instances};
pub use plugin::{CallStats, Plugin, PluginId, PluginOptions};
pub use runtime::{Runtime, RuntimeConfig};
pub use weir_events::{Columns, Event, RawRecordRef, Value};
