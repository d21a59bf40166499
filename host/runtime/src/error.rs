use std::fmt;
use std::time::Duration;

/// Why a component was refused at load. Every reason found is listed at once, so a
/// plugin author fixes them in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is empty or ends before the 8-byte WebAssembly header.
    #[error("{0}: the file is truncated: {1} bytes, shorter than a WebAssembly header")]
    Truncated(String, usize),
    /// The bytes are not WebAssembly at all.
    #[error(
        "{0}: not a WebAssembly component (the file starts with {1}); build the plugin with `cargo build --release --target wasm32-wasip2` or another component toolchain"
    )]
    NotWasm(String, String),
    /// A core module where a component is expected.
    #[error(
        "{0}: this is a core WebAssembly module, not a component; build for the `wasm32-wasip2` target (or wrap the module with `wasm-tools component new`) so it exports a weir:plugin world"
    )]
    CoreModule(String),
    /// The component could not be decoded or compiled (often a cut-off download).
    #[error("{0}: the component is truncated or corrupt and could not be compiled: {1}")]
    Invalid(String, String),
    /// The component breaks the contract; each entry is one reason.
    #[error("{0}: refused:\n  - {reasons}", reasons = .1.join("\n  - "))]
    Refused(String, Vec<String>),
    /// The plugin rejected its configuration in `configure`.
    #[error("{0}: the plugin rejected its configuration: {1}")]
    ConfigRejected(String, String),
    /// The plugin could not be instantiated or configured (a trap or limit at start).
    #[error("{0}: failed to start: {1}")]
    Start(String, String),
    /// A problem of the host itself (I/O, cache).
    #[error("{0}: {1}")]
    Host(String, String),
}

/// Which limit a call exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKind {
    /// CPU time (epoch deadline).
    Cpu { limit: Duration },
    /// Wall-clock time.
    WallClock { limit: Duration },
    /// Linear memory: the guest asked to grow to `requested` bytes.
    Memory { limit: usize, requested: usize },
    /// The wasm call stack (deep recursion).
    Stack,
    /// Too many output events.
    OutputEvents { limit: usize, produced: usize },
    /// Too many output bytes.
    OutputBytes { limit: usize, produced: usize },
    /// A group state larger than `max_state_bytes`.
    StateBytes { limit: usize, produced: usize },
    /// More distinct field names than `max_output_fields`.
    OutputFields { limit: usize, produced: usize },
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu { limit } => write!(f, "CPU limit ({} ms)", limit.as_millis()),
            Self::WallClock { limit } => write!(f, "wall-clock limit ({} ms)", limit.as_millis()),
            Self::Memory { limit, requested } => {
                write!(f, "memory limit ({} MiB; it asked for {} MiB)", limit >> 20, requested.div_ceil(1 << 20))
            }
            Self::Stack => f.write_str("stack limit (call stack exhausted, e.g. unbounded recursion)"),
            Self::OutputEvents { limit, produced } => {
                write!(f, "output limit ({limit} events; it returned {produced})")
            }
            Self::OutputBytes { limit, produced } => write!(f, "output limit ({limit} bytes; it returned {produced})"),
            Self::StateBytes { limit, produced } => {
                write!(f, "state limit ({limit} bytes per group; it returned a state of {produced})")
            }
            Self::OutputFields { limit, produced } => {
                write!(f, "field-name limit ({limit} distinct field names per call; it returned {produced})")
            }
        }
    }
}

/// What went wrong in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// A limit was exceeded; the instance was stopped.
    Limit(LimitKind),
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap(String),
    /// The guest returned something that breaks the contract (wrong number of
    /// outcomes, a malformed event batch...).
    Contract(String),
    /// A reference table the plugin looked up could not be read: its store failed or was
    /// too slow (the reason names the table and key). The plugin is not at fault.
    Lookup(String),
    /// A fresh instance could not start: instantiation or `configure` failed (it
    /// rejected its configuration, trapped or hit a limit). No record was run, so none
    /// is at fault: callers hold the records instead of dead-lettering them.
    Start(String),
}

impl CallErrorKind {
    /// What happened, as messages say it: `exceeded its CPU limit (1000 ms)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Limit(limit) => format!("exceeded its {limit}"),
            Self::Trap(msg) => format!("trapped ({msg})"),
            Self::Contract(msg) => format!("broke the plugin contract ({msg})"),
            Self::Lookup(msg) => format!("could not read its reference data ({msg})"),
            Self::Start(msg) => format!("could not start a fresh instance ({msg})"),
        }
    }
}

/// A call that failed as a whole: every record of the batch is retried or dead-lettered
/// by the caller's policy. The instance that failed has been discarded; the next call
/// gets a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} {what} on {batch}; the instance was discarded")]
pub struct CallError {
    /// `name@version` of the plugin.
    pub plugin: String,
    /// Which batch: as described by the caller (e.g. `batch 3 (64 records)`).
    pub batch: String,
    /// What happened.
    pub kind: CallErrorKind,
    what: String,
}

impl CallError {
    pub(crate) fn new(plugin: String, batch: String, kind: CallErrorKind) -> Self {
        let what = kind.describe();
        Self { plugin, batch, kind, what }
    }

    /// A call error as the runtime would make it, for tests of code that handles them.
    pub fn for_tests(plugin: &str, batch: &str, kind: CallErrorKind) -> Self {
        Self::new(plugin.to_owned(), batch.to_owned(), kind)
    }

    /// The limit exceeded, if that is what happened.
    pub fn limit(&self) -> Option<&LimitKind> {
        match &self.kind {
            CallErrorKind::Limit(l) => Some(l),
            _ => None,
        }
    }

    /// Whether the plugin could not start, rather than failing on the records.
    pub fn is_start_failure(&self) -> bool {
        matches!(self.kind, CallErrorKind::Start(_))
    }

    /// A short reason for a dead letter: what happened, without the batch.
    pub fn reason(&self) -> String {
        format!("plugin {} {}", self.plugin, self.what)
    }
}
