//! What a run reports while it works and when it ends: `weir batch run` prints progress
//! and a summary, `weir serve` counts runs in `/metrics`.

use std::time::Duration;

use weir_sinks::RunManifest;

use crate::error::BatchError;
use crate::run::Trigger;

/// The plugin step's progress: the raw archive's files and bytes the run reads, and the
/// records the partitions have delivered so far with about how many of those bytes they
/// were read from.
#[derive(Debug, Clone, Copy)]
pub struct RunProgress<'a> {
    pub job: &'a str,
    pub run: &'a str,
    pub files: usize,
    pub file_bytes: u64,
    pub records: usize,
    pub read_bytes: u64,
    /// Since the run started.
    pub elapsed: Duration,
    /// The time the rest of the files will take to read at the rate since the first
    /// records came (setting up — listing, loading the plugins, a cluster's scheduling —
    /// is not reading); `None` until two reports apart.
    pub eta: Option<Duration>,
}

/// The time `left` bytes take at the rate of `read` bytes in `took`.
pub(crate) fn eta(took: Duration, read: u64, left: u64) -> Option<Duration> {
    if read == 0 || took.is_zero() {
        return None;
    }
    Some(took.mul_f64(left as f64 / read as f64))
}

/// How a run ended.
#[derive(Debug)]
pub struct RunFinished<'a> {
    pub job: &'a str,
    pub trigger: Trigger,
    pub outcome: Result<&'a RunManifest, &'a BatchError>,
    pub elapsed: Duration,
}

/// Told of every run of a [`crate::JobRunner`]. Called on the run's task: keep it quick.
pub trait RunObserver: Send + Sync {
    /// The plugin step delivered more records (at most a few times a second).
    fn progress(&self, _progress: &RunProgress<'_>) {}
    /// The run ended (completed, failed or stopped).
    fn finished(&self, _finished: &RunFinished<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_what_is_left_at_the_rate_so_far() {
        assert_eq!(eta(Duration::from_secs(3), 250, 750), Some(Duration::from_secs(9)));
        assert_eq!(eta(Duration::from_secs(3), 250, 0), Some(Duration::ZERO));
        assert_eq!(eta(Duration::from_secs(3), 0, 750), None);
        assert_eq!(eta(Duration::ZERO, 250, 750), None);
    }
}
