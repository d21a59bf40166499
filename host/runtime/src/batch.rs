//! The host-side shapes of what crosses the boundary, and the checks applied to what a
//! plugin returns before anything downstream sees it.

use weir_events::Columns;

/// A raw record as it arrived, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub data: Vec<u8>,
    pub key: Option<String>,
    pub content_type: String,
    /// Microseconds since the Unix epoch.
    pub arrival_time: i64,
}

/// One input the plugin could not process, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the input in the batch.
    pub index: u32,
    pub message: String,
}

/// What a parser, an enricher or `finish` returned for a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchOutput {
    /// Every event produced, in input order.
    pub events: Columns,
    /// Per input: how many events of `events` it produced.
    pub counts: Vec<u32>,
    /// Inputs that failed; each also has count 0.
    pub errors: Vec<RecordError>,
}

/// What `accumulate` returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccumulateOutput {
    /// One new state per input state.
    pub states: Vec<Vec<u8>>,
    pub errors: Vec<RecordError>,
}

pub use weir_events::{FinishedGroup, Window};

impl BatchOutput {
    /// Checks the output against the contract for `inputs` inputs, at most
    /// `max_per_input` events each (`None`: any number).
    pub(crate) fn check(&self, inputs: usize, max_per_input: Option<u32>) -> Result<(), String> {
        if self.counts.len() != inputs {
            return Err(format!("returned {} outcomes for {inputs} inputs", self.counts.len()));
        }
        let produced: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if produced != self.events.len() as u64 {
            return Err(format!("counts add up to {produced} events but it returned {}", self.events.len()));
        }
        if let Some(max) = max_per_input
            && let Some(at) = self.counts.iter().position(|&c| c > max)
        {
            return Err(format!("returned {} events for input {at}; at most {max} are allowed", self.counts[at]));
        }
        check_errors(&self.errors, inputs)?;
        if let Some(e) = self.errors.iter().find(|e| self.counts[e.index as usize] != 0) {
            return Err(format!("input {} both failed and produced events", e.index));
        }
        self.events.validate().map_err(|e| e.to_string())
    }

    /// For each input, the range of `events` it produced.
    pub fn ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        self.counts.iter().scan(0usize, |start, &count| {
            let range = *start..*start + count as usize;
            *start = range.end;
            Some(range)
        })
    }
}

pub(crate) fn check_errors(errors: &[RecordError], inputs: usize) -> Result<(), String> {
    match errors.iter().find(|e| e.index as usize >= inputs) {
        Some(e) => Err(format!("reported an error for input {} of a batch of {inputs}", e.index)),
        None => Ok(()),
    }
}
