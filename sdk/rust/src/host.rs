//! What the host offers a plugin: logging, counters and reference-data lookups.
//!
//! In a component these call the `weir:plugin/host` imports. On native targets (unit
//! tests, native benchmarks) they go to a [`NativeHost`] installed per thread with
//! [`set_native_host`]; the default one prints logs to stderr, ignores counters and knows
//! no reference data. Plugin code is therefore the same on both.
//!
//! Two things make these calls cheap inside a batch:
//! - lookups are memoized for the duration of one batch, so an enricher that looks up the
//!   same restaurant for a thousand events crosses the boundary once (and parses the JSON
//!   once with [`lookup_json`]);
//! - counter deltas are summed during a batch and sent once when the batch ends.
//!
//! The batch drivers (`run_parse`, `run_enrich`, ...) open and close that per-batch scope.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use serde_json::Value as Json;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        })
    }
}

/// Writes a line to the plugin's log. The host tags it with the plugin's name and
/// version, and drops lines beyond the plugin's log rate limit.
pub fn log(level: Level, message: &str) {
    imports::log(level, message);
}

/// Logs at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Adds `delta` to the plugin's counter `name`, exported as a metric by the host.
///
/// Deltas are summed and sent when the current batch (or `configure`) ends.
pub fn counter_add(name: &str, delta: i64) {
    BATCH.with_borrow_mut(|batch| match batch.counters.iter_mut().find(|(n, _)| n == name) {
        Some((_, sum)) => *sum += delta,
        None => batch.counters.push((name.to_owned(), delta)),
    });
}

/// The reference data stored under `key` in `table`, as JSON text, or `None` when there
/// is no such key or table. Memoized for the current batch.
pub fn lookup(table: &str, key: &str) -> Option<String> {
    with_memo_entry(table, key, |entry| entry.text.clone())
}

/// The reference data stored under `key` in `table`, parsed, or `None` when there is no
/// such key or table. Memoized for the current batch, parsed once per batch; the `Rc`
/// lets every event of the batch share the parsed document.
///
/// # Errors
/// A message naming the table and key when the stored document is not valid JSON.
pub fn lookup_json(table: &str, key: &str) -> Result<Option<Rc<Json>>, String> {
    with_memo_entry(table, key, |entry| {
        let Some(text) = &entry.text else { return Ok(None) };
        entry
            .parsed
            .get_or_insert_with(|| {
                serde_json::from_str(text)
                    .map(Rc::new)
                    .map_err(|e| format!("reference data {table}/{key} is not valid JSON: {e}"))
            })
            .clone()
            .map(Some)
    })
}

/// What one batch has gathered so far: memoized lookups and pending counter deltas.
#[derive(Default)]
struct BatchScope {
    /// Table name, then key: two levels so that a memo hit borrows the caller's `&str`s
    /// instead of allocating a tuple key.
    lookups: HashMap<String, HashMap<String, MemoEntry>>,
    counters: Vec<(String, i64)>,
}

struct MemoEntry {
    text: Option<String>,
    /// Filled by the first `lookup_json` of the batch.
    parsed: Option<Result<Rc<Json>, String>>,
}

thread_local! {
    static BATCH: RefCell<BatchScope> = RefCell::new(BatchScope::default());
}

/// Runs one batch (or `configure`) as the export glue does: starts with an empty lookup memo, so reference data
/// is never older than the batch, and sends the counter deltas gathered once it ends.
pub fn in_batch<R>(run: impl FnOnce() -> R) -> R {
    BATCH.with_borrow_mut(|batch| batch.lookups.clear());
    let result = run();
    let counters = BATCH.with_borrow_mut(|batch| std::mem::take(&mut batch.counters));
    for (name, delta) in counters {
        imports::counter_add(&name, delta);
    }
    result
}

