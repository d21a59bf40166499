//! Why a job run failed.

/// Why a job run failed as a whole. Records the plugins refuse are not errors: they are
/// dead-lettered and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The configuration or the request is wrong: the job, a level, a plugin version.
    #[error("{0}")]
    Invalid(String),
    /// A plugin could not be loaded.
    #[error("{0}")]
    Plugin(String),
    /// The raw archive holds something that is not a raw archive line.
    #[error("the raw archive: {0}")]
    Archive(String),
    /// DataFusion failed (a level's SQL, reading the lake).
    #[error("{0}")]
    Engine(String),
    /// A sink did not acknowledge the run's output.
    #[error("{0}")]
    Sink(String),
    /// The run was stopped (shutdown) before its manifest was written: nothing of it counts,
    /// and a rerun of the period completes it.
    #[error("the run was stopped before it completed; run the period again")]
    Stopped,
}

impl BatchError {
    /// How the run ended, as `/metrics` and the failure record say it: `stopped` or
    /// `failed`.
    pub fn run_status(&self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            _ => "failed",
        }
    }
}
