use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Config, Event};

/// A raw record as it arrived, before parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    /// The payload exactly as received.
    pub data: Vec<u8>,
    /// The producer's partition key, if it gave one.
    pub key: Option<String>,
    /// The content type it was sent with, e.g. `application/json` or `text/csv`.
    pub content_type: String,
    /// When the host received it, microseconds since the Unix epoch.
    pub arrival_time: i64,
}

impl RawRecord {
    /// A record of `content_type` holding `data`, with no key, arrived at time 0.
    pub fn new(content_type: &str, data: impl Into<Vec<u8>>) -> Self {
        Self { data: data.into(), key: None, content_type: content_type.to_owned(), arrival_time: 0 }
    }

    /// The payload as UTF-8 text.
    ///
    /// # Errors
    /// A message saying where the payload stops being UTF-8.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.data)
            .map_err(|e| format!("record is not UTF-8 text: invalid byte at offset {}", e.valid_up_to()))
    }
}

/// A tumbling event-time window, `[start, end)`, in microseconds since the Unix epoch,
/// and one group (window and key) whose aggregate the host asks to finish, its state
/// being the JSON the plugin's `accumulate` returned (see [`Aggregator`]).
pub use weir_events::{FinishedGroup, Window};

/// A parser plugin: turns raw records into events.
pub trait Parser: Sized + 'static {
    /// Builds the plugin from its configuration when an instance starts.
    ///
    /// # Errors
    /// A message for the operator; the plugin is then not started.
    fn configure(config: &Config) -> Result<Self, String>;

    /// Parses one record, appending the events it holds (zero or more) to `out`.
    ///
    /// # Errors
    /// Why the record cannot be parsed; it is dead-lettered with that message, any events
    /// already appended to `out` are discarded, and the batch goes on.
    fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String>;
}

/// An enricher or filter plugin: each event becomes at most one event.
pub trait Enricher: Sized + 'static {
    /// See [`Parser::configure`].
    ///
    /// # Errors
    /// A message for the operator; the plugin is then not started.
    fn configure(config: &Config) -> Result<Self, String>;

    /// Transforms one event; `Ok(None)` drops it.
    ///
    /// # Errors
    /// Why the event cannot be enriched; it is dead-lettered with that message and the
    /// batch goes on.
    fn enrich(&mut self, event: Event) -> Result<Option<Event>, String>;
}

/// An aggregator plugin: folds the events of each group (window and key) into a state the
/// host keeps, merges partial states, and turns a finished state into events.
///
/// The state crosses the boundary as JSON (`serde_json`), so checkpoints can be read by
/// a person. It must serialize as JSON: maps need string keys.
pub trait Aggregator: Sized + 'static {
    /// The aggregate of one group; `Default` is the state of an empty group.
    type State: Serialize + DeserializeOwned + Default;

    /// See [`Parser::configure`].
    ///
    /// # Errors
    /// A message for the operator; the plugin is then not started.
    fn configure(config: &Config) -> Result<Self, String>;

    /// Folds one event into `state`.
    ///
    /// # Errors
    /// Why the event cannot be counted; it is dead-lettered with that message. Check the
    /// event before changing `state`: the state is kept as it is when this returns.
    fn accumulate(&mut self, state: &mut Self::State, event: &Event) -> Result<(), String>;

    /// Adds `other` into `into`. Merging two partial states must give the same state as
    /// accumulating both groups' events into one.
    fn merge(&mut self, into: &mut Self::State, other: Self::State);

    /// The events that report a finished group.
    fn finish(&mut self, state: Self::State, window: Window, key: &str) -> Vec<Event>;
}
