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

impl RawRecord {
    /// The record, borrowed, as [`Plugin::parse_records`](crate::Plugin::parse_records)
    /// takes it.
    pub fn borrowed(&self) -> weir_events::RawRecordRef<'_> {
        weir_events::RawRecordRef {
            data: &self.data,
            key: self.key.as_deref(),
            content_type: &self.content_type,
            arrival_time: self.arrival_time,
        }
    }
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

/// Checks the errors of a call over `inputs` inputs: each names an input of the batch,
/// and no input has more than one (one record, one dead letter). Linear in the errors.
pub(crate) fn check_errors(errors: &[RecordError], inputs: usize) -> Result<(), String> {
    if let Some(e) = errors.iter().find(|e| e.index as usize >= inputs) {
        return Err(format!("reported an error for input {} of a batch of {inputs}", e.index));
    }
    let mut failed = vec![false; inputs];
    for e in errors {
        if std::mem::replace(&mut failed[e.index as usize], true) {
            return Err(format!("reported more than one error for input {}; at most one per input", e.index));
        }
    }
    Ok(())
}

/// The longest reason the host keeps for one failed input (or a refused configuration),
/// in bytes; a longer one is cut, with a marker saying how much was cut.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// `message`, cut to [`MAX_ERROR_MESSAGE_BYTES`] at a character boundary with a marker.
pub(crate) fn bounded_message(mut message: String) -> String {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return message;
    }
    let cut = (0..=MAX_ERROR_MESSAGE_BYTES).rev().find(|&at| message.is_char_boundary(at)).unwrap_or(0);
    let dropped = message.len() - cut;
    message.truncate(cut);
    message.push_str(&format!("… ({dropped} more bytes cut by the host)"));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(index: u32) -> RecordError {
        RecordError { index, message: String::new() }
    }

    #[test]
    fn each_input_has_at_most_one_error_and_it_names_an_input_of_the_batch() {
        assert_eq!(check_errors(&[error(0), error(2)], 3), Ok(()));
        assert!(
            check_errors(&[error(1), error(0), error(1)], 3).unwrap_err().contains("more than one error for input 1")
        );
        assert!(check_errors(&[error(3)], 3).unwrap_err().contains("input 3 of a batch of 3"));
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary_with_a_marker() {
        assert_eq!(bounded_message("short".into()), "short");
        let long = "é".repeat(5000); // 10 000 bytes, two per character
        let cut = bounded_message(long);
        assert!(
            cut.starts_with("éé") && cut.ends_with("(5904 more bytes cut by the host)"),
            "{}",
            &cut[cut.len() - 60..]
        );
        assert!(cut.len() < MAX_ERROR_MESSAGE_BYTES + 64);
    }
}
