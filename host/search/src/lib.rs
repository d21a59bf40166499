//! weir's search index: free-text queries over a stream's events or aggregates.
//!
//! - [`SearchIndex`]: a [tantivy](https://docs.rs/tantivy) index in a local directory,
//!   one per configured search sink, with a fixed schema (below) and a query-string API.
//! - [`SearchSink`]: the sink that writes a batch's events (or aggregates) into an index
//!   and commits once per batch.
//!
//! # Documents
//!
//! One document per event, with
//! - `id`: the record's deterministic id ([`weir_sinks::SinkRecord::id`]). A write first
//!   deletes the documents with the same id, so a replay after a crash replaces instead of
//!   duplicating;
//! - `key` (exact), `kind` (`event` or `aggregate`, exact), `time` (the event time, a date
//!   filtered by range: `time:[2026-11-26T10:00:00Z TO 2026-11-26T11:00:00Z]`; a fast
//!   field only, not in the inverted index, so an exact `time:"…"` is answered as the
//!   range of that instant; indexes created before 2026-12-05 have it indexed too and
//!   keep opening as they are);
//! - one analysed field per configured text field (`restaurant_name:müller`);
//! - `text`: every other text value of the event, analysed. Queries search `text` and
//!   the configured text fields by default, so an unqualified term finds any text value,
//!   each indexed once;
//! - one numeric (f64) field per configured numeric field (`total:>=20`,
//!   `delivery_minutes:[10 TO 30]`);
//! - the event itself (stored, returned with each hit).
//!
//! Text is split on anything not alphanumeric (Unicode-aware), lowercased and folded to
//! ASCII where a folding exists, so `Muller`, `müller` and `MÜLLER` all find `Müller`.

mod index;
mod query_bounds;
mod sink;

pub use index::{Hit, IndexSettings, MAX_LIMIT, RESERVED_FIELDS, SearchError, SearchIndex, SearchResults};
pub use query_bounds::{MAX_QUERY_BYTES, MAX_QUERY_CLAUSES, MAX_QUERY_DEPTH, check as check_query};
pub use sink::SearchSink;
