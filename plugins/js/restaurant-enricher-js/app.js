// Enriches order events with their restaurant's reference data and delivery time, and
// drops test orders: the JavaScript twin of plugins/restaurant-enricher (same config,
// fields and errors).
//
// For each order it looks up `restaurant_id` (or, without that field, the event key) in the
// reference table (`restaurants` by default), adds `restaurant_name`, `zone` and `cuisine`
// from it, and adds `delivery_minutes`: `(delivered_at - placed_at)` in minutes, null when
// the order was not delivered.

import { Enricher, exportEnricher, host } from '../../../sdk/js/weir-sdk.js';

/** The reference table read unless configured otherwise. */
export const DEFAULT_TABLE = 'restaurants';
/** Counter of test orders dropped. */
export const TEST_ORDERS_DROPPED = 'test_orders_dropped';
const MICROS_PER_MINUTE = 60e6;

/** Config: `table` (default `restaurants`) and `drop_test_orders` (default `true`). */
export class RestaurantEnricher extends Enricher {
  constructor(table = DEFAULT_TABLE, dropTestOrders = true) {
    super();
    this.table = table;
    this.dropTestOrders = dropTestOrders;
  }

  static configure(config) {
    config.rejectUnknown(['table', 'drop_test_orders']);
    return new RestaurantEnricher(config.get('table', DEFAULT_TABLE), config.getBool('drop_test_orders', true));
  }

  enrich(event) {
    if (this.dropTestOrders && event.getBool('test') === true) {
      host.counterAdd(TEST_ORDERS_DROPPED, 1);
      return null;
    }
    const restaurant = this.restaurant(event);
    const minutes = deliveryMinutes(event);
    return event
      .set('restaurant_name', textMember(restaurant, 'name'))
      .set('zone', textMember(restaurant, 'zone'))
      .set('cuisine', textMember(restaurant, 'cuisine'))
      .set('delivery_minutes', minutes);
  }

  restaurant(event) {
    const restaurantId = event.getString('restaurant_id') ?? event.key;
    if (restaurantId === null) throw new Error('order has no restaurant_id (text) and no key');
    const restaurant = host.lookupJson(this.table, restaurantId);
    if (restaurant === null) throw new Error(`unknown restaurant ${restaurantId}: not in reference table ${this.table}`);
    return restaurant;
  }
}

/** Minutes from `placed_at` to `delivered_at` (a number: a float), null when either is missing. */
export function deliveryMinutes(event) {
  const placedAt = event.getTimestamp('placed_at');
  const deliveredAt = event.getTimestamp('delivered_at');
  if (placedAt === null || deliveredAt === null) return null;
  if (deliveredAt.micros < placedAt.micros) {
    throw new Error(`delivered_at ${deliveredAt} is before placed_at ${placedAt}`);
  }
  // bigint -> number is exact below 2^53 us (285 years): the same IEEE division as the
  // Rust plugin's `as f64 / 60e6`.
  return Number(deliveredAt.micros - placedAt.micros) / MICROS_PER_MINUTE;
}

/** The text member `name` of a reference document, null when missing or not text. */
function textMember(document, name) {
  const isObject = document !== null && typeof document === 'object' && !Array.isArray(document);
  const value = isObject && Object.hasOwn(document, name) ? document[name] : undefined;
  return typeof value === 'string' ? value : null;
}

// The `weir:plugin/enrich` export.
export const enrich = exportEnricher(RestaurantEnricher);
