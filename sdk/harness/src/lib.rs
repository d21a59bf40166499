//! The plugin test harness: runs a component on local files in the production runtime,
//! with the production limits, and compares its output with an expected NDJSON file.
//!
//! `weir plugin test` is a thin command-line front on [`run`]; the same function serves
//! Rust tests that want to pin a plugin's behaviour.

mod aggregate;
pub mod bench;
mod diff;
pub mod fuzz;
mod input;
mod report;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_events::Event;
use weir_runtime::{
    CallError, Limits, LogLevel, Plugin, PluginId, PluginLog, PluginOptions, Runtime, StaticReferenceData, World,
};

pub use bench::{BenchOptions, BenchReport, bench};
pub use diff::line_diff;
pub use fuzz::{FuzzOptions, FuzzReport, fuzz};
pub use input::RecordsFormat;
pub use report::{Comparison, Report};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// Input: raw records for a parser (see [`RecordsFormat`]), NDJSON events otherwise.
    pub input: PathBuf,
    /// How a parser's input file holds its records. Default: one per line.
    pub records: RecordsFormat,
    /// Expected output events, NDJSON. None: only run and report.
    pub expect: Option<PathBuf>,
    /// Expected record errors: the inputs (1-based numbers, one per line, each optionally
    /// followed by a tab and the message as a note) that must be refused with a record
    /// error, and no other. None: record errors are reported, not checked.
    pub expect_errors: Option<PathBuf>,
    /// Rewrite `expect` (and `expect_errors`) with the actual output instead of comparing.
    pub update: bool,
    /// Reference data for `lookup`: `{"table": {"key": value}}`.
    pub lookup: Option<PathBuf>,
    /// Configuration passed to `configure`.
    pub config: Vec<(String, String)>,
    /// Records per call. Default: 1024.
    pub batch_size: usize,
    /// Content type given to a parser's records. Default: from the input's extension
    /// (`.ndjson`/`.jsonl`/`.json` → `application/json`, `.csv` → `text/csv`, else
    /// `text/plain`).
    pub content_type: Option<String>,
    /// Tumbling window of an aggregator. Default: 1 hour.
    pub window: Duration,
    /// Limits of every call: the production defaults unless changed.
    pub limits: Limits,
    /// Compiled-code cache directory. None: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl TestOptions {
    /// Options with defaults for everything but the component and the input.
    pub fn new(component: impl Into<PathBuf>, input: impl Into<PathBuf>) -> Self {
        Self {
            component: component.into(),
            input: input.into(),
            records: RecordsFormat::Lines,
            expect: None,
            expect_errors: None,
            update: false,
            lookup: None,
            config: Vec::new(),
            batch_size: 1024,
            content_type: None,
            window: Duration::from_secs(3600),
            limits: Limits::default(),
            cache_dir: None,
        }
    }
}

/// A problem that stops the harness before a verdict: bad usage, unreadable files, a
/// component that cannot be loaded. The CLI exits with status 2.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn fail(msg: impl Into<String>) -> HarnessError {
    HarnessError(msg.into())
}

/// Keeps the plugin's log lines for the report.
#[derive(Debug, Default)]
pub(crate) struct CollectedLog(Mutex<Vec<(LogLevel, String)>>);

impl PluginLog for CollectedLog {
    fn line(&self, _plugin: &PluginId, level: LogLevel, message: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((level, message.to_owned()));
    }
}

/// The component of `options` loaded in the production runtime with the options' limits,
/// configuration and lookup data, and the log its lines go to.
pub(crate) async fn load(options: &TestOptions) -> Result<(Plugin, Arc<CollectedLog>), HarnessError> {
    let bytes = std::fs::read(&options.component)
        .map_err(|e| fail(format!("cannot read component {}: {e}", options.component.display())))?;
    let reference = match &options.lookup {
        None => StaticReferenceData::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read lookup file {}: {e}", path.display())))?;
            let doc = serde_json::from_str(&text)
                .map_err(|e| fail(format!("lookup file {} is not JSON: {e}", path.display())))?;
            StaticReferenceData::from_json(&doc).map_err(|e| fail(format!("lookup file {}: {e}", path.display())))?
        }
    };
    let runtime =
        Runtime::new(weir_runtime::RuntimeConfig { cache_dir: options.cache_dir.clone(), ..Default::default() })
            .map_err(|e| fail(format!("cannot start the runtime: {e:#}")))?;
    let name = options.component.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
    let log = Arc::new(CollectedLog::default());
    let plugin_options = PluginOptions {
        limits: options.limits.clone(),
        config: options.config.clone(),
        reference: Arc::new(reference),
        log: log.clone(),
        ..Default::default()
    };
    let plugin =
        runtime.load(PluginId::new(name, "local"), &bytes, plugin_options).await.map_err(|e| fail(e.to_string()))?;
    Ok((plugin, log))
}

