//! The `export_*!` macros, and the glue they expand to: the generated WIT records are
//! converted to and from the SDK's types by moving their vectors, then a batch driver
//! runs.

use std::cell::{RefCell, RefMut};

use weir_events::{Columns, RawBatch};

use crate::bindings::parser::weir::plugin::types as wit;
use crate::drivers::{self, AccumulateOutput, BatchOutput, RecordError};
use crate::plugin::{Aggregator, Enricher, FinishedGroup, Parser, Window};

/// Exports a type implementing [`Parser`](crate::Parser) as the component's
/// `weir:plugin/parse` interface. Expands to nothing on native targets, so the plugin
/// crate still builds and tests natively.
///
/// ```
/// # use weir_sdk::{Config, Event, Parser, RawRecord};
/// # struct MyParser;
/// # impl Parser for MyParser {
/// #     fn configure(_: &Config) -> Result<Self, String> { Ok(Self) }
/// #     fn parse(&mut self, _: &RawRecord, _: &mut Vec<Event>) -> Result<(), String> { Ok(()) }
/// # }
/// weir_sdk::export_parser!(MyParser);
/// ```
#[macro_export]
macro_rules! export_parser {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::parser::exports::weir::plugin::parse as wit;

            ::std::thread_local! {
                static PLUGIN: $crate::__private::Slot<$plugin> = const { $crate::__private::Slot::new() };
            }

            struct WeirParser;

            impl wit::Guest for WeirParser {
                fn configure(config: wit::Config) -> ::core::result::Result<(), ::std::string::String> {
                    PLUGIN.with(|slot| slot.configure(config, <$plugin as $crate::Parser>::configure))
                }

                fn parse(records: wit::RawBatch) -> wit::BatchOutput {
                    PLUGIN.with(|slot| $crate::__private::parse(slot, records))
                }
            }

    $crate::bindings::parser::export!(WeirParser with_types_in $crate::bindings::parser);
        };
    };
}

/// Exports a type implementing [`Enricher`](crate::Enricher) as the component's
/// `weir:plugin/enrich` interface. Expands to nothing on native targets.
///
/// ```
/// # use weir_sdk::{Config, Enricher, Event};
/// # struct MyEnricher;
/// # impl Enricher for MyEnricher {
/// #     fn configure(_: &Config) -> Result<Self, String> { Ok(Self) }
/// #     fn enrich(&mut self, event: Event) -> Result<Option<Event>, String> { Ok(Some(event)) }
/// # }
/// weir_sdk::export_enricher!(MyEnricher);
/// ```
#[macro_export]
macro_rules! export_enricher {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::enricher::exports::weir::plugin::enrich as wit;

            ::std::thread_local! {
                static PLUGIN: $crate::__private::Slot<$plugin> = const { $crate::__private::Slot::new() };
            }

            struct WeirEnricher;

            impl wit::Guest for WeirEnricher {
                fn configure(config: wit::Config) -> ::core::result::Result<(), ::std::string::String> {
                    PLUGIN.with(|slot| slot.configure(config, <$plugin as $crate::Enricher>::configure))
                }

                fn enrich(events: wit::EventBatch) -> wit::BatchOutput {
                    PLUGIN.with(|slot| $crate::__private::enrich(slot, events))
                }
            }

    $crate::bindings::enricher::export!(WeirEnricher with_types_in $crate::bindings::enricher);
        };
    };
}

/// Exports a type implementing [`Aggregator`](crate::Aggregator) as the component's
/// `weir:plugin/aggregate` interface. Expands to nothing on native targets.
///
/// ```
/// # use weir_sdk::{Aggregator, Config, Event, Window};
/// # struct MyAggregator;
/// # impl Aggregator for MyAggregator {
/// #     type State = u64;
/// #     fn configure(_: &Config) -> Result<Self, String> { Ok(Self) }
/// #     fn accumulate(&mut self, state: &mut u64, _: &Event) -> Result<(), String> { *state += 1; Ok(()) }
/// #     fn merge(&mut self, into: &mut u64, other: u64) { *into += other }
/// #     fn finish(&mut self, _: u64, _: Window, _: &str) -> Vec<Event> { Vec::new() }
/// # }
/// weir_sdk::export_aggregator!(MyAggregator);
/// ```
#[macro_export]
macro_rules! export_aggregator {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::aggregator::exports::weir::plugin::aggregate as wit;

            ::std::thread_local! {
                static PLUGIN: $crate::__private::Slot<$plugin> = const { $crate::__private::Slot::new() };
            }

            struct WeirAggregator;

            impl wit::Guest for WeirAggregator {
                fn configure(config: wit::Config) -> ::core::result::Result<(), ::std::string::String> {
                    PLUGIN.with(|slot| slot.configure(config, <$plugin as $crate::Aggregator>::configure))
                }

                fn init() -> ::std::vec::Vec<u8> {
                    $crate::run_init::<$plugin>()
                }

                fn accumulate(
                    states: ::std::vec::Vec<::std::vec::Vec<u8>>,
                    events: wit::EventBatch,
                    groups: ::std::vec::Vec<u32>,
                ) -> wit::AccumulateOutput {
                    PLUGIN.with(|slot| $crate::__private::accumulate(slot, states, events, groups))
                }

                fn merge(
                    pairs: ::std::vec::Vec<(::std::vec::Vec<u8>, ::std::vec::Vec<u8>)>,
                ) -> ::std::vec::Vec<::core::result::Result<::std::vec::Vec<u8>, ::std::string::String>> {
                    PLUGIN.with(|slot| $crate::__private::merge(slot, pairs))
                }

                fn finish(groups: ::std::vec::Vec<wit::FinishedGroup>) -> wit::BatchOutput {
                    PLUGIN.with(|slot| $crate::__private::finish(slot, groups))
                }
            }

    $crate::bindings::aggregator::export!(WeirAggregator with_types_in $crate::bindings::aggregator);
        };
    };
}

