//! Batch drivers: run a plugin over one batch and build the answer the host expects.
//!
//! They are what the `export_*!` macros call, and they are plain Rust, so they run (and
//! are tested, and benchmarked) natively too.

use weir_events::{Columns, ColumnsBuilder, Event, RawBatch, RawRecordRef};

use crate::plugin::{Aggregator, Enricher, FinishedGroup, Parser, RawRecord};
use crate::{Config, host};

/// Why one input could not be processed; the host dead-letters it with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the input in the batch.
    pub index: u32,
    pub message: String,
}

impl RecordError {
    fn new(index: usize, message: impl Into<String>) -> Self {
        Self { index: index as u32, message: message.into() }
    }

    /// One error for each of `inputs` inputs, all with `message`.
    pub(crate) fn for_each_input(inputs: usize, message: &str) -> Vec<Self> {
        (0..inputs).map(|index| Self::new(index, message)).collect()
    }
}

/// The answer to a parser, enricher or finish batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutput {
    /// Every event produced, in input order.
    pub events: Columns,
    /// Per input: how many of `events` it produced (0 for a dropped or failed input).
    pub counts: Vec<u32>,
    /// Inputs that failed; each also has count 0.
    pub errors: Vec<RecordError>,
}

impl BatchOutput {
    /// The answer when none of `inputs` inputs could be processed, all for one reason.
    pub fn all_failed(inputs: usize, message: &str) -> Self {
        Self {
            events: Columns::default(),
            counts: vec![0; inputs],
            errors: RecordError::for_each_input(inputs, message),
        }
    }

    /// The events, decoded (for tests and tools; the host reads the columns).
    ///
    /// # Panics
    /// Never for a batch built by a driver, whose columns are always consistent.
    pub fn decode_events(&self) -> Vec<Event> {
        self.events.decode().expect("drivers build consistent batches")
    }
}

/// The answer to `accumulate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccumulateOutput {
    /// One state per input state, in order.
    pub states: Vec<Vec<u8>>,
    /// Events that could not be accumulated.
    pub errors: Vec<RecordError>,
}

/// Builds a [`BatchOutput`] input by input, through one [`ColumnsBuilder`].
#[derive(Default)]
struct OutputBuilder {
    events: ColumnsBuilder,
    counts: Vec<u32>,
    errors: Vec<RecordError>,
}

impl OutputBuilder {
    fn with_capacity(inputs: usize) -> Self {
        Self { counts: Vec::with_capacity(inputs), ..Self::default() }
    }

    /// For a batch whose output is about the size of `inputs` (an enricher's).
    fn for_inputs_like(inputs: &Columns) -> Self {
        Self { events: ColumnsBuilder::with_capacity_like(inputs), ..Self::with_capacity(inputs.len()) }
    }

    fn produced(&mut self, events: &[Event]) {
        for event in events {
            self.events.push(event);
        }
        self.counts.push(events.len() as u32);
    }

    fn failed(&mut self, message: String) {
        self.errors.push(RecordError::new(self.counts.len(), message));
        self.counts.push(0);
    }

    fn finish(self) -> BatchOutput {
        BatchOutput { events: self.events.finish(), counts: self.counts, errors: self.errors }
    }
}

/// Builds a plugin from the `(key, value)` pairs given to `configure`, with `configure`
/// being one of [`Parser::configure`], [`Enricher::configure`] or
/// [`Aggregator::configure`].
///
/// # Errors
/// The plugin's message rejecting the configuration.
pub fn run_configure<T>(
    pairs: Vec<(String, String)>,
    configure: impl FnOnce(&Config) -> Result<T, String>,
) -> Result<T, String> {
    host::in_batch(|| configure(&Config::new(pairs)))
}

/// Parses a batch of records.
pub fn run_parse<P: Parser>(parser: &mut P, records: &[RawRecord]) -> BatchOutput {
    host::in_batch(|| {
        let mut output = OutputBuilder::with_capacity(records.len());
        let mut produced = Vec::new();
        for record in records {
            parse_into(parser, record, &mut produced, &mut output);
        }
        output.finish()
    })
}

