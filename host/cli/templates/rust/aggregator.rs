//! {{name}}: a weir aggregator. Per key and window: how many events, and the sum of
//! their `total` (events without a numeric `total` are errors).

use serde::{Deserialize, Serialize};
use weir_sdk::{Aggregator, Config, Event, Value, Window};

#[derive(Default, Serialize, Deserialize)]
pub struct Totals {
    count: u64,
    total_cents: i64,
}

pub struct Plugin;

impl Aggregator for Plugin {
    type State = Totals;

    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&[])?;
        Ok(Plugin)
    }

    fn accumulate(&mut self, state: &mut Totals, event: &Event) -> Result<(), String> {
        let total = event.get_f64("total").ok_or("the event has no numeric total")?;
        state.count += 1;
        state.total_cents += (total * 100.0).round() as i64;
        Ok(())
    }

    fn merge(&mut self, into: &mut Totals, other: Totals) {
        into.count += other.count;
        into.total_cents += other.total_cents;
    }

    fn finish(&mut self, state: Totals, window: Window, key: &str) -> Vec<Event> {
        let mut event = Event::new(window.start);
        event.key = Some(key.to_owned());
        event.set("window_start", Value::Timestamp(window.start));
        event.set("count", Value::Int(state.count as i64));
        event.set("total", Value::Float(state.total_cents as f64 / 100.0));
        vec![event]
    }
}

weir_sdk::export_aggregator!(Plugin);