const NOT_CONFIGURED: &str = "plugin not configured: the host sent a batch before a successful configure";

/// Holds the plugin instance of a component between calls.
#[derive(Debug)]
pub struct Slot<P>(RefCell<Option<P>>);

impl<P> Slot<P> {
    #[allow(clippy::new_without_default, reason = "used in a `const` thread-local initializer")]
    pub const fn new() -> Self {
        Self(RefCell::new(None))
    }

    /// Builds the instance; a rejected configuration leaves the slot empty, so batches
    /// fail as "not configured" instead of running an instance configured differently.
    pub fn configure(
        &self,
        pairs: wit::Config,
        configure: impl FnOnce(&crate::Config) -> Result<P, String>,
    ) -> Result<(), String> {
        self.0.replace(None);
        let plugin = drivers::run_configure(pairs, configure)?;
        self.0.replace(Some(plugin));
        Ok(())
    }

    fn plugin(&self) -> RefMut<'_, Option<P>> {
        self.0.borrow_mut()
    }
}

pub fn parse<P: Parser>(slot: &Slot<P>, records: wit::RawBatch) -> wit::BatchOutput {
    // How many inputs there were, should the batch be malformed (never, with a correct
    // host): counted in `data-ends`, rounded down.
    let inputs = records.data_ends.len() / 4;
    let records = match RawBatch::try_from(records).and_then(|batch| batch.validate().map(|()| batch)) {
        Ok(records) => records,
        Err(err) => return batch_output_to_wit(BatchOutput::all_failed(inputs, &err.to_string())),
    };
    let output = match slot.plugin().as_mut() {
        Some(parser) => drivers::run_parse_batch(parser, &records),
        None => BatchOutput::all_failed(records.len(), NOT_CONFIGURED),
    };
    batch_output_to_wit(output)
}

pub fn enrich<E: Enricher>(slot: &Slot<E>, events: wit::EventBatch) -> wit::BatchOutput {
    let events = match unpacked(events) {
        Ok(events) => events,
        Err((inputs, err)) => return batch_output_to_wit(BatchOutput::all_failed(inputs, &err.to_string())),
    };
    let output = match slot.plugin().as_mut() {
        Some(enricher) => drivers::run_enrich(enricher, &events),
        None => BatchOutput::all_failed(events.len(), NOT_CONFIGURED),
    };
    batch_output_to_wit(output)
}

pub fn accumulate<A: Aggregator>(
    slot: &Slot<A>,
    states: Vec<Vec<u8>>,
    events: wit::EventBatch,
    groups: Vec<u32>,
) -> wit::AccumulateOutput {
    let events = match unpacked(events) {
        Ok(events) => events,
        Err((inputs, err)) => {
            let errors = RecordError::for_each_input(inputs, &err.to_string());
            return wit::AccumulateOutput { states, errors: errors.into_iter().map(record_error_to_wit).collect() };
        }
    };
    let output = match slot.plugin().as_mut() {
        Some(aggregator) => drivers::run_accumulate(aggregator, states, &events, &groups),
        None => AccumulateOutput { states, errors: RecordError::for_each_input(events.len(), NOT_CONFIGURED) },
    };
    wit::AccumulateOutput {
        states: output.states,
        errors: output.errors.into_iter().map(record_error_to_wit).collect(),
    }
}

