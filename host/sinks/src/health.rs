//! How each sink's deliveries are going: which sinks are failing, since when, and why —
//! for `/healthz`, so an operator or a load balancer sees a sink that cannot write long
//! before its backlog turns ingest away.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest reason kept per sink, in characters.
const MAX_REASON_CHARS: usize = 500;

/// A sink whose writes fail: since the first failure after its last success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFailure {
    /// When it started failing.
    pub since: Instant,
    /// Failed attempts since then.
    pub attempts: u64,
    /// The last reason (its first 500 characters).
    pub last_error: String,
}

/// The sinks that are failing, by name. A success of a sink clears it.
#[derive(Debug, Default)]
pub struct SinkHealth {
    failing: Mutex<BTreeMap<String, SinkFailure>>,
}

impl SinkHealth {
    /// Records a failed write of `sink`.
    pub fn failed(&self, sink: &str, error: &str) {
        let last_error: String = error.chars().take(MAX_REASON_CHARS).collect();
        let mut failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match failing.get_mut(sink) {
            Some(failure) => {
                failure.attempts += 1;
                failure.last_error = last_error;
            }
            None => {
                failing.insert(sink.to_owned(), SinkFailure { since: Instant::now(), attempts: 1, last_error });
            }
        }
    }

    /// Records a write of `sink` that every record made.
    pub fn succeeded(&self, sink: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failing.remove(sink);
    }

    /// The sinks that have been failing for at least `at_least`, by name.
    pub fn failing_for(&self, at_least: Duration) -> Vec<(String, SinkFailure)> {
        let failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failing
            .iter()
            .filter(|(_, failure)| failure.since.elapsed() >= at_least)
            .map(|(sink, failure)| (sink.clone(), failure.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_is_failing_from_its_first_failure_until_its_next_success() {
        let health = SinkHealth::default();
        health.failed("lake", "disk full");
        health.failed("lake", &"x".repeat(10_000));
        health.failed("search", "index writer died");
        let failing = health.failing_for(Duration::ZERO);
        assert_eq!(failing.iter().map(|(sink, _)| sink.as_str()).collect::<Vec<_>>(), ["lake", "search"]);
        assert_eq!(failing[0].1.attempts, 2);
        assert_eq!(failing[0].1.last_error.len(), 500, "the reason is bounded");
        assert!(health.failing_for(Duration::from_secs(3600)).is_empty(), "not for an hour yet");
        health.succeeded("lake");
        assert_eq!(health.failing_for(Duration::ZERO).len(), 1);
    }
}
