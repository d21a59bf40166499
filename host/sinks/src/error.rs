//! Errors of sinks and of delivery.

/// Any error a destination's client returns, boxed so every sink can carry its own.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A whole-call failure of a sink (per-record failures are in a
/// [`WriteReport`](crate::WriteReport)). The message names the sink, the object key /
/// path / table, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink could not be set up: a directory, bucket or table is unusable.
    #[error("sink {sink}: cannot open {location}: {source}; check that it exists (or can be created) and is writable")]
    Open {
        /// The sink's name.
        sink: String,
        /// The directory, bucket or endpoint.
        location: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The destination failed or refused a write. Retryable: the destination may be
    /// down, throttling or unreachable.
    #[error(
        "sink {sink}: writing {target} failed: {source}; it will be retried, check that the destination is reachable and writable"
    )]
    Write {
        /// The sink's name.
        sink: String,
        /// The object key, table or index written.
        target: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The commit could not be encoded for the destination. Not retryable: the same commit
    /// would fail the same way.
    #[error("sink {sink}: cannot encode {target}: {message}; this is a bug in weir, report it with the commit range")]
    Encode {
        /// The sink's name.
        sink: String,
        /// The object key, table or index that was being encoded.
        target: String,
        /// Why.
        message: String,
    },
}

impl SinkError {
    /// Whether trying the same write again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Write { .. })
    }
}

/// Why [`deliver`](crate::deliver) returned without every record acknowledged. In every
/// case the stage must not checkpoint the commit: the range is replayed on restart, and
/// the sinks' idempotent writes absorb what was already written.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Shutdown fired while records were still failing.
    #[error(
        "sink {sink}: shutting down with {pending} of {total} records of {commit} not acknowledged after {attempts} attempts; the commit is not checkpointed and is replayed on restart"
    )]
    Shutdown {
        /// The sink's name.
        sink: String,
        /// The commit, as [`SinkCommit::describe`](crate::SinkCommit::describe) names it.
        commit: String,
        /// Attempts made.
        attempts: u32,
        /// Records still not written.
        pending: usize,
        /// Records in the commit.
        total: usize,
    },
    /// [`RetryPolicy::max_attempts`](crate::RetryPolicy::max_attempts) ran out.
    #[error(
        "sink {sink}: gave up on {commit} after {attempts} attempts with {pending} of {total} records not acknowledged (last error: {last_error}); fix the destination and restart to replay the commit"
    )]
    Exhausted {
        /// The sink's name.
        sink: String,
        /// The commit, as [`SinkCommit::describe`](crate::SinkCommit::describe) names it.
        commit: String,
        /// Attempts made.
        attempts: u32,
        /// Records still not written.
        pending: usize,
        /// Records in the commit.
        total: usize,
        /// The last failure seen.
        last_error: String,
    },
    /// The sink returned an error that retrying cannot fix.
    #[error("{commit} was not delivered: {source}")]
    Fatal {
        /// The sink's name.
        sink: String,
        /// The commit, as [`SinkCommit::describe`](crate::SinkCommit::describe) names it.
        commit: String,
        /// The sink's error.
        #[source]
        source: SinkError,
    },
}