/// Parses a batch of records as it crossed the boundary, validated
/// ([`RawBatch::validate`]): each record is copied into one reused [`RawRecord`], so the
/// batch costs no allocation per record once the largest payload fitted.
pub fn run_parse_batch<P: Parser>(parser: &mut P, records: &RawBatch) -> BatchOutput {
    host::in_batch(|| {
        let mut output = OutputBuilder::with_capacity(records.len());
        let mut produced = Vec::new();
        let mut record = RawRecord::new("", Vec::new());
        for i in 0..records.len() {
            refill(&mut record, records.record(i));
            parse_into(parser, &record, &mut produced, &mut output);
        }
        output.finish()
    })
}

/// Runs the parser on one record and adds what it produced, or its error, to `output`.
fn parse_into<P: Parser>(parser: &mut P, record: &RawRecord, produced: &mut Vec<Event>, output: &mut OutputBuilder) {
    produced.clear();
    match parser.parse(record, produced) {
        Ok(()) => output.produced(produced),
        Err(message) => output.failed(message),
    }
}

/// Makes `record` a copy of `from`, in the buffers it already has.
fn refill(record: &mut RawRecord, from: RawRecordRef<'_>) {
    record.data.clear();
    record.data.extend_from_slice(from.data);
    match (from.key, &mut record.key) {
        (Some(key), Some(kept)) => {
            kept.clear();
            kept.push_str(key);
        }
        (key, kept) => *kept = key.map(str::to_owned),
    }
    if record.content_type != from.content_type {
        record.content_type.clear();
        record.content_type.push_str(from.content_type);
    }
    record.arrival_time = from.arrival_time;
}

/// Enriches a batch of events. When the host sent a batch whose lists disagree, every
/// event fails with the reason.
///
/// Events are decoded one at a time, and the strings and field list of each enriched
/// event are reused for the next one once it is encoded: an enricher that returns the
/// event it was given costs no allocation per input field.
pub fn run_enrich<E: Enricher>(enricher: &mut E, events: &Columns) -> BatchOutput {
    host::in_batch(|| {
        let mut decoder = match events.decoder() {
            Ok(decoder) => decoder,
            Err(err) => return BatchOutput::all_failed(events.len(), &err.to_string()),
        };
        let mut output = OutputBuilder::for_inputs_like(events);
        while let Some(event) = decoder.next_event() {
            let event = match event {
                Ok(event) => event,
                // Text that is not UTF-8: a malformed batch (the host checks every batch
                // it sends), failed as a whole like one whose lists disagree.
                Err(err) => return BatchOutput::all_failed(events.len(), &err.to_string()),
            };
            match enricher.enrich(event) {
                Ok(Some(enriched)) => {
                    output.produced(std::slice::from_ref(&enriched));
                    decoder.recycle(enriched);
                }
                Ok(None) => output.produced(&[]),
                Err(message) => output.failed(message),
            }
        }
        output.finish()
    })
}

/// The state of an empty group: `A::State::default()` as JSON.
///
/// # Panics
/// When the state cannot be encoded as JSON, a bug in the plugin (see [`Aggregator`]).
pub fn run_init<A: Aggregator>() -> Vec<u8> {
    encode_state(&A::State::default())
}

