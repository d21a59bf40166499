//! Enriches order events with their restaurant's reference data and delivery time, and
//! drops test orders.
//!
//! For each order it looks up `restaurant_id` in the reference table (`restaurants` by
//! default), adds `restaurant_name`, `zone` and `cuisine` from it, and adds
//! `delivery_minutes`: `(delivered_at - placed_at)` in minutes, null when the order was not
//! delivered.

use std::rc::Rc;

use serde_json::Value as Json;
use weir_sdk::{Config, Enricher, Event, Name, Value, host, time};

/// The reference table read unless configured otherwise.
pub const DEFAULT_TABLE: &str = "restaurants";

/// Counter of test orders dropped.
pub const TEST_ORDERS_DROPPED: &str = "test_orders_dropped";

/// The restaurant enricher. Config: `table` (default `restaurants`) and
/// `drop_test_orders` (default `true`).
#[derive(Debug, Clone)]
pub struct RestaurantEnricher {
    table: String,
    drop_test_orders: bool,
    /// The names of the fields added, shared by every event enriched.
    restaurant_name: Name,
    zone: Name,
    cuisine: Name,
    delivery_minutes: Name,
}

impl RestaurantEnricher {
    /// An enricher reading restaurants from `table`.
    pub fn new(table: &str, drop_test_orders: bool) -> Self {
        Self {
            table: table.to_owned(),
            drop_test_orders,
            restaurant_name: Name::from("restaurant_name"),
            zone: Name::from("zone"),
            cuisine: Name::from("cuisine"),
            delivery_minutes: Name::from("delivery_minutes"),
        }
    }

    fn restaurant(&self, event: &Event) -> Result<Rc<Json>, String> {
        let restaurant_id = event
            .get_str("restaurant_id")
            .or(event.key.as_deref())
            .ok_or("order has no restaurant_id (text) and no key")?;
        host::lookup_json(&self.table, restaurant_id)?
            .ok_or_else(|| format!("unknown restaurant {restaurant_id}: not in reference table {}", self.table))
    }
}

impl Enricher for RestaurantEnricher {
    fn configure(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["table", "drop_test_orders"])?;
        let drop_test_orders = config.parse("drop_test_orders")?.unwrap_or(true);
        Ok(Self::new(config.get_or("table", DEFAULT_TABLE), drop_test_orders))
    }

    fn enrich(&mut self, mut event: Event) -> Result<Option<Event>, String> {
        if self.drop_test_orders && event.get_bool("test") == Some(true) {
            host::counter_add(TEST_ORDERS_DROPPED, 1);
            return Ok(None);
        }
        let restaurant = self.restaurant(&event)?;
        let delivery_minutes = delivery_minutes(&event)?;
        event.set_shared(&self.restaurant_name, text_member(&restaurant, "name"));
        event.set_shared(&self.zone, text_member(&restaurant, "zone"));
        event.set_shared(&self.cuisine, text_member(&restaurant, "cuisine"));
        event.set_shared(&self.delivery_minutes, delivery_minutes);
        Ok(Some(event))
    }
}

weir_sdk::export_enricher!(RestaurantEnricher);

const MICROS_PER_MINUTE: f64 = 60e6;

/// Minutes from `placed_at` to `delivered_at`, null when either is missing.
fn delivery_minutes(event: &Event) -> Result<Value, String> {
    let (Some(placed_at), Some(delivered_at)) = (event.get_timestamp("placed_at"), event.get_timestamp("delivered_at"))
    else {
        return Ok(Value::Null);
    };
    if delivered_at < placed_at {
        return Err(format!(
            "delivered_at {} is before placed_at {}",
            time::format_rfc3339(delivered_at),
            time::format_rfc3339(placed_at)
        ));
    }
    Ok(Value::Float((delivered_at - placed_at) as f64 / MICROS_PER_MINUTE))
}

