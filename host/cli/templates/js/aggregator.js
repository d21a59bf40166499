// {{name}}: a weir aggregator. Per key and window: how many events, and the sum of their
// `total` (events without a numeric `total` are errors). The state is JSON the host keeps
// between batches.

import { Aggregator, Event, Timestamp, exportAggregator } from './weir-sdk.js';

export class Plugin extends Aggregator {
  static emptyState() {
    return { count: 0, total_cents: 0 };
  }

  accumulate(state, event) {
    const total = event.getNumber('total');
    if (total === null) throw new Error('the event has no numeric total');
    return { count: state.count + 1, total_cents: state.total_cents + Math.round(total * 100.0) };
  }

  merge(into, other) {
    return { count: into.count + other.count, total_cents: into.total_cents + other.total_cents };
  }

  finish(state, window, key) {
    const event = new Event(window.start, key);
    event.set('window_start', new Timestamp(window.start));
    event.set('count', BigInt(state.count));
    event.set('total', state.total_cents / 100.0);
    return [event];
  }
}

// The `weir:plugin/aggregate` export.
export const aggregate = exportAggregator(Plugin);