/// Folds events into states: event `i` goes into `states[groups[i]]`. States that receive
/// no event are returned as they came, without being decoded.
pub fn run_accumulate<A: Aggregator>(
    aggregator: &mut A,
    states: Vec<Vec<u8>>,
    events: &Columns,
    groups: &[u32],
) -> AccumulateOutput {
    host::in_batch(|| {
        let all_failed = |states, message: &str| AccumulateOutput {
            states,
            errors: RecordError::for_each_input(events.len(), message),
        };
        let mut decoder = match events.decoder() {
            Ok(decoder) => decoder,
            Err(err) => return all_failed(states, &err.to_string()),
        };
        if groups.len() != events.len() {
            let message = format!("the host sent {} group numbers for {} events", groups.len(), events.len());
            return all_failed(states, &message);
        }
        let mut open: Vec<Option<Result<A::State, String>>> = states.iter().map(|_| None).collect();
        let mut errors = Vec::new();
        for (index, &group) in groups.iter().enumerate() {
            let event = match decoder.next_event() {
                Some(Ok(event)) => event,
                Some(Err(err)) => return all_failed(states, &err.to_string()),
                None => break,
            };
            let Some(slot) = open.get_mut(group as usize) else {
                let message =
                    format!("event {index} belongs to group {group}, but only {} states were sent", states.len());
                errors.push(RecordError::new(index, message));
                decoder.recycle(event);
                continue;
            };
            let outcome = match slot.get_or_insert_with(|| decode_state(&states[group as usize])) {
                Ok(state) => aggregator.accumulate(state, &event),
                Err(message) => Err(message.clone()),
            };
            if let Err(message) = outcome {
                errors.push(RecordError::new(index, message));
            }
            // The aggregator only borrowed it: the next event is decoded into its buffers.
            decoder.recycle(event);
        }
        let states = states
            .into_iter()
            .zip(open)
            .map(|(bytes, slot)| match slot {
                Some(Ok(state)) => encode_state(&state),
                None | Some(Err(_)) => bytes,
            })
            .collect();
        AccumulateOutput { states, errors }
    })
}

/// Merges pairs of partial states of the same group, the second into the first.
pub fn run_merge<A: Aggregator>(aggregator: &mut A, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Result<Vec<u8>, String>> {
    host::in_batch(|| {
        pairs
            .into_iter()
            .map(|(into, other)| {
                let mut into = decode_state::<A::State>(&into).map_err(|e| format!("first state: {e}"))?;
                let other = decode_state(&other).map_err(|e| format!("second state: {e}"))?;
                aggregator.merge(&mut into, other);
                Ok(encode_state(&into))
            })
            .collect()
    })
}

/// Turns the state of each finished group into its events.
pub fn run_finish<A: Aggregator>(aggregator: &mut A, groups: Vec<FinishedGroup>) -> BatchOutput {
    host::in_batch(|| {
        let mut output = OutputBuilder::with_capacity(groups.len());
        for group in groups {
            match decode_state(&group.state) {
                Ok(state) => output.produced(&aggregator.finish(state, group.window, &group.key)),
                Err(message) => output.failed(message),
            }
        }
        output.finish()
    })
}

fn decode_state<S: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<S, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        format!("aggregator state {shown:?} does not decode: {e}")
    })
}

