//! Host bindings for the three plugin worlds, generated from `wit/`, and the moves
//! between generated records and the crate's own types (vectors are moved, not copied).

pub(crate) mod parser {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "parser",
        // `lookup` may fail: a reference table in a production store can be unreachable.
        imports: { "weir:plugin/host.lookup": async | trappable, default: async },
        exports: { default: async },
    });
}

pub(crate) mod enricher {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "enricher",
        imports: { default: async },
        exports: { default: async },
        with: {
            "weir:plugin/types": super::parser::weir::plugin::types,
            "weir:plugin/host": super::parser::weir::plugin::host,
        },
    });
}

pub(crate) mod aggregator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "aggregator",
        imports: { default: async },
        exports: { default: async },
        with: {
            "weir:plugin/types": super::parser::weir::plugin::types,
            "weir:plugin/host": super::parser::weir::plugin::host,
        },
    });
}

pub(crate) use parser::weir::plugin::{host, types};

use crate::batch::{AccumulateOutput, BatchOutput, FinishedGroup, RecordError};

weir_events::event_batch_conversions!(types::EventBatch);

weir_events::raw_batch_conversions!(types::RawBatch);

impl From<types::RecordError> for RecordError {
    fn from(e: types::RecordError) -> Self {
        // Cut as soon as it crosses the boundary: the reason is kept (dead letters, logs)
        // long after the call.
        Self { index: e.index, message: crate::batch::bounded_message(e.message) }
    }
}

impl TryFrom<types::BatchOutput> for BatchOutput {
    type Error = weir_events::BatchError;
    fn try_from(o: types::BatchOutput) -> Result<Self, Self::Error> {
        Ok(Self {
            events: o.events.try_into()?,
            counts: o.counts,
            errors: o.errors.into_iter().map(Into::into).collect(),
        })
    }
}

impl From<types::AccumulateOutput> for AccumulateOutput {
    fn from(o: types::AccumulateOutput) -> Self {
        Self { states: o.states, errors: o.errors.into_iter().map(Into::into).collect() }
    }
}

impl From<FinishedGroup> for types::FinishedGroup {
    fn from(g: FinishedGroup) -> Self {
        Self { state: g.state, window: types::Window { start: g.window.start, end: g.window.end }, key: g.key }
    }
}
