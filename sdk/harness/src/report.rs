//! What a harness run found, and how it is printed.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use weir_events::Event;
use weir_events::json::event_to_json;
use weir_runtime::{CallStats, LogLevel, PluginInfo};

use crate::TestOptions;

/// The verdict against the expected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Match(PathBuf),
    /// The file and a readable diff.
    Mismatch(PathBuf, String),
    Updated(PathBuf),
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub component: PathBuf,
    pub input: PathBuf,
    pub info: PluginInfo,
    pub compiled_from_cache: bool,
    /// Inputs read (records or events).
    pub inputs: usize,
    /// Events produced, in order.
    pub outputs: Vec<Event>,
    /// Per-record errors: (input number, 1-based; message).
    pub record_errors: Vec<(usize, String)>,
    /// Calls that failed as a whole (trap, limit, broken contract), each with its reason.
    pub failed_calls: Vec<String>,
    /// Calls made.
    pub calls: usize,
    /// Time inside successful calls.
    pub call_time: Duration,
    /// Inputs handled by successful calls.
    pub timed_inputs: usize,
    /// Largest linear memory seen.
    pub peak_memory: usize,
    /// The plugin's counters.
    pub counters: Vec<(String, i64)>,
    /// The plugin's log lines and captured output.
    pub log: Vec<(LogLevel, String)>,
    /// Aggregators: whether merging two halves gave the one-pass output.
    pub merge_check: Option<Result<(), String>>,
    pub comparison: Option<Comparison>,
    /// The verdict on the record errors against `--expect-errors`.
    pub error_comparison: Option<Comparison>,
}

impl Report {
    pub(crate) fn new(options: &TestOptions, info: PluginInfo, compiled_from_cache: bool) -> Self {
        Self {
            component: options.component.clone(),
            input: options.input.clone(),
            info,
            compiled_from_cache,
            inputs: 0,
            outputs: Vec::new(),
            record_errors: Vec::new(),
            failed_calls: Vec::new(),
            calls: 0,
            call_time: Duration::ZERO,
            timed_inputs: 0,
            peak_memory: 0,
            counters: Vec::new(),
            log: Vec::new(),
            merge_check: None,
            comparison: None,
            error_comparison: None,
        }
    }

    pub(crate) fn record_call(&mut self, stats: CallStats, inputs: usize) {
        self.calls += 1;
        self.call_time += stats.elapsed;
        self.timed_inputs += inputs;
        self.peak_memory = self.peak_memory.max(stats.peak_memory);
    }

    /// The output events in NDJSON form, one per line.
    pub fn output_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.outputs.iter().map(|e| event_to_json(e).to_string())
    }

    /// Nanoseconds per input over the successful calls.
    pub fn ns_per_input(&self) -> Option<f64> {
        (self.timed_inputs > 0).then(|| self.call_time.as_nanos() as f64 / self.timed_inputs as f64)
    }

    /// The command's exit status: 2 when a call failed, 1 on a mismatch of the output or
    /// the record errors (or a failed merge check), else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.failed_calls.is_empty() {
            2
        } else if matches!(self.comparison, Some(Comparison::Mismatch(..)))
            || matches!(self.error_comparison, Some(Comparison::Mismatch(..)))
            || matches!(self.merge_check, Some(Err(_)))
        {
            1
        } else {
            0
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plugin   {} ({}, weir:plugin@{}, {} KiB{})",
            self.component.display(),
            self.info.world,
            self.info.wit_version,
            self.info.size.div_ceil(1024),
            if self.compiled_from_cache { ", compiled code from cache" } else { "" }
        );
        let _ = writeln!(s, "input    {}: {} inputs", self.input.display(), self.inputs);
        let _ = writeln!(
            s,
            "output   {} events, {} record errors, {} failed calls",
            self.outputs.len(),
            self.record_errors.len(),
            self.failed_calls.len()
        );
        for (input, message) in &self.record_errors {
            let _ = writeln!(s, "  record error  input {input}: {message}");
        }
        for failure in &self.failed_calls {
            let _ = writeln!(s, "  FAILED CALL   {failure}");
        }
        let per = self.ns_per_input().map_or_else(|| "-".to_owned(), |ns| format!("{ns:.0} ns/input"));
        let _ = writeln!(
            s,
            "calls    {} · {per} · peak memory {:.1} MiB",
            self.calls,
            self.peak_memory as f64 / f64::from(1 << 20)
        );
        if !self.counters.is_empty() {
            let counters: Vec<String> = self.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "counters {}", counters.join(" "));
        }
        for (level, line) in self.log.iter().take(20) {
            let _ = writeln!(s, "log      {level:?}: {line}");
        }
        if self.log.len() > 20 {
            let _ = writeln!(s, "log      ... {} more lines", self.log.len() - 20);
        }
        match &self.merge_check {
            Some(Ok(())) => s.push_str("merge    two halves merged give the one-pass output\n"),
            Some(Err(e)) => {
                let _ = writeln!(s, "merge    FAILED: {e}");
            }
            None => {}
        }
        match &self.comparison {
            Some(Comparison::Match(p)) => {
                let _ = writeln!(s, "result   output matches {}", p.display());
            }
            Some(Comparison::Updated(p)) => {
                let _ = writeln!(s, "result   wrote {} events to {}", self.outputs.len(), p.display());
            }
            Some(Comparison::Mismatch(p, diff)) => {
                let _ = writeln!(s, "result   output differs from {} (- expected, + actual):\n{diff}", p.display());
                let _ = writeln!(s, "         rerun with --update to accept the actual output");
            }
            None => {}
        }
        match &self.error_comparison {
            Some(Comparison::Match(p)) => {
                let _ = writeln!(s, "errors   record errors match {}", p.display());
            }
            Some(Comparison::Updated(p)) => {
                let _ = writeln!(s, "errors   wrote {} record errors to {}", self.record_errors.len(), p.display());
            }
            Some(Comparison::Mismatch(p, diff)) => {
                let _ = writeln!(s, "errors   record errors differ from {}:\n{diff}", p.display());
                let _ = writeln!(s, "         rerun with --update to accept them");
            }
            None => {}
        }
        f.write_str(&s)
    }
}

/// What differs between the inputs expected to be refused and the record errors found,
/// one line each, or `None` when they are the same inputs.
pub(crate) fn error_diff(expected: &[usize], found: &[(usize, String)]) -> Option<String> {
    let expected: std::collections::BTreeSet<usize> = expected.iter().copied().collect();
    let found_inputs: std::collections::BTreeSet<usize> = found.iter().map(|(input, _)| *input).collect();
    let mut lines = Vec::new();
    for input in expected.difference(&found_inputs) {
        lines.push(format!("  - input {input}: expected a record error, but it was accepted"));
    }
    for (input, message) in found.iter().filter(|(input, _)| !expected.contains(input)) {
        lines.push(format!("  + input {input}: refused, not expected: {message}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}
