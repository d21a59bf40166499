//! Helpers for a plugin's native tests: read events from NDJSON fixtures and compare
//! events with an expected file (the `{"key","time","fields"}` form of
//! [`weir_events::json`], one event per line).
//!
//! They panic with a message instead of returning errors: they are meant for tests.

use std::path::Path;

use weir_events::{Event, json};

/// Set to regenerate expected files instead of comparing with them.
pub const BLESS_VAR: &str = "WEIR_BLESS";

/// The events of an NDJSON file; blank lines are skipped.
///
/// # Panics
/// When the file cannot be read or a line is not an event, naming the line.
pub fn read_events(path: impl AsRef<Path>) -> Vec<Event> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| e.to_string())
                .and_then(|doc| json::event_from_json(&doc))
                .unwrap_or_else(|e| panic!("{}:{}: not an event: {e}", path.display(), n + 1))
        })
        .collect()
}

/// The NDJSON text of `events`, one per line.
pub fn to_ndjson(events: &[Event]) -> String {
    events.iter().map(|event| format!("{}\n", json::event_to_json(event))).collect()
}

/// Checks that `events` are exactly the events of the NDJSON file at `path`, line by
/// line. With `WEIR_BLESS=1` in the environment it writes the file instead, so expected
/// files are produced by the code they check and cannot drift from it.
///
/// # Panics
/// When the events differ from the file, or the file cannot be read or written.
pub fn assert_events_file(path: impl AsRef<Path>, events: &[Event]) {
    let path = path.as_ref();
    let actual = to_ndjson(events);
    if std::env::var_os(BLESS_VAR).is_some() {
        std::fs::write(path, &actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (n, (want, got)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(want, got, "{}:{} differs (rerun with {BLESS_VAR}=1 to accept)", path.display(), n + 1);
    }
    assert_eq!(
        expected.lines().count(),
        actual.lines().count(),
        "{} has a different number of events (rerun with {BLESS_VAR}=1 to accept)",
        path.display()
    );
}