pub fn merge<A: Aggregator>(slot: &Slot<A>, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Result<Vec<u8>, String>> {
    match slot.plugin().as_mut() {
        Some(aggregator) => drivers::run_merge(aggregator, pairs),
        None => vec![Err(NOT_CONFIGURED.to_owned()); pairs.len()],
    }
}

pub fn finish<A: Aggregator>(slot: &Slot<A>, groups: Vec<wit::FinishedGroup>) -> wit::BatchOutput {
    let groups: Vec<FinishedGroup> = groups
        .into_iter()
        .map(|g| FinishedGroup {
            state: g.state,
            window: Window { start: g.window.start, end: g.window.end },
            key: g.key,
        })
        .collect();
    let output = match slot.plugin().as_mut() {
        Some(aggregator) => drivers::run_finish(aggregator, groups),
        None => BatchOutput::all_failed(groups.len(), NOT_CONFIGURED),
    };
    batch_output_to_wit(output)
}

weir_events::raw_batch_conversions!(wit::RawBatch);
weir_events::event_batch_conversions!(wit::EventBatch);

/// The host's batch unpacked; when a number column is cut inside an element (never, with a
/// correct host), every input fails with the reason: how many inputs there were is
/// counted in `times`, rounded down.
fn unpacked(events: wit::EventBatch) -> Result<Columns, (usize, weir_events::BatchError)> {
    let inputs = events.times.len() / 8;
    Columns::try_from(events).map_err(|err| (inputs, err))
}

fn record_error_to_wit(error: RecordError) -> wit::RecordError {
    wit::RecordError { index: error.index, message: error.message }
}

fn batch_output_to_wit(output: BatchOutput) -> wit::BatchOutput {
    wit::BatchOutput {
        events: output.events.into(),
        counts: output.counts,
        errors: output.errors.into_iter().map(record_error_to_wit).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Event, RawRecord};

    /// One event per record, keyed by the record's key; refuses a `limit` of zero.
    struct Echo;

    impl Parser for Echo {
        fn configure(config: &Config) -> Result<Self, String> {
            match config.get("limit") {
                Some("0") => Err("limit must be positive".into()),
                _ => Ok(Self),
            }
        }

        fn parse(&mut self, record: &RawRecord, out: &mut Vec<Event>) -> Result<(), String> {
            let text = record.text()?;
            out.push(
                Event { key: record.key.clone(), time: record.arrival_time, ..Event::default() }.with("text", text),
            );
            Ok(())
        }
    }

    fn wit_records(texts: &[&str]) -> wit::RawBatch {
        let mut batch = weir_events::RawBatchBuilder::default();
        for text in texts {
            batch.push(text.as_bytes(), Some("k"), "text/plain", 7).unwrap();
        }
        batch.finish().into()
    }

    fn pairs(limit: &str) -> wit::Config {
        vec![("limit".to_owned(), limit.to_owned())]
    }

    #[test]
    fn batches_before_configure_fail_every_record() {
        let slot = Slot::<Echo>::new();
        let output = parse(&slot, wit_records(&["a", "b"]));
        assert_eq!(output.counts, [0, 0]);
        assert_eq!(output.errors.len(), 2);
        assert_eq!(output.errors[1].index, 1);
        assert_eq!(output.errors[1].message, NOT_CONFIGURED);
    }

    #[test]
    fn a_rejected_configuration_empties_the_slot() {
        let slot = Slot::<Echo>::new();
        assert_eq!(slot.configure(pairs("5"), Echo::configure), Ok(()));
        assert_eq!(parse(&slot, wit_records(&["a"])).counts, [1]);
        assert_eq!(slot.configure(pairs("0"), Echo::configure), Err("limit must be positive".into()));
        assert_eq!(parse(&slot, wit_records(&["a"])).errors[0].message, NOT_CONFIGURED);
    }

    #[test]
    fn records_and_events_cross_the_generated_types_intact() {
        let slot = Slot::<Echo>::new();
        slot.configure(Vec::new(), Echo::configure).unwrap();
        let output = parse(&slot, wit_records(&["hello", "world"]));
        let events = Columns::try_from(output.events).unwrap().decode().unwrap();
        let expected = Event::new(7).with_key("k").with("text", "hello");
        assert_eq!(events[0], expected);
        assert_eq!(Columns::try_from(wit::EventBatch::from(Columns::encode(&events))), Ok(Columns::encode(&events)));
    }

    #[test]
    fn a_malformed_raw_batch_fails_every_record_with_the_reason() {
        let slot = Slot::<Echo>::new();
        slot.configure(Vec::new(), Echo::configure).unwrap();
        let mut records = wit_records(&["a", "b"]);
        records.arrival_times.truncate(8);
        let output = parse(&slot, records);
        assert_eq!(output.counts, [0, 0]);
        assert_eq!(output.errors[1].message, "malformed raw-record batch: arrival-times has 1 elements for 2 records");
    }
}
