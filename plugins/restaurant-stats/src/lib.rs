//! Per-restaurant order statistics over event-time windows.
//!
//! The host groups order events by key (the restaurant id) and window; for each group this
//! aggregator counts orders, sums revenue and delivery times, and reports one event when
//! the window closes.
//!
//! Every sum is an integer (cents, microseconds), so merging partial states gives exactly
//! the state of a single pass, whatever way the host splits the events.

use serde::{Deserialize, Serialize};
use weir_sdk::{Aggregator, Config, Event, Name, Value, Window};

/// The aggregate of one restaurant in one window. Crosses the boundary as JSON, e.g.
/// `{"orders":3,"revenue_cents":4225,"delivered":2,"delivery_micros":3330000000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestaurantTotals {
    /// Orders placed, whatever their status.
    pub orders: u64,
    /// Sum of the totals of orders not cancelled, in cents.
    pub revenue_cents: i64,
    /// Orders with a delivery time.
    pub delivered: u64,
    /// Sum of the delivery times (`delivered_at - placed_at`) of delivered orders.
    pub delivery_micros: i64,
}

/// The restaurant statistics aggregator. Takes no configuration.
#[derive(Debug, Clone)]
pub struct RestaurantStats {
    /// The names of the output fields, shared by every event produced.
    names: [Name; 6],
}

/// The fields of a statistics event, in order.
pub const FIELDS: [&str; 6] =
    ["restaurant_id", "window_start", "window_end", "orders", "revenue", "mean_delivery_minutes"];

const MICROS_PER_MINUTE: f64 = 60e6;

impl Default for RestaurantStats {
    fn default() -> Self {
        Self { names: FIELDS.map(Name::from) }
    }
}

impl Aggregator for RestaurantStats {
    type State = RestaurantTotals;

    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&[])?;
        Ok(Self::default())
    }

    fn accumulate(&mut self, state: &mut RestaurantTotals, event: &Event) -> Result<(), String> {
        let total = event.get_f64("total").ok_or("order has no numeric total")?;
        let cents = (total * 100.0).round();
        if !cents.is_finite() || cents.abs() > 1e15 {
            return Err(format!("order total {total} is out of range"));
        }
        let delivery_micros = match (event.get_timestamp("placed_at"), event.get_timestamp("delivered_at")) {
            (Some(placed_at), Some(delivered_at)) if delivered_at < placed_at => {
                return Err("order delivered before it was placed".into());
            }
            (Some(placed_at), Some(delivered_at)) => Some(delivered_at - placed_at),
            _ => None,
        };
        state.orders += 1;
        if event.get_str("status") != Some("cancelled") {
            state.revenue_cents += cents as i64;
        }
        if let Some(micros) = delivery_micros {
            state.delivered += 1;
            state.delivery_micros += micros;
        }
        Ok(())
    }

    fn merge(&mut self, into: &mut RestaurantTotals, other: RestaurantTotals) {
        into.orders += other.orders;
        into.revenue_cents += other.revenue_cents;
        into.delivered += other.delivered;
        into.delivery_micros += other.delivery_micros;
    }

    fn finish(&mut self, state: RestaurantTotals, window: Window, key: &str) -> Vec<Event> {
        let mean_delivery_minutes = match state.delivered {
            0 => Value::Null,
            delivered => Value::Float(state.delivery_micros as f64 / delivered as f64 / MICROS_PER_MINUTE),
        };
        let values = [
            Value::from(key),
            Value::Timestamp(window.start),
            Value::Timestamp(window.end),
            Value::Int(state.orders as i64),
            Value::Float(state.revenue_cents as f64 / 100.0),
            mean_delivery_minutes,
        ];
        let fields = self.names.iter().cloned().zip(values).collect();
        vec![Event { key: Some(key.to_owned()), time: window.start, fields }]
    }
}

