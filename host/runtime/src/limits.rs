use std::time::Duration;

/// Bounds on every call into one plugin. Configurable per plugin; the defaults suit a
/// Rust plugin handling batches of about a thousand records.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Time the guest may spend executing one call, enforced by an epoch deadline
    /// (granularity: the runtime's epoch tick, 5 ms by default). Default: 1 s.
    pub cpu: Duration,
    /// Wall-clock time for one call, including time spent in host calls such as
    /// lookups. Default: 5 s.
    pub wall: Duration,
    /// Linear memory of one instance, all memories together. Default: 128 MiB.
    pub memory_bytes: usize,
    /// Events one call may return. Default: 100 000.
    pub max_output_events: usize,
    /// Payload bytes (text, keys, scalars, field names) one call may return. Default:
    /// 32 MiB.
    pub max_output_bytes: usize,
    /// Distinct field names one call may return: the lake and the warehouse write a
    /// column per name, so a plugin that names a field per event would make files of
    /// tens of thousands of columns. Default: 1 000.
    pub max_output_fields: usize,
    /// Bytes of one aggregation group's state, as `init`, `accumulate` and `merge`
    /// return it: the host keeps every open group's state between calls and copies the
    /// empty state into each new group. Default: 64 KiB.
    pub max_state_bytes: usize,
    /// Bytes of log lines and captured stdout/stderr kept per call; the rest is counted
    /// and dropped. Default: 64 KiB.
    pub max_log_bytes_per_call: usize,
    /// Instances that may run calls at the same time, each with its own memory (up to
    /// `memory_bytes`): calls from several shards run at once on different cores.
    /// Default: [`default_instances`], the machine's cores, at most 4.
    pub instances: usize,
}

/// The default [`Limits::instances`]: one per core, at most 4, so the shards of a stream
/// run a plugin on every core instead of taking turns on one instance.
pub fn default_instances() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 4)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_secs(1),
            wall: Duration::from_secs(5),
            memory_bytes: 128 << 20,
            max_output_events: 100_000,
            max_output_bytes: 32 << 20,
            max_output_fields: 1_000,
            max_state_bytes: 64 << 10,
            max_log_bytes_per_call: 64 << 10,
            instances: default_instances(),
        }
    }
}