/// Runs the plugin on the input and, when asked, compares with or rewrites the expected
/// file.
///
/// # Errors
/// A [`HarnessError`] for unreadable files, malformed input or a component that cannot
/// be loaded. Failed calls (traps, limits) are not errors: they are in the report.
pub async fn run(options: &TestOptions) -> Result<Report, HarnessError> {
    let (plugin, log) = load(options).await?;
    let world = plugin.info().world;
    let plugin = &plugin;
    let mut report = Report::new(options, plugin.info().clone(), plugin.compiled_from_cache());
    match world {
        World::Parser => {
            let records = input::raw_records(&options.input, options.records, options.content_type.as_deref())?;
            run_batches(&mut report, records, options.batch_size, |batch, records| async move {
                plugin.parse(&batch, records).await
            })
            .await;
        }
        World::Enricher => {
            let events = input::events(&options.input)?;
            run_batches(&mut report, events, options.batch_size, |batch, events: Vec<Event>| async move {
                plugin.enrich(&batch, weir_events::Columns::encode(&events)).await
            })
            .await;
        }
        World::Aggregator => {
            let events = input::events(&options.input)?;
            aggregate::run(plugin, &mut report, events, options).await?;
        }
    }
    report.counters = plugin.counters();
    report.log = std::mem::take(&mut *log.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    if let Some(expect) = &options.expect {
        report.comparison = Some(if options.update {
            let text: String = report.output_lines().map(|l| l + "\n").collect();
            std::fs::write(expect, text).map_err(|e| fail(format!("cannot write {}: {e}", expect.display())))?;
            Comparison::Updated(expect.clone())
        } else {
            let expected = input::expected_lines(expect)?;
            let actual: Vec<String> = report.output_lines().collect();
            if expected == actual {
                Comparison::Match(expect.clone())
            } else {
                Comparison::Mismatch(expect.clone(), line_diff(&expected, &actual))
            }
        });
    }
    if let Some(expect) = &options.expect_errors {
        report.error_comparison = Some(if options.update {
            let text: String = report
                .record_errors
                .iter()
                .map(|(input, message)| format!("{input}\t{}\n", message.replace(['\n', '\r'], " ")))
                .collect();
            std::fs::write(expect, text).map_err(|e| fail(format!("cannot write {}: {e}", expect.display())))?;
            Comparison::Updated(expect.clone())
        } else {
            let expected = input::expected_error_inputs(expect)?;
            match report::error_diff(&expected, &report.record_errors) {
                None => Comparison::Match(expect.clone()),
                Some(diff) => Comparison::Mismatch(expect.clone(), diff),
            }
        });
    }
    Ok(report)
}

/// Feeds the inputs in batches, collecting outputs, record errors and failed calls. A
/// call that fails as a whole is retried on halves of its batch, as the stream stage
/// does ([`weir_runtime::isolate`]), so the report names the input that fails on its own.
async fn run_batches<T, F, Fut>(report: &mut Report, inputs: Vec<T>, batch_size: usize, mut call: F)
where
    T: Clone,
    F: FnMut(String, Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(weir_runtime::BatchOutput, weir_runtime::CallStats), CallError>>,
{
    use weir_runtime::isolate::{ISOLATION_BUDGET, isolate};
    let batch_size = batch_size.max(1);
    for (k, chunk) in inputs.chunks(batch_size).enumerate() {
        let (first, n) = (k * batch_size, chunk.len());
        let calls = std::cell::Cell::new(0usize);
        let pieces = isolate(n, ISOLATION_BUDGET, |r: std::ops::Range<usize>| {
            calls.set(calls.get() + 1);
            let label = match r.len() {
                len if len == n => format!("batch {} (inputs {}-{})", k + 1, first + 1, first + n),
                1 => format!("batch {}, input {}", k + 1, first + r.start + 1),
                _ => format!("batch {}, inputs {}-{}", k + 1, first + r.start + 1, first + r.end),
            };
            call(label, chunk[r].to_vec())
        })
        .await;
        let mut timed = 0;
        for piece in pieces {
            let start = first + piece.inputs.start;
            match piece.result {
                Ok((output, stats)) => {
                    report.record_call(stats, piece.inputs.len());
                    timed += 1;
                    for e in &output.errors {
                        report.record_errors.push((start + e.index as usize + 1, e.message.clone()));
                    }
                    match output.events.decode() {
                        Ok(events) => report.outputs.extend(events),
                        Err(e) => report.failed_calls.push(format!("inputs from {}: {e}", start + 1)),
                    }
                }
                Err(err) if piece.inputs.len() == 1 && n > 1 => {
                    report.failed_calls.push(format!("{err} (isolated: this input fails the call on its own)"));
                }
                Err(err) => report.failed_calls.push(err.to_string()),
            }
        }
        report.calls += calls.get() - timed;
    }
    report.inputs += inputs.len();
}
