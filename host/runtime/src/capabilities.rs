//! What a plugin may touch: the `weir:plugin/host` imports (log, counters, reference
//! lookups) and a WASI context that grants nothing. The store's data is [`HostState`].

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::host;
use crate::plugin_id::PluginId;

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Where a plugin's log lines and captured stdout/stderr go.
pub trait PluginLog: Send + Sync + 'static {
    /// One line written by `plugin`.
    fn line(&self, plugin: &PluginId, level: LogLevel, message: &str);
}

/// Sends plugin log lines to `tracing`, tagged with the plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLog;

impl PluginLog for TracingLog {
    fn line(&self, plugin: &PluginId, level: LogLevel, message: &str) {
        let plugin = plugin.to_string();
        match level {
            LogLevel::Trace => tracing::trace!(%plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(%plugin, "{message}"),
            LogLevel::Info => tracing::info!(%plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(%plugin, "{message}"),
            LogLevel::Error => tracing::error!(%plugin, "{message}"),
        }
    }
}

/// What [`ReferenceData::lookup`] returns: the JSON document, `None` when the key has
/// none, or why the store could not answer.
pub type LookupFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<String>, String>> + Send + 'a>>;

/// How long one lookup may take, whatever store is behind it; a lookup that takes longer
/// fails the plugin call with the reason (the store's own bound is usually shorter).
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a `lookup` failed: the call fails with it, as [`CallErrorKind::Lookup`](crate::CallErrorKind::Lookup).
#[derive(Debug)]
pub(crate) struct LookupFailed(pub(crate) String);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LookupFailed {}

/// Reference data a plugin can look up by table and key (a JSON document per key): held
/// in memory, or read from a production store (DynamoDB, S3) behind a cache.
pub trait ReferenceData: Send + Sync + 'static {
    /// The JSON document under `key` in `table`, if any; an error when the store behind
    /// the table failed (the plugin's call then fails with it, naming the table).
    fn lookup<'a>(&'a self, table: &'a str, key: &'a str) -> LookupFuture<'a>;
}

/// Reference data held in memory: table → key → JSON text.
#[derive(Debug, Default, Clone)]
pub struct StaticReferenceData {
    tables: HashMap<String, HashMap<String, String>>,
}

impl StaticReferenceData {
    /// Builds from a JSON object `{"table": {"key": value, ...}, ...}`.
    ///
    /// # Errors
    /// When the document is not an object of objects.
    pub fn from_json(doc: &serde_json::Value) -> Result<Self, String> {
        let tables =
            doc.as_object().ok_or("reference data must be a JSON object of tables: {\"table\": {\"key\": value}}")?;
        let mut out = Self::default();
        for (table, rows) in tables {
            let rows = rows.as_object().ok_or_else(|| format!("table {table:?} must be an object of key → value"))?;
            let rows = rows.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            out.tables.insert(table.clone(), rows);
        }
        Ok(out)
    }

    /// Sets one entry.
    pub fn insert(&mut self, table: &str, key: &str, json: &str) {
        self.tables.entry(table.to_owned()).or_default().insert(key.to_owned(), json.to_owned());
    }
}

impl StaticReferenceData {
    /// The JSON document under `key` in `table`, if any.
    pub fn get(&self, table: &str, key: &str) -> Option<String> {
        self.tables.get(table)?.get(key).cloned()
    }
}

impl ReferenceData for StaticReferenceData {
    fn lookup<'a>(&'a self, table: &'a str, key: &'a str) -> LookupFuture<'a> {
        Box::pin(std::future::ready(Ok(self.get(table, key))))
    }
}

/// Log output of one instance, with the per-call byte budget that rate-limits it.
#[derive(Debug)]
pub(crate) struct LogBudget {
    remaining: usize,
    dropped_lines: u64,
    /// Bytes of stdout/stderr after the last newline, not yet a whole line.
    partial: Vec<u8>,
}

