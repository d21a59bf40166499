//! A hot-swappable plugin: the live version and an optional canary or shadow candidate.
//!
//! A stage takes one [`PluginSlot::snapshot`] per plugin at the start of every batch (a
//! commit: the records it reads, delivers and checkpoints together, in one or more
//! plugin calls) and uses it for the whole batch, so a swap is atomic between batches: a
//! batch in flight finishes on the versions it started with, the next one sees the new
//! versions. Nothing
//! is paused or drained: swapping is one pointer store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use weir_log::canary_bucket;
use weir_registry::CandidateMode;
use weir_runtime::{Plugin, World};

/// The versions a batch runs with.
#[derive(Debug, Clone)]
pub struct Active {
    /// The live version.
    pub live: Arc<Plugin>,
    /// A version tried beside it, if any.
    pub candidate: Option<ActiveCandidate>,
}

/// A canary or shadow version, and how it is doing.
#[derive(Debug, Clone)]
pub struct ActiveCandidate {
    pub plugin: Arc<Plugin>,
    pub mode: CandidateMode,
    /// Rolled back when more than this share of its inputs fail …
    pub max_error_rate: f64,
    /// … once it has seen this many.
    pub min_inputs: u64,
    pub stats: Arc<CandidateStats>,
}

impl ActiveCandidate {
    /// Whether a record with partition key `key` (its log position when it has none)
    /// goes through the candidate.
    pub fn takes(&self, key: &str) -> bool {
        match self.mode {
            CandidateMode::Canary { percent } => canary_bucket(Some(key)) < percent,
            CandidateMode::Shadow => false,
        }
    }
}

/// A shadow output that differs from the live version's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShadowDiff {
    /// The log record, `stream/shard/seq`.
    pub record: String,
    /// What the live version produced for it (events as JSON, or `{"error": reason}`).
    pub live: serde_json::Value,
    /// What the candidate produced.
    pub candidate: serde_json::Value,
    /// What changed, field by field: `+amount_cents: 2350`, `-total`,
    /// `currency: "eur" → "EUR"`, or which side refused the record.
    pub changes: Vec<String>,
}

/// Changes listed per sample at most; the rest are counted in one line.
pub const MAX_DIFF_CHANGES: usize = 20;

/// Characters of a value shown in a change, at most.
const MAX_CHANGE_VALUE_CHARS: usize = 60;

impl ShadowDiff {
    /// A sample of `record` with the field-level changes from `live` to `candidate`.
    pub fn new(record: String, live: serde_json::Value, candidate: serde_json::Value) -> Self {
        let changes = changes(&live, &candidate);
        Self { record, live, candidate, changes }
    }
}

/// The field-level changes from `live` to `candidate` (each an array of events as JSON,
/// or `{"error": reason}`), bounded to [`MAX_DIFF_CHANGES`] lines.
fn changes(live: &serde_json::Value, candidate: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let error = |side: &Value| side.get("error").map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned));
    let mut out = match (error(live), error(candidate)) {
        (Some(live), Some(candidate)) => vec![format!("both refused: live {live:?}, candidate {candidate:?}")],
        (Some(live), None) => vec![format!("live refused ({}), candidate accepted", short(&live))],
        (None, Some(candidate)) => vec![format!("candidate refused: {}", short(&candidate))],
        (None, None) => {
            let empty = Vec::new();
            let live = live.as_array().unwrap_or(&empty);
            let candidate = candidate.as_array().unwrap_or(&empty);
            let mut out = Vec::new();
            if live.len() != candidate.len() {
                out.push(format!("events: {} → {}", live.len(), candidate.len()));
            }
            for (index, (a, b)) in live.iter().zip(candidate).enumerate() {
                let prefix = if live.len() > 1 { format!("event {index}: ") } else { String::new() };
                for (member, text) in [("key", "key"), ("time", "time")] {
                    if a.get(member) != b.get(member) {
                        out.push(format!("{prefix}{text}: {} → {}", shown(a.get(member)), shown(b.get(member))));
                    }
                }
                let fields = |e: &'_ Value| e.get("fields").and_then(Value::as_object).cloned().unwrap_or_default();
                let (a, b) = (fields(a), fields(b));
                for (name, value) in &b {
                    match a.get(name) {
                        None => out.push(format!("{prefix}+{name}: {}", shown(Some(value)))),
                        Some(old) if old != value => {
                            out.push(format!("{prefix}{name}: {} → {}", shown(Some(old)), shown(Some(value))));
                        }
                        Some(_) => {}
                    }
                }
                out.extend(a.keys().filter(|name| !b.contains_key(*name)).map(|name| format!("{prefix}-{name}")));
                if out.len() > MAX_DIFF_CHANGES {
                    break;
                }
            }
            out
        }
    };
    if out.len() > MAX_DIFF_CHANGES {
        let more = out.len() - MAX_DIFF_CHANGES;
        out.truncate(MAX_DIFF_CHANGES);
        out.push(format!("… and {more} more"));
    }
    out
}