/// The text member `name` of a reference document, null when it is missing or not text.
fn text_member(document: &Json, name: &str) -> Value {
    document.get(name).and_then(Json::as_str).map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use weir_sdk::host::{MapHost, set_native_host};
    use weir_sdk::testing::{assert_events_file, read_events};
    use weir_sdk::{Columns, run_enrich};

    use super::*;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }

    fn install_fixture_restaurants() {
        let lookup = std::fs::read_to_string(fixtures().join("lookup.json")).unwrap();
        set_native_host(Box::new(MapHost::from_json(&lookup).unwrap()));
    }

    fn order(restaurant_id: &str) -> Event {
        let placed_at = time::parse_rfc3339("2026-11-26T11:05:00Z").unwrap();
        Event::new(placed_at)
            .with_key(restaurant_id)
            .with("order_id", "o-1")
            .with("restaurant_id", restaurant_id)
            .with("placed_at", Value::Timestamp(placed_at))
            .with("delivered_at", Value::Timestamp(placed_at + 33 * 60_000_000 + 30_000_000))
            .with("test", false)
    }

    fn enricher() -> RestaurantEnricher {
        RestaurantEnricher::configure(&Config::default()).unwrap()
    }

    #[test]
    fn an_order_gets_its_restaurant_and_delivery_time() {
        install_fixture_restaurants();
        let enriched = enricher().enrich(order("r-1")).unwrap().unwrap();
        assert_eq!(enriched.get_str("restaurant_name"), Some("Pho Real"));
        assert_eq!(enriched.get_str("zone"), Some("downtown"));
        assert_eq!(enriched.get_str("cuisine"), Some("vietnamese"));
        assert_eq!(enriched.get("delivery_minutes"), Some(&Value::Float(33.5)));
        assert_eq!(enriched.key.as_deref(), Some("r-1"));
    }

    #[test]
    fn undelivered_orders_have_a_null_delivery_time_and_late_data_is_refused() {
        install_fixture_restaurants();
        let mut pending = order("r-2");
        pending.set("delivered_at", Value::Null);
        let enriched = enricher().enrich(pending).unwrap().unwrap();
        assert_eq!(enriched.get("delivery_minutes"), Some(&Value::Null));

        let mut backwards = order("r-2");
        backwards.set("delivered_at", Value::Timestamp(0));
        let err = enricher().enrich(backwards).unwrap_err();
        assert_eq!(err, "delivered_at 1970-01-01T00:00:00Z is before placed_at 2026-11-26T11:05:00Z");
    }

    #[test]
    fn unknown_restaurants_fail_and_test_orders_are_dropped_unless_configured_otherwise() {
        install_fixture_restaurants();
        let err = enricher().enrich(order("r-99")).unwrap_err();
        assert_eq!(err, "unknown restaurant r-99: not in reference table restaurants");

        let test_order = order("r-99").with("test", true);
        assert_eq!(enricher().enrich(test_order.clone()), Ok(None), "dropped before the lookup");
        let config: Config = [("drop_test_orders", "false"), ("table", "venues")].into_iter().collect();
        let err = RestaurantEnricher::configure(&config).unwrap().enrich(test_order).unwrap_err();
        assert_eq!(err, "unknown restaurant r-99: not in reference table venues");
    }

    #[test]
    fn the_fixture_gives_the_expected_events() {
        install_fixture_restaurants();
        let input = Columns::encode(&read_events(fixtures().join("input.ndjson")));
        let output = run_enrich(&mut enricher(), &input);
        let errors: Vec<(u32, &str)> = output.errors.iter().map(|e| (e.index, e.message.as_str())).collect();
        assert_eq!(errors, [(11, "unknown restaurant r-99: not in reference table restaurants")]);
        let dropped = output.counts.iter().enumerate().filter(|&(i, &count)| count == 0 && i != 11).count();
        assert_eq!(dropped, 2, "two test orders");
        assert_events_file(fixtures().join("expected.ndjson"), &output.decode_events());
    }
}