/// Distinct counter names a plugin may keep.
pub const MAX_COUNTERS: usize = 256;
/// The longest counter name, in bytes.
pub const MAX_COUNTER_NAME_BYTES: usize = 128;
/// Where updates of counters past [`MAX_COUNTERS`] or [`MAX_COUNTER_NAME_BYTES`] are
/// counted instead.
pub const REFUSED_COUNTER: &str = "weir.counters_refused";

/// State shared by a plugin's instances: its identity, log destination and counters.
pub(crate) struct PluginShared {
    pub(crate) id: PluginId,
    pub(crate) log: Arc<dyn PluginLog>,
    pub(crate) reference: Arc<dyn ReferenceData>,
    pub(crate) counters: Mutex<BTreeMap<String, i64>>,
}

impl PluginShared {
    pub(crate) fn new(id: PluginId, log: Arc<dyn PluginLog>, reference: Arc<dyn ReferenceData>) -> Self {
        Self { id, log, reference, counters: Mutex::new(BTreeMap::new()) }
    }
}

/// The log of one instance's calls: the per-call byte budget that rate-limits it, the
/// partial stdout line and the last lines written (what a trap's message quotes). One
/// per instance, so calls running at once on a plugin's instances keep their lines and
/// budgets apart.
pub(crate) struct CallLog {
    shared: Arc<PluginShared>,
    budget: Mutex<LogBudget>,
    /// The last lines the plugin wrote in the current call (a panic message, usually).
    last_lines: Mutex<Vec<String>>,
}

impl CallLog {
    pub(crate) fn new(shared: Arc<PluginShared>) -> Self {
        Self {
            shared,
            budget: Mutex::new(LogBudget { remaining: 0, dropped_lines: 0, partial: Vec::new() }),
            last_lines: Mutex::new(Vec::new()),
        }
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, LogBudget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a call: `bytes` of log may be written.
    pub(crate) fn reset_log_budget(&self, bytes: usize) {
        let mut b = self.budget();
        b.remaining = bytes;
        b.dropped_lines = 0;
    }

    /// Ends a call: flushes a partial stdout line and reports dropped lines.
    pub(crate) fn finish_call_log(&self) {
        let (partial, dropped) = {
            let mut b = self.budget();
            (std::mem::take(&mut b.partial), std::mem::take(&mut b.dropped_lines))
        };
        if !partial.is_empty() {
            self.write_line(LogLevel::Info, &String::from_utf8_lossy(&partial));
        }
        if dropped > 0 {
            self.shared.log.line(
                &self.shared.id,
                LogLevel::Warn,
                &format!("{dropped} log lines dropped: over the plugin's log limit for one call"),
            );
        }
    }

    pub(crate) fn last_output(&self) -> Option<String> {
        let lines = self.last_lines.lock().unwrap_or_else(PoisonError::into_inner);
        (!lines.is_empty()).then(|| lines.join(" | "))
    }

    pub(crate) fn clear_last_output(&self) {
        self.last_lines.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn remember(&self, line: &str) {
        // Rust's hint about RUST_BACKTRACE follows every panic message; it helps nobody here.
        if line.starts_with("note: run with `RUST_BACKTRACE") {
            return;
        }
        let mut lines = self.last_lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == 3 {
            lines.remove(0);
        }
        lines.push(line.chars().take(500).collect());
    }

    fn write_line(&self, level: LogLevel, line: &str) {
        self.remember(line);
        {
            let mut b = self.budget();
            if line.len() > b.remaining {
                b.remaining = 0;
                b.dropped_lines += 1;
                return;
            }
            b.remaining -= line.len();
        }
        self.shared.log.line(&self.shared.id, level, line);
    }

    fn write_output(&self, data: &[u8]) {
        let lines: Vec<Vec<u8>> = {
            let mut b = self.budget();
            b.partial.extend_from_slice(data);
            match b.partial.iter().rposition(|&c| c == b'\n') {
                Some(end) => {
                    let rest = b.partial.split_off(end + 1);
                    let whole = std::mem::replace(&mut b.partial, rest);
                    whole.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
                }
                // A runaway line without newlines is cut into budget-sized pieces.
                None if b.partial.len() > 4096 => vec![std::mem::take(&mut b.partial)],
                None => Vec::new(),
            }
        };
        for line in lines {
            self.write_line(LogLevel::Info, &String::from_utf8_lossy(&line));
        }
    }
}

/// stdout/stderr of a plugin: captured into its log, never the host's terminal.
#[derive(Clone)]
struct CapturedOutput(Arc<CallLog>);

impl wasmtime_wasi::cli::IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.0.write_output(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Memory accounting for one instance: refuses growth past the limit with an error that
/// traps the guest at once (rather than letting `memory.grow` fail and the guest abort
/// with a vaguer message), and remembers the peak for reports.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) total: usize,
    pub(crate) peak: usize,
}

/// The error a refused memory growth traps with; found again when classifying the trap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: the plugin asked for {requested} bytes")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: usize,
    pub(crate) requested: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let requested = self.total - current + desired;
        if requested > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { limit: self.limit, requested }));
        }
        self.total = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any plugin.
        Ok(desired <= 1_000_000)
    }
}

