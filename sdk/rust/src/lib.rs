//! Write weir plugins in Rust.
//!
//! A plugin is a type implementing one of [`Parser`], [`Enricher`] or [`Aggregator`],
//! written one event at a time, plus one `export_*!` line. The SDK handles the rest of
//! the `weir:plugin` contract: it decodes the columnar batches the host sends, calls the
//! plugin per record, turns each `Err` into a dead-lettered record error while the rest
//! of the batch proceeds, and encodes the events produced.
//!
//! Build the crate (`crate-type = ["cdylib", "rlib"]`) with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` is the component. The
//! same code builds natively, where the export macros expand to nothing and [`host`]
//! calls go to an in-process [`host::NativeHost`], so plugin logic is unit-tested and
//! benchmarked with plain `cargo test`.
//!
//! # A parser
//!
//! ```
//! use weir_sdk::{Config, Event, Parser, RawRecord};
//!
//! /// `name=value` lines, one event each, at their arrival time.
//! pub struct Assignments;
//!
//! impl Parser for Assignments {
//!     fn configure(config: &Config) -> Result<Self, String> {
//!         config.reject_unknown(&[])?;
//!         Ok(Self)
//!     }
//!
//!     fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String> {
//!         let (name, value) = record.text()?.split_once('=').ok_or("expected name=value")?;
//!         out.push(Event::new(record.arrival_time).with_key(name).with("value", value));
//!         Ok(())
//!     }
//! }
//!
//! weir_sdk::export_parser!(Assignments);
//! ```
//!
//! # An enricher
//!
//! ```
//! use weir_sdk::{Config, Enricher, Event, host};
//!
//! /// Adds each user's country from the `users` reference table; drops anonymous events.
//! pub struct UserCountry;
//!
//! impl Enricher for UserCountry {
//!     fn configure(_config: &Config) -> Result<Self, String> {
//!         Ok(Self)
//!     }
//!
//!     fn enrich(&mut self, mut event: Event) -> Result<Option<Event>, String> {
//!         let Some(user_id) = event.get_str("user_id") else { return Ok(None) };
//!         let user = host::lookup_json("users", user_id)?.ok_or_else(|| format!("unknown user {user_id}"))?;
//!         event.set("country", user["country"].as_str().unwrap_or("unknown"));
//!         Ok(Some(event))
//!     }
//! }
//!
//! weir_sdk::export_enricher!(UserCountry);
//! ```
//!
//! # An aggregator
//!
//! The state of a group crosses the boundary as JSON (`serde_json`), so the host's
//! checkpoints stay readable; the plugin crate needs `serde` with `derive`.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_sdk::{Aggregator, Config, Event, Window};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! pub struct Count {
//!     events: i64,
//! }
//!
//! /// How many events each key had per window.
//! pub struct Counter;
//!
//! impl Aggregator for Counter {
//!     type State = Count;
//!
//!     fn configure(_config: &Config) -> Result<Self, String> {
//!         Ok(Self)
//!     }
//!
//!     fn accumulate(&mut self, state: &mut Count, _event: &Event) -> Result<(), String> {
//!         state.events += 1;
//!         Ok(())
//!     }
//!
//!     fn merge(&mut self, into: &mut Count, other: Count) {
//!         into.events += other.events;
//!     }
//!
//!     fn finish(&mut self, state: Count, window: Window, key: &str) -> Vec<Event> {
//!         vec![Event::new(window.start).with_key(key).with("events", state.events)]
//!     }
//! }
//!
//! weir_sdk::export_aggregator!(Counter);
//! ```
//!
//! # Testing natively
//!
//! The batch drivers ([`run_parse`], [`run_enrich`], [`run_accumulate`], ...) are what the
//! component runs; call them in unit tests to see exactly what the host would get.
//! Install reference data for [`host::lookup_json`] with
//! `host::set_native_host(Box::new(host::MapHost::from_json(fixture)?))`, and compare
//! the events produced with a fixture's `expected.ndjson` using
//! [`testing::assert_events_file`] (`WEIR_BLESS=1` rewrites it).
//!
//! A panic in plugin code traps (Wasm has no unwinding): the host reports the batch with
//! the panic message and discards the instance, so the whole batch fails. Return `Err`
//! for bad input instead, which fails only that input.

#[doc(hidden)]
pub mod bindings;
mod config;
mod drivers;
mod export;
pub mod host;
mod plugin;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use config::Config;
pub use drivers::{
    AccumulateOutput, BatchOutput, RecordError, run_accumulate, run_configure, run_enrich, run_finish, run_init,
    run_merge, run_parse, run_parse_batch,
};
pub use plugin::{Aggregator, Enricher, FinishedGroup, Parser, RawRecord, Window};
pub use serde_json;
pub use weir_events::{Columns, Event, Name, RawBatch, RawBatchBuilder, Value, ValueKind, json, time};

/// What the `export_*!` macros expand to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{Slot, accumulate, enrich, finish, merge, parse};
}
