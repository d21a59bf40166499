//! What is failing right now — sinks whose writes fail, live plugins that cannot start —
//! since when and why: for `/healthz`, so an operator or a load balancer sees a sink that
//! cannot write long before its backlog turns ingest away.
//!
//! Failures are kept per part (a sink's writes from one shard, say): one shard's success
//! must not hide another shard's failure. They are reported per name: a name is failing
//! while any of its parts is.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest reason kept per failure, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Something failing since its first failure after its last success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// When it started failing.
    pub since: Instant,
    /// Failed attempts since then.
    pub attempts: u64,
    /// The last reason (its first 500 characters).
    pub last_error: String,
}

/// The failing sinks or plugins, by name and part. A success of a part clears that part.
#[derive(Debug, Default)]
pub struct Outages {
    failing: Mutex<BTreeMap<(String, String), (Outage, Instant)>>,
}

impl Outages {
    /// Records a failure of `name` in `part` (e.g. a sink's write of one shard's commit).
    pub fn failed(&self, name: &str, part: &str, error: &str) {
        let last_error: String = error.chars().take(MAX_REASON_CHARS).collect();
        let now = Instant::now();
        let mut failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match failing.get_mut(&(name.to_owned(), part.to_owned())) {
            Some((outage, last)) => {
                outage.attempts += 1;
                outage.last_error = last_error;
                *last = now;
            }
            None => {
                let outage = Outage { since: now, attempts: 1, last_error };
                failing.insert((name.to_owned(), part.to_owned()), (outage, now));
            }
        }
    }

    /// Records a success of `name` in `part`.
    pub fn succeeded(&self, name: &str, part: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failing.remove(&(name.to_owned(), part.to_owned()));
    }

    /// The names failing in some part for at least `at_least`, by name: since the
    /// earliest of their parts' failures, attempts summed, the most recent reason.
    pub fn failing_for(&self, at_least: Duration) -> Vec<(String, Outage)> {
        let failing = self.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut by_name: BTreeMap<&str, (Outage, Instant)> = BTreeMap::new();
        for ((name, _), (outage, last)) in failing.iter() {
            if outage.since.elapsed() < at_least {
                continue;
            }
            match by_name.get_mut(name.as_str()) {
                Some((merged, merged_last)) => {
                    merged.since = merged.since.min(outage.since);
                    merged.attempts += outage.attempts;
                    if last > merged_last {
                        merged.last_error.clone_from(&outage.last_error);
                        *merged_last = *last;
                    }
                }
                None => {
                    by_name.insert(name, (outage.clone(), *last));
                }
            }
        }
        by_name.into_iter().map(|(name, (outage, _))| (name.to_owned(), outage)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_is_failing_from_its_first_failure_until_its_next_success() {
        let health = Outages::default();
        health.failed("lake", "0", "disk full");
        health.failed("lake", "0", &"x".repeat(10_000));
        health.failed("search", "0", "index writer died");
        let failing = health.failing_for(Duration::ZERO);
        assert_eq!(failing.iter().map(|(sink, _)| sink.as_str()).collect::<Vec<_>>(), ["lake", "search"]);
        assert_eq!(failing[0].1.attempts, 2);
        assert_eq!(failing[0].1.last_error.len(), 500, "the reason is bounded");
        assert!(health.failing_for(Duration::from_secs(3600)).is_empty(), "not for an hour yet");
        health.succeeded("lake", "0");
        assert_eq!(health.failing_for(Duration::ZERO).len(), 1);
    }

    #[test]
    fn one_shards_success_does_not_hide_another_shards_failure() {
        let health = Outages::default();
        health.failed("lake", "0", "shard 0 cannot write");
        health.failed("lake", "1", "shard 1 cannot write");
        health.succeeded("lake", "1");
        let failing = health.failing_for(Duration::ZERO);
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!(failing[0].0, "lake");
        assert_eq!(failing[0].1.last_error, "shard 0 cannot write");
        health.failed("lake", "1", "shard 1 again");
        let failing = health.failing_for(Duration::ZERO);
        assert_eq!(failing[0].1.attempts, 2, "summed over the parts");
        assert_eq!(failing[0].1.last_error, "shard 1 again", "the most recent reason");
        health.succeeded("lake", "0");
        health.succeeded("lake", "1");
        assert!(health.failing_for(Duration::ZERO).is_empty());
    }
}