/// The data of one instance's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) shared: Arc<PluginShared>,
    /// This instance's log.
    pub(crate) call_log: Arc<CallLog>,
}

impl HostState {
    /// A store's data with WASI granting nothing: no preopened directories, no
    /// environment or arguments, no network (every socket address is refused, name
    /// lookups are off), stdin empty, stdout/stderr captured into the plugin log.
    pub(crate) fn new(shared: Arc<PluginShared>, memory_limit: usize) -> Self {
        let call_log = Arc::new(CallLog::new(shared.clone()));
        let output = CapturedOutput(call_log.clone());
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { limit: memory_limit, total: 0, peak: 0 },
            shared,
            call_log,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl host::Host for HostState {
    async fn log(&mut self, level: host::LogLevel, message: String) {
        let level = match level {
            host::LogLevel::Trace => LogLevel::Trace,
            host::LogLevel::Debug => LogLevel::Debug,
            host::LogLevel::Info => LogLevel::Info,
            host::LogLevel::Warn => LogLevel::Warn,
            host::LogLevel::Error => LogLevel::Error,
        };
        self.call_log.write_line(level, &message);
    }

    async fn counter_add(&mut self, name: String, delta: i64) {
        let mut counters = self.shared.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = counters.get_mut(&name) {
            *slot = slot.saturating_add(delta);
            return;
        }
        // Counters live as long as the plugin: their names are bounded in number and
        // length, and an update past the bounds is counted, not kept.
        if name.len() > MAX_COUNTER_NAME_BYTES || counters.len() >= MAX_COUNTERS {
            let refused = counters.entry(REFUSED_COUNTER.to_owned()).or_insert(0);
            *refused = refused.saturating_add(1);
            return;
        }
        counters.insert(name, delta);
    }

    async fn lookup(&mut self, table: String, key: String) -> wasmtime::Result<Option<String>> {
        // A store that fails or is slow fails this call (its records are isolated and
        // dead-lettered with the reason) instead of answering "no such key".
        let shown = || key.chars().take(100).collect::<String>();
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.shared.reference.lookup(&table, &key)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(why)) => Err(wasmtime::Error::new(LookupFailed(format!(
                "lookup of key {:?} in reference table {table} failed: {why}",
                shown()
            )))),
            Err(_) => Err(wasmtime::Error::new(LookupFailed(format!(
                "lookup of key {:?} in reference table {table} took more than {LOOKUP_TIMEOUT:?}",
                shown()
            )))),
        }
    }
}

impl crate::bindings::types::Host for HostState {}
