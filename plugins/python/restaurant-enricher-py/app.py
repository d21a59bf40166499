"""Enriches order events with their restaurant's reference data and delivery time, and
drops test orders: the Python twin of plugins/restaurant-enricher (same config, fields
and errors).

For each order it looks up `restaurant_id` (or, without that field, the event key) in the
reference table (`restaurants` by default), adds `restaurant_name`, `zone` and `cuisine`
from it, and adds `delivery_minutes`: `(delivered_at - placed_at)` in minutes, null when
the order was not delivered.
"""

from typing import Any, Optional

from weir_sdk import Config, Enricher, Event, Timestamp, export_enricher, host

#: The reference table read unless configured otherwise.
DEFAULT_TABLE = "restaurants"
#: Counter of test orders dropped.
TEST_ORDERS_DROPPED = "test_orders_dropped"
MICROS_PER_MINUTE = 60e6


class RestaurantEnricher(Enricher):
    """Config: `table` (default `restaurants`) and `drop_test_orders` (default `true`)."""

    def __init__(self, table: str = DEFAULT_TABLE, drop_test_orders: bool = True):
        self.table = table
        self.drop_test_orders = drop_test_orders

    @classmethod
    def configure(cls, config: Config) -> "RestaurantEnricher":
        config.reject_unknown(("table", "drop_test_orders"))
        return cls(config.get("table", DEFAULT_TABLE), config.get_bool("drop_test_orders", True))

    def enrich(self, event: Event) -> Optional[Event]:
        if self.drop_test_orders and event.get_bool("test") is True:
            host.counter_add(TEST_ORDERS_DROPPED, 1)
            return None
        restaurant = self.restaurant(event)
        minutes = delivery_minutes(event)
        event["restaurant_name"] = text_member(restaurant, "name")
        event["zone"] = text_member(restaurant, "zone")
        event["cuisine"] = text_member(restaurant, "cuisine")
        event["delivery_minutes"] = minutes
        return event

    def restaurant(self, event: Event) -> Any:
        restaurant_id = event.get_str("restaurant_id")
        if restaurant_id is None:
            restaurant_id = event.key
        if restaurant_id is None:
            raise ValueError("order has no restaurant_id (text) and no key")
        restaurant = host.lookup_json(self.table, restaurant_id)
        if restaurant is None:
            raise ValueError(f"unknown restaurant {restaurant_id}: not in reference table {self.table}")
        return restaurant


def delivery_minutes(event: Event) -> Optional[float]:
    """Minutes from `placed_at` to `delivered_at`, None (null) when either is missing."""
    placed_at: Optional[Timestamp] = event.get_timestamp("placed_at")
    delivered_at: Optional[Timestamp] = event.get_timestamp("delivered_at")
    if placed_at is None or delivered_at is None:
        return None
    if delivered_at < placed_at:
        raise ValueError(f"delivered_at {delivered_at.rfc3339()} is before placed_at {placed_at.rfc3339()}")
    # int / float: the same IEEE division as the Rust plugin's `as f64 / 60e6`.
    return (delivered_at - placed_at) / MICROS_PER_MINUTE


def text_member(document: Any, name: str) -> Optional[str]:
    """The text member `name` of a reference document, None when missing or not text."""
    value = document.get(name) if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


# The class componentize-py binds to the `weir:plugin/enrich` export.
Enrich = export_enricher(RestaurantEnricher)