fn shown(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| short(&v.to_string()))
}

fn short(text: &str) -> String {
    match text.char_indices().nth(MAX_CHANGE_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Samples of differences kept per candidate.
pub const MAX_DIFF_SAMPLES: usize = 10;

/// Counters of a candidate since it started.
#[derive(Debug, Default)]
pub struct CandidateStats {
    /// Inputs it processed.
    pub inputs: AtomicU64,
    /// Inputs it failed on: its record errors, and the inputs of calls that trapped or hit
    /// a limit.
    pub failed: AtomicU64,
    /// Shadow: inputs whose outputs were compared with the live version's.
    pub compared: AtomicU64,
    /// Shadow: inputs whose outputs differed.
    pub differing: AtomicU64,
    /// Shadow: the first differences.
    pub samples: Mutex<Vec<ShadowDiff>>,
    rolled_back: AtomicBool,
}

impl CandidateStats {
    /// Counts `inputs` processed of which `failed` failed.
    pub fn record(&self, inputs: u64, failed: u64) {
        self.inputs.fetch_add(inputs, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }

    /// Counts one compared input and keeps a sample when it differs.
    pub fn compare(&self, diff: Option<ShadowDiff>) {
        self.compared.fetch_add(1, Ordering::Relaxed);
        if let Some(diff) = diff {
            self.differing.fetch_add(1, Ordering::Relaxed);
            let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            if samples.len() < MAX_DIFF_SAMPLES {
                samples.push(diff);
            }
        }
    }

    /// Inputs, failed, compared, differing, as counted now.
    pub fn counts(&self) -> [u64; 4] {
        [&self.inputs, &self.failed, &self.compared, &self.differing].map(|n| n.load(Ordering::Relaxed))
    }

    /// The error rate, once at least `min_inputs` were seen.
    pub fn error_rate(&self, min_inputs: u64) -> Option<f64> {
        let inputs = self.inputs.load(Ordering::Relaxed);
        (inputs >= min_inputs.max(1)).then(|| self.failed.load(Ordering::Relaxed) as f64 / inputs as f64)
    }

    /// The counters as JSON, for the admin API.
    pub fn to_json(&self) -> serde_json::Value {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
        serde_json::json!({
            "inputs": self.inputs.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "compared": self.compared.load(Ordering::Relaxed),
            "differing": self.differing.load(Ordering::Relaxed),
            "samples": samples,
        })
    }
}

/// Why a candidate was rolled back automatically; the deployments manager records it.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoRollback {
    pub plugin: String,
    pub version: String,
    pub reason: String,
    /// The candidate's counters then: inputs, failed, compared, differing.
    pub counts: [u64; 4],
}

/// One plugin as the stages use it.
#[derive(Debug)]
pub struct PluginSlot {
    name: String,
    world: World,
    active: RwLock<Arc<Active>>,
    rollbacks: Option<tokio::sync::mpsc::UnboundedSender<AutoRollback>>,
}

impl PluginSlot {
    /// A slot for plugin `name` (a `world` component) with `live` live. Automatic
    /// rollbacks are reported on `rollbacks`.
    pub fn new(
        name: &str,
        world: World,
        live: Arc<Plugin>,
        rollbacks: Option<tokio::sync::mpsc::UnboundedSender<AutoRollback>>,
    ) -> Self {
        let active = RwLock::new(Arc::new(Active { live, candidate: None }));
        Self { name: name.to_owned(), world, active, rollbacks }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The world its versions implement.
    pub fn world(&self) -> World {
        self.world
    }

    /// The versions to run the next batch with.
    pub fn snapshot(&self) -> Arc<Active> {
        self.active.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `active` the versions of every batch that starts from now on; returns the
    /// ones it replaces.
    pub fn swap(&self, active: Active) -> Arc<Active> {
        let mut current = self.active.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *current, Arc::new(active))
    }

    /// Called by a stage after a candidate's call: rolls the candidate back when its
    /// error rate is over its threshold (once; later calls see it gone).
    pub fn judge(&self, candidate: &ActiveCandidate) {
        let Some(rate) = candidate.stats.error_rate(candidate.min_inputs) else { return };
        if rate <= candidate.max_error_rate || candidate.stats.rolled_back.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut current = self.active.write().unwrap_or_else(|p| p.into_inner());
            let same = current.candidate.as_ref().is_some_and(|c| Arc::ptr_eq(&c.stats, &candidate.stats));
            if !same {
                return;
            }
            *current = Arc::new(Active { live: current.live.clone(), candidate: None });
        }
        let reason = format!(
            "{} of {} inputs failed ({:.1}%), over the threshold of {:.1}%",
            candidate.stats.failed.load(Ordering::Relaxed),
            candidate.stats.inputs.load(Ordering::Relaxed),
            rate * 100.0,
            candidate.max_error_rate * 100.0
        );
        let version = candidate.plugin.id().version.clone();
        tracing::warn!(plugin = %self.name, %version, "candidate rolled back automatically: {reason}");
        if let Some(rollbacks) = &self.rollbacks {
            let counts = candidate.stats.counts();
            let _ = rollbacks.send(AutoRollback { plugin: self.name.clone(), version, reason, counts });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_is_judged_only_after_enough_inputs() {
        let stats = CandidateStats::default();
        stats.record(10, 5);
        assert_eq!(stats.error_rate(20), None);
        stats.record(10, 0);
        assert_eq!(stats.error_rate(20), Some(0.25));
    }
}

#[cfg(test)]
mod diff_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shadow_sample_lists_added_changed_and_removed_fields_and_who_refused() {
        let live = json!([{"key": "r-1", "time": "t", "fields": {"total": 23.5, "currency": "eur", "note": "x"}}]);
        let candidate =
            json!([{"key": "r-1", "time": "t", "fields": {"total": 23.5, "currency": "EUR", "amount_cents": 2350}}]);
        let diff = ShadowDiff::new("orders/0/7".into(), live.clone(), candidate);
        assert_eq!(diff.changes, ["currency: \"eur\" → \"EUR\"", "+amount_cents: 2350", "-note"]);

        let refused = json!({"error": "missing total"});
        assert_eq!(changes(&live, &refused), ["candidate refused: missing total"]);
        assert_eq!(changes(&refused, &live), ["live refused (missing total), candidate accepted"]);
        let two = json!([{"fields": {}}, {"fields": {}}]);
        assert_eq!(changes(&json!([{"fields": {}}]), &two), ["events: 1 → 2"]);
    }

    #[test]
    fn the_changes_of_a_sample_are_bounded() {
        let many: serde_json::Map<String, serde_json::Value> =
            (0..500).map(|i| (format!("f{i}"), json!("v".repeat(1000)))).collect();
        let diff = changes(&json!([{"fields": {}}]), &json!([{ "fields": many }]));
        assert_eq!(diff.len(), MAX_DIFF_CHANGES + 1);
        assert!(diff.last().unwrap().starts_with("… and "), "{diff:?}");
        assert!(diff.iter().all(|line| line.chars().count() < 100), "{diff:?}");
    }
}
