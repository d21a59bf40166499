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
    pub elapsed: Duration,
}

impl RunProgress<'_> {
    /// The time left, estimated from the share of the files' bytes read so far; `None`
    /// before anything was read.
    pub fn eta(&self) -> Option<Duration> {
        if self.read_bytes == 0 || self.file_bytes == 0 {
            return None;
        }
        let done = (self.read_bytes as f64 / self.file_bytes as f64).min(1.0);
        Some(self.elapsed.mul_f64((1.0 - done) / done))
    }
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
    fn the_eta_scales_the_elapsed_time_by_what_is_left() {
        let progress = RunProgress {
            job: "j",
            run: "r",
            files: 2,
            file_bytes: 1000,
            records: 10,
            read_bytes: 250,
            elapsed: Duration::from_secs(3),
        };
        assert_eq!(progress.eta(), Some(Duration::from_secs(9)));
        assert_eq!(RunProgress { read_bytes: 0, ..progress }.eta(), None);
        assert_eq!(RunProgress { read_bytes: 5000, ..progress }.eta(), Some(Duration::ZERO));
    }
}