fn with_memo_entry<R>(table: &str, key: &str, read: impl FnOnce(&mut MemoEntry) -> R) -> R {
    let memoized = BATCH.with_borrow(|batch| batch.lookups.get(table).is_some_and(|entries| entries.contains_key(key)));
    if !memoized {
        // Asked outside the borrow of `BATCH`: a native host is user code and may call
        // back into this module.
        let text = imports::lookup(table, key);
        BATCH.with_borrow_mut(|batch| {
            let entries = batch.lookups.entry(table.to_owned()).or_default();
            entries.insert(key.to_owned(), MemoEntry { text, parsed: None });
        });
    }
    BATCH.with_borrow_mut(|batch| {
        let entry = batch.lookups.get_mut(table).and_then(|entries| entries.get_mut(key));
        read(entry.expect("the lookup was memoized above"))
    })
}

#[cfg(target_arch = "wasm32")]
mod imports {
    use super::Level;
    use crate::bindings::parser::weir::plugin::host::{self as wit, LogLevel};

    pub(super) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        wit::log(level, message);
    }

    pub(super) fn counter_add(name: &str, delta: i64) {
        wit::counter_add(name, delta);
    }

    pub(super) fn lookup(table: &str, key: &str) -> Option<String> {
        wit::lookup(table, key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imports {
    use super::Level;
    use super::native::NATIVE_HOST;

    pub(super) fn log(level: Level, message: &str) {
        NATIVE_HOST.with_borrow_mut(|host| host.log(level, message));
    }

    pub(super) fn counter_add(name: &str, delta: i64) {
        NATIVE_HOST.with_borrow_mut(|host| host.counter_add(name, delta));
    }

    pub(super) fn lookup(table: &str, key: &str) -> Option<String> {
        NATIVE_HOST.with_borrow_mut(|host| host.lookup(table, key))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{MapHost, NativeHost, set_native_host};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde_json::Value as Json;

    use super::{BATCH, BatchScope, Level};

    /// What the host functions call on native targets, where there is no Wasm host.
    pub trait NativeHost {
        /// Receives a log line. By default it is printed to stderr.
        fn log(&mut self, level: Level, message: &str) {
            eprintln!("[{level}] {message}");
        }

        /// Receives a counter delta (summed per batch). Ignored by default.
        fn counter_add(&mut self, name: &str, delta: i64) {
            let _ = (name, delta);
        }

        /// Answers a lookup with the JSON text stored under `key` in `table`.
        fn lookup(&mut self, table: &str, key: &str) -> Option<String>;
    }

    thread_local! {
        pub(super) static NATIVE_HOST: RefCell<Box<dyn NativeHost>> = RefCell::new(Box::new(MapHost::default()));
    }

    /// Installs the host that this thread's host functions call, and forgets lookups
    /// memoized and counter deltas gathered from the previous one.
    pub fn set_native_host(host: Box<dyn NativeHost>) {
        NATIVE_HOST.set(host);
        BATCH.set(BatchScope::default());
    }

    /// A native host serving reference data from memory; logs go to stderr and counters
    /// are ignored. With no tables (the default) it is the host a thread starts with.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct MapHost {
        tables: HashMap<String, HashMap<String, Json>>,
    }

    impl MapHost {
        /// A host with no reference data.
        pub fn new() -> Self {
            Self::default()
        }

        /// Adds `value` under `key` in `table`, builder-style.
        pub fn with_row(mut self, table: &str, key: &str, value: Json) -> Self {
            self.tables.entry(table.to_owned()).or_default().insert(key.to_owned(), value);
            self
        }

        /// A host serving the tables of a JSON document shaped
        /// `{"table": {"key": value, ...}, ...}`, the form of a plugin's `lookup.json`
        /// fixture.
        ///
        /// # Errors
        /// A message when the text is not JSON of that shape.
        pub fn from_json(text: &str) -> Result<Self, String> {
            let doc: Json = serde_json::from_str(text).map_err(|e| format!("reference data is not valid JSON: {e}"))?;
            let Json::Object(tables) = doc else {
                return Err("reference data must be an object of tables: {\"table\": {\"key\": value}}".into());
            };
            let mut host = Self::new();
            for (table, rows) in tables {
                let Json::Object(rows) = rows else {
                    return Err(format!("reference table {table:?} must be an object of key: value"));
                };
                host.tables.insert(table, rows.into_iter().collect());
            }
            Ok(host)
        }
    }

    impl NativeHost for MapHost {
        fn lookup(&mut self, table: &str, key: &str) -> Option<String> {
            self.tables.get(table)?.get(key).map(Json::to_string)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reached the host.
    #[derive(Default)]
    struct Seen {
        lookups: u32,
        counters: Vec<(String, i64)>,
    }

    /// Records what reaches it; knows one restaurant.
    struct RecordingHost(Rc<RefCell<Seen>>);

    impl NativeHost for RecordingHost {
        fn counter_add(&mut self, name: &str, delta: i64) {
            self.0.borrow_mut().counters.push((name.to_owned(), delta));
        }

        fn lookup(&mut self, table: &str, key: &str) -> Option<String> {
            self.0.borrow_mut().lookups += 1;
            (table == "restaurants" && key == "r-1").then(|| r#"{"name":"Pho Real"}"#.to_owned())
        }
    }

    fn install_recording_host() -> Rc<RefCell<Seen>> {
        let seen = Rc::new(RefCell::new(Seen::default()));
        set_native_host(Box::new(RecordingHost(seen.clone())));
        seen
    }

    #[test]
    fn lookups_cross_to_the_host_once_per_key_per_batch() {
        let seen = install_recording_host();
        in_batch(|| {
            for _ in 0..3 {
                assert_eq!(lookup_json("restaurants", "r-1").unwrap().unwrap()["name"], "Pho Real");
                assert_eq!(lookup("restaurants", "r-2"), None);
            }
            assert_eq!(lookup("restaurants", "r-1").as_deref(), Some(r#"{"name":"Pho Real"}"#));
        });
        assert_eq!(seen.borrow().lookups, 2, "one per distinct key");
        in_batch(|| lookup("restaurants", "r-1"));
        assert_eq!(seen.borrow().lookups, 3, "the memo does not outlive its batch");
    }

    #[test]
    fn counter_deltas_are_summed_and_sent_when_the_batch_ends() {
        let seen = install_recording_host();
        in_batch(|| {
            counter_add("dropped", 1);
            counter_add("seen", 5);
            counter_add("dropped", 2);
            assert!(seen.borrow().counters.is_empty(), "nothing is sent mid-batch");
        });
        assert_eq!(seen.borrow().counters, [("dropped".to_owned(), 3), ("seen".to_owned(), 5)]);
    }

    #[test]
    fn invalid_reference_json_is_an_error_naming_table_and_key() {
        struct BrokenHost;
        impl NativeHost for BrokenHost {
            fn lookup(&mut self, _table: &str, _key: &str) -> Option<String> {
                Some("{not json".to_owned())
            }
        }
        set_native_host(Box::new(BrokenHost));
        let err = in_batch(|| lookup_json("zones", "z-1")).unwrap_err();
        assert!(err.starts_with("reference data zones/z-1 is not valid JSON"), "{err}");
    }

    #[test]
    fn map_host_serves_a_lookup_fixture() {
        let host = MapHost::from_json(r#"{"restaurants": {"r-1": {"zone": "north"}}}"#).unwrap();
        assert_eq!(host, MapHost::new().with_row("restaurants", "r-1", serde_json::json!({"zone": "north"})));
        set_native_host(Box::new(host));
        assert_eq!(in_batch(|| lookup_json("restaurants", "r-1")).unwrap().unwrap()["zone"], "north");
        assert!(MapHost::from_json(r#"{"restaurants": []}"#).unwrap_err().contains("\"restaurants\""));
    }
}