/// Encodes a state as JSON. Failing here is a bug in the plugin (a map with non-string
/// keys), not something an input can cause, so it traps like any other plugin panic.
fn encode_state<S: serde::Serialize>(state: &S) -> Vec<u8> {
    serde_json::to_vec(state).unwrap_or_else(|e| panic!("the aggregator state cannot be encoded as JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{Value, Window};

    /// Splits comma-separated numbers into one event each; refuses anything else.
    struct Numbers;

    impl Parser for Numbers {
        fn configure(_config: &Config) -> Result<Self, String> {
            Ok(Self)
        }

        fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String> {
            for part in record.text()?.split(',').filter(|p| !p.is_empty()) {
                let n: i64 = part.parse().map_err(|_| format!("{part:?} is not a number"))?;
                out.push(Event::new(record.arrival_time).with("n", n));
            }
            Ok(())
        }
    }

    #[test]
    fn parse_counts_events_per_record_and_reports_failures_by_position() {
        let records = ["1,2", "", "3,x", "4"].map(|text| RawRecord::new("text/plain", text));
        let output = run_parse(&mut Numbers, &records);
        assert_eq!(output.counts, [2, 0, 0, 1]);
        assert_eq!(output.errors, [RecordError { index: 2, message: "\"x\" is not a number".into() }]);
        let numbers: Vec<_> = output.decode_events().iter().map(|e| e.get_int("n").unwrap()).collect();
        assert_eq!(numbers, [1, 2, 4], "the event parsed before the failure is discarded");
    }

    /// Records the parser saw, as it saw them.
    struct Seen(Vec<RawRecord>);

    impl Parser for Seen {
        fn configure(_config: &Config) -> Result<Self, String> {
            Ok(Self(Vec::new()))
        }

        fn parse(&mut self, record: &RawRecord, _out: &mut Vec<Event>) -> Result<(), String> {
            self.0.push(record.clone());
            Ok(())
        }
    }

    #[test]
    fn a_raw_batch_is_parsed_like_the_records_it_was_built_from() {
        let records = [
            RawRecord { key: Some("k1".into()), arrival_time: 5, ..RawRecord::new("text/plain", "a longer payload") },
            RawRecord { key: None, arrival_time: 6, ..RawRecord::new("text/csv", "b") },
            RawRecord { key: Some("k3".into()), arrival_time: 7, ..RawRecord::new("text/csv", "") },
            RawRecord { key: Some("key four".into()), arrival_time: 8, ..RawRecord::new("text/plain", "1,2") },
        ];
        let mut batch = weir_events::RawBatchBuilder::default();
        for r in &records {
            batch.push(&r.data, r.key.as_deref(), &r.content_type, r.arrival_time).unwrap();
        }
        let batch = batch.finish();
        let mut seen = Seen(Vec::new());
        run_parse_batch(&mut seen, &batch);
        assert_eq!(seen.0, records, "each record as pushed, though one RawRecord is reused");
        let numbers = ["1,2", "", "3,x", "4"].map(|text| RawRecord::new("text/plain", text));
        let mut batch = weir_events::RawBatchBuilder::default();
        for r in &numbers {
            batch.push(&r.data, None, &r.content_type, r.arrival_time).unwrap();
        }
        assert_eq!(run_parse_batch(&mut Numbers, &batch.finish()), run_parse(&mut Numbers, &numbers));
    }

    /// Drops odd numbers, doubles even ones, fails on missing numbers.
    struct DoubleEvens;

    impl Enricher for DoubleEvens {
        fn configure(_config: &Config) -> Result<Self, String> {
            Ok(Self)
        }

        fn enrich(&mut self, mut event: Event) -> Result<Option<Event>, String> {
            let n = event.get_int("n").ok_or("no n")?;
            if n % 2 != 0 {
                return Ok(None);
            }
            event.set("n", n * 2);
            Ok(Some(event))
        }
    }

    #[test]
    fn enrich_keeps_drops_and_fails_event_by_event() {
        let events = [
            Event::new(0).with("n", 2i64),
            Event::new(0).with("n", 3i64),
            Event::new(0),
            Event::new(0).with("n", 4i64),
        ];
        let output = run_enrich(&mut DoubleEvens, &Columns::encode(&events));
        assert_eq!(output.counts, [1, 0, 0, 1]);
        assert_eq!(output.errors, [RecordError { index: 2, message: "no n".into() }]);
        assert_eq!(output.decode_events(), [Event::new(0).with("n", 4i64), Event::new(0).with("n", 8i64)]);
    }

    #[test]
    fn a_malformed_input_batch_fails_every_event() {
        let mut columns = Columns::encode(&[Event::new(0).with("n", 2i64), Event::new(1)]);
        columns.kinds.clear();
        let output = run_enrich(&mut DoubleEvens, &columns);
        assert_eq!(output.counts, [0, 0]);
        assert_eq!(output.errors.len(), 2);
        assert!(output.errors[1].message.starts_with("malformed event batch"), "{:?}", output.errors);
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Sum {
        events: u64,
        total: i64,
    }

    struct Summer;

    impl Aggregator for Summer {
        type State = Sum;

        fn configure(_config: &Config) -> Result<Self, String> {
            Ok(Self)
        }

        fn accumulate(&mut self, state: &mut Sum, event: &Event) -> Result<(), String> {
            let n = event.get_int("n").ok_or("no n")?;
            state.events += 1;
            state.total += n;
            Ok(())
        }

        fn merge(&mut self, into: &mut Sum, other: Sum) {
            into.events += other.events;
            into.total += other.total;
        }

        fn finish(&mut self, state: Sum, window: Window, key: &str) -> Vec<Event> {
            vec![Event::new(window.start).with_key(key).with("total", state.total)]
        }
    }

    fn state(events: u64, total: i64) -> Vec<u8> {
        serde_json::to_vec(&Sum { events, total }).unwrap()
    }

    #[test]
    fn accumulate_folds_each_event_into_its_group_and_leaves_other_states_untouched() {
        let init = run_init::<Summer>();
        assert_eq!(init, br#"{"events":0,"total":0}"#);
        let untouched = b"kept as sent".to_vec();
        let events = [
            Event::new(0).with("n", 2i64),
            Event::new(0),
            Event::new(0).with("n", 5i64),
            Event::new(0).with("n", 1i64),
        ];
        let output = run_accumulate(
            &mut Summer,
            vec![init.clone(), untouched.clone(), state(1, 10)],
            &Columns::encode(&events),
            &[0, 0, 2, 7],
        );
        assert_eq!(output.states, [state(1, 2), untouched, state(2, 15)]);
        assert_eq!(output.errors[0], RecordError { index: 1, message: "no n".into() });
        assert_eq!(output.errors[1].index, 3);
        assert!(output.errors[1].message.contains("group 7"), "{:?}", output.errors[1]);
    }

    #[test]
    fn an_undecodable_state_fails_the_events_of_its_group_only() {
        let events = [Event::new(0).with("n", 1i64), Event::new(0).with("n", 2i64)];
        let output =
            run_accumulate(&mut Summer, vec![b"{}x".to_vec(), state(0, 0)], &Columns::encode(&events), &[0, 1]);
        assert_eq!(output.states, [b"{}x".to_vec(), state(1, 2)]);
        assert_eq!(output.errors.len(), 1);
        assert!(
            output.errors[0].message.starts_with("aggregator state \"{}x\" does not decode"),
            "{:?}",
            output.errors
        );
    }

    #[test]
    fn accumulate_refuses_a_group_list_of_the_wrong_length() {
        let events = Columns::encode(&[Event::new(0).with("n", 1i64)]);
        let output = run_accumulate(&mut Summer, vec![state(0, 0)], &events, &[]);
        assert_eq!(output.states, [state(0, 0)]);
        assert_eq!(output.errors[0].message, "the host sent 0 group numbers for 1 events");
    }

    #[test]
    fn merge_and_finish_work_per_pair_and_per_group() {
        let merged = run_merge(&mut Summer, vec![(state(1, 2), state(2, 3)), (state(0, 0), b"nope".to_vec())]);
        assert_eq!(merged[0], Ok(state(3, 5)));
        assert!(merged[1].as_ref().unwrap_err().starts_with("second state: "), "{merged:?}");

        let window = Window { start: 60, end: 120 };
        let groups = vec![
            FinishedGroup { state: state(3, 5), window, key: "a".into() },
            FinishedGroup { state: b"".to_vec(), window, key: "b".into() },
        ];
        let output = run_finish(&mut Summer, groups);
        assert_eq!(output.counts, [1, 0]);
        assert_eq!(output.errors[0].index, 1);
        assert_eq!(output.decode_events(), [Event::new(60).with_key("a").with("total", Value::Int(5))]);
    }

    #[test]
    fn configure_sees_the_pairs_as_a_config() {
        let pairs = vec![("n".to_owned(), "7".to_owned())];
        assert_eq!(run_configure(pairs, |config| config.parse::<u8>("n")), Ok(Some(7)));
    }
}