weir_sdk::export_aggregator!(RestaurantStats);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use weir_sdk::testing::{assert_events_file, read_events};
    use weir_sdk::{Columns, FinishedGroup, run_accumulate, run_finish, run_init, run_merge};

    use super::*;

    const HOUR_MICROS: i64 = 3_600_000_000;

    fn fixture_events() -> Vec<Event> {
        read_events(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/input.ndjson"))
    }

    /// One pass over `events` into a single state, through the batch driver.
    fn accumulate_all(events: &[Event]) -> Vec<u8> {
        let output = run_accumulate(
            &mut RestaurantStats::default(),
            vec![run_init::<RestaurantStats>()],
            &Columns::encode(events),
            &vec![0; events.len()],
        );
        assert_eq!(output.errors, []);
        output.states.into_iter().next().unwrap()
    }

    #[test]
    fn merging_partial_states_equals_one_pass_at_every_split() {
        let events = fixture_events();
        let whole = accumulate_all(&events);
        for split in 0..=events.len() {
            let (a, b) = events.split_at(split);
            let merged = run_merge(&mut RestaurantStats::default(), vec![(accumulate_all(a), accumulate_all(b))]);
            assert_eq!(merged, [Ok(whole.clone())], "split at {split}");
        }
    }

    #[test]
    fn revenue_skips_cancelled_orders_and_the_mean_skips_undelivered_ones() {
        let placed_at = 1_000 * HOUR_MICROS;
        let order = |status: &str, total: f64, delivery_minutes: Option<i64>| {
            let delivered_at = delivery_minutes.map(|m| Value::Timestamp(placed_at + m * 60_000_000));
            Event::new(placed_at)
                .with("status", status)
                .with("total", total)
                .with("placed_at", Value::Timestamp(placed_at))
                .with("delivered_at", Value::from(delivered_at))
        };
        let stats = &mut RestaurantStats::default();
        let mut state = RestaurantTotals::default();
        for event in
            [order("delivered", 10.10, Some(30)), order("cancelled", 99.0, None), order("delivered", 0.2, Some(45))]
        {
            stats.accumulate(&mut state, &event).unwrap();
        }
        assert_eq!(
            state,
            RestaurantTotals { orders: 3, revenue_cents: 1030, delivered: 2, delivery_micros: 75 * 60_000_000 }
        );
        let window = Window { start: placed_at, end: placed_at + HOUR_MICROS };
        let report = stats.finish(state, window, "r-1").remove(0);
        assert_eq!(report.get("revenue"), Some(&Value::Float(10.3)));
        assert_eq!(report.get("mean_delivery_minutes"), Some(&Value::Float(37.5)));
        let empty = stats.finish(RestaurantTotals::default(), window, "r-1").remove(0);
        assert_eq!(empty.get("mean_delivery_minutes"), Some(&Value::Null));
    }

    #[test]
    fn orders_without_a_total_are_refused_and_leave_the_state_alone() {
        let stats = &mut RestaurantStats::default();
        let mut state = RestaurantTotals::default();
        assert_eq!(
            stats.accumulate(&mut state, &Event::new(0).with("total", "12")),
            Err("order has no numeric total".into())
        );
        assert_eq!(state, RestaurantTotals::default());
    }

    /// What the harness does with `--window 1h`: groups the fixture by event key and
    /// one-hour tumbling window, accumulates, and finishes every group, ordered by window
    /// then key.
    #[test]
    fn the_fixture_gives_the_expected_events() {
        let events = fixture_events();
        let mut groups: BTreeMap<(i64, String), u32> = BTreeMap::new();
        for event in &events {
            let start = event.time.div_euclid(HOUR_MICROS) * HOUR_MICROS;
            let next = groups.len() as u32;
            groups.entry((start, event.key.clone().unwrap_or_default())).or_insert(next);
        }
        let group_of: Vec<u32> = events
            .iter()
            .map(|e| groups[&(e.time.div_euclid(HOUR_MICROS) * HOUR_MICROS, e.key.clone().unwrap_or_default())])
            .collect();
        let stats = &mut RestaurantStats::configure(&Config::default()).unwrap();
        let init = vec![run_init::<RestaurantStats>(); groups.len()];
        let accumulated = run_accumulate(stats, init, &Columns::encode(&events), &group_of);
        assert_eq!(accumulated.errors, []);
        let finished = groups
            .into_iter()
            .map(|((start, key), group)| FinishedGroup {
                state: accumulated.states[group as usize].clone(),
                window: Window { start, end: start + HOUR_MICROS },
                key,
            })
            .collect();
        let output = run_finish(stats, finished);
        assert_events_file(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expected.ndjson"),
            &output.decode_events(),
        );
    }
}
