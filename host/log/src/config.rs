use std::time::Duration;

/// How a [`EmbeddedLog`](crate::EmbeddedLog) shards and trims its streams.
///
/// The shard count is written into the log file when it is created; reopening the file
/// with another count is refused (see [`LogError::ShardCountMismatch`](crate::LogError::ShardCountMismatch)),
/// since records of one partition key would then land on another shard and lose their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Shards per stream. Records with the same partition key always land on the same shard
    /// and keep their order there. By default 4.
    pub shards_per_stream: u32,
    /// Records whose arrival time is older than this are removed by
    /// [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention). By default 24 hours,
    /// as a Kinesis stream's default retention.
    pub retention_age: Duration,
    /// Most bytes kept per stream (all shards together); the oldest records beyond it are
    /// removed by [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention).
    /// By default 1 GiB.
    pub retention_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { shards_per_stream: 4, retention_age: Duration::from_secs(24 * 60 * 60), retention_bytes: 1 << 30 }
    }
}
